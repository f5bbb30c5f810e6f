package telemetry_test

import (
	"context"
	"errors"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace/noop"
	"go.uber.org/goleak"

	"github.com/coreservice/coreservice/internal/telemetry"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestSpanGate(t *testing.T) {
	sdk := sdktrace.NewTracerProvider()
	defer func() { _ = sdk.Shutdown(context.Background()) }()
	scope := telemetry.ScopeName
	if !(telemetry.SpanGate{}).On() {
		t.Error("zero gate: got off, want on")
	}
	if telemetry.NewSpanGate(noop.NewTracerProvider().Tracer(scope), scope).On() {
		t.Error("noop tracer: got on, want off")
	}
	if !telemetry.NewSpanGate(sdk.Tracer(scope), scope).On() {
		t.Error("SDK tracer: got off, want on")
	}
}

// installed is set once TestSpanGateGlobal has installed a global provider.
var installed bool

// TestSpanGateGlobal installs an OpenTelemetry global tracer provider, for
// good: it is the only test of this package that uses the global, and it
// runs once per process.
func TestSpanGateGlobal(t *testing.T) {
	if installed {
		t.Skip("the global tracer provider was installed by an earlier run")
	}
	installed = true
	sr := tracetest.NewSpanRecorder()
	sdk := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	defer func() { _ = sdk.Shutdown(context.Background()) }()
	scope := telemetry.ScopeName

	global := otel.GetTracerProvider().Tracer(scope)
	gate := telemetry.NewSpanGate(global, scope)
	if gate.On() {
		t.Error("global tracer, no provider installed: got on, want off")
	}
	if allocs := testing.AllocsPerRun(100, func() { _ = gate.On() }); allocs != 0 {
		t.Errorf("On: got %v allocations, want 0", allocs)
	}
	if !telemetry.NewSpanGate(otel.GetTracerProvider().Tracer("another scope"), scope).On() {
		t.Error("a global tracer of another scope: got off, want on (not known to be core's)")
	}

	otel.SetTracerProvider(sdk)
	if !gate.On() {
		t.Fatal("global tracer after a provider was installed: got off, want on")
	}
	_, span := global.Start(context.Background(), "after")
	span.End()
	if len(sr.Ended()) != 1 {
		t.Fatalf("spans recorded through the global tracer: got %d, want 1", len(sr.Ended()))
	}
	if !telemetry.NewSpanGate(otel.GetTracerProvider().Tracer(scope), scope).On() {
		t.Error("gate made after a provider was installed: got off, want on")
	}
}

func TestRecordPanic(t *testing.T) {
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	_, span := tp.Tracer("test").Start(context.Background(), "run")
	telemetry.RecordPanic(span, errors.New("panic: boom"), []byte("goroutine 7 [running]:"))
	span.End()
	s := sr.Ended()[0]
	if s.Status().Code != codes.Error || s.Status().Description != "panic: boom" {
		t.Fatalf("status: got %v, want Error panic: boom", s.Status())
	}
	if len(s.Events()) != 1 || s.Events()[0].Name != "exception" {
		t.Fatalf("events: got %v, want one exception event", s.Events())
	}
	var stack, errType string
	for _, a := range s.Events()[0].Attributes {
		if a.Key == "exception.stacktrace" {
			stack = a.Value.AsString()
		}
	}
	for _, a := range s.Attributes() {
		if a.Key == "error.type" {
			errType = a.Value.AsString()
		}
	}
	if stack != "goroutine 7 [running]:" || errType != "*errors.errorString" {
		t.Fatalf("exception.stacktrace, error.type: got %q, %q, want the stack and *errors.errorString", stack, errType)
	}
}
