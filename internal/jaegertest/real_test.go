package jaegertest_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/coreservice/coreservice/internal/jaegertest"
)

// The tests in this file run a real Jaeger (see jaegertest.Start): they
// skip without a built binary unless CORESERVICE_JAEGER_REQUIRED=1.

// sendTrace sends, through exp, a trace of service: a span "parent" with a
// child "child" that failed with an exception. It returns the two span
// contexts.
func sendTrace(t *testing.T, ctx context.Context, exp sdktrace.SpanExporter, service string) (parent, child trace.SpanContext) {
	t.Helper()
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithSyncer(exp),
		sdktrace.WithResource(resource.NewSchemaless(
			attribute.String("service.name", service),
			attribute.String("deployment.environment.name", "test"),
		)),
	)
	tr := tp.Tracer("github.com/coreservice/coreservice/internal/jaegertest")
	pctx, p := tr.Start(ctx, "parent")
	_, c := tr.Start(pctx, "child", trace.WithAttributes(attribute.Int64("big", 1<<60+1)))
	c.RecordError(errors.New("dial tcp 127.0.0.1:5432: connection refused"))
	c.SetStatus(codes.Error, "dial failed")
	c.End()
	p.End()
	if err := tp.Shutdown(ctx); err != nil {
		t.Fatalf("exporting the spans: %v", err)
	}
	return p.SpanContext(), c.SpanContext()
}

func TestJaegerReturnsATraceSentOverOTLPHTTP(t *testing.T) {
	j := jaegertest.Start(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpoint(j.OTLPHTTPEndpoint()), otlptracehttp.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	parentSC, childSC := sendTrace(t, ctx, exp, "jaegertest-http")

	traces, err := j.WaitTraces(ctx, "jaegertest-http", "", 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(traces) != 1 {
		t.Fatalf("traces: got %d, want 1", len(traces))
	}
	tr := traces[0]
	if want := parentSC.TraceID().String(); tr.TraceID != want {
		t.Errorf("trace id: got %s, want %s", tr.TraceID, want)
	}
	if len(tr.Spans) != 2 {
		t.Fatalf("spans: got %d, want 2", len(tr.Spans))
	}
	parent, child := tr.Span("parent"), tr.Span("child")
	if parent == nil || child == nil {
		t.Fatalf("spans: got %v, want parent and child", opNames(tr))
	}
	if parent.SpanID != parentSC.SpanID().String() || child.SpanID != childSC.SpanID().String() {
		t.Errorf("span ids: got parent %s child %s, want %s %s", parent.SpanID, child.SpanID, parentSC.SpanID(), childSC.SpanID())
	}
	if got := child.ParentID(); got != parent.SpanID {
		t.Errorf("child's parent: got %q, want %s", got, parent.SpanID)
	}
	if got := child.References; len(got) != 1 || got[0].RefType != jaegertest.ChildOf || got[0].TraceID != tr.TraceID {
		t.Errorf("child's references: got %+v, want one CHILD_OF in the same trace", got)
	}
	if got := tr.Children(parent.SpanID); len(got) != 1 || got[0] != child {
		t.Errorf("children of parent: got %v, want [child]", got)
	}
	if parent.ParentID() != "" || len(tr.Children(child.SpanID)) != 0 {
		t.Errorf("parent's parent %q, child's children %d: want a root and a leaf", parent.ParentID(), len(tr.Children(child.SpanID)))
	}
	if !child.HasError() || parent.HasError() {
		t.Errorf("HasError: got child %v, parent %v; want true, false", child.HasError(), parent.HasError())
	}
	ev := child.Event("exception")
	if ev == nil {
		t.Fatalf("child's logs: got %+v, want an exception event", child.Logs)
	}
	if got, _ := ev.Field("exception.message"); got != "dial tcp 127.0.0.1:5432: connection refused" {
		t.Errorf("exception.message: got %v, want the recorded error", got)
	}
	if got := child.ErrorMessage(); got != "dial tcp 127.0.0.1:5432: connection refused" {
		t.Errorf("ErrorMessage: got %q, want the exception's message", got)
	}
	if got, _ := child.Tag("big"); got != int64(1<<60+1) {
		t.Errorf("tag big: got %v (%T), want int64 %d", got, got, int64(1<<60+1))
	}
	if got, _ := child.Tag("otel.status_description"); got != "dial failed" {
		t.Errorf("tag otel.status_description: got %v, want dial failed", got)
	}
	if got := tr.Service(child); got != "jaegertest-http" {
		t.Errorf("service: got %q, want jaegertest-http", got)
	}
	if got, _ := tr.Processes[child.ProcessID].Tag("deployment.environment.name"); got != "test" {
		t.Errorf("process tag deployment.environment.name: got %v, want test", got)
	}
	if child.Duration <= 0 || child.StartTime.Before(parent.StartTime) || time.Since(parent.StartTime) > time.Minute {
		t.Errorf("times: got parent %v, child %v +%v; want the child within the parent, just now",
			parent.StartTime, child.StartTime, child.Duration)
	}

	services, err := j.Services(ctx)
	if err != nil || !slices.Contains(services, "jaegertest-http") {
		t.Errorf("Services: got %v, %v; want jaegertest-http among them", services, err)
	}
	byID, err := j.Trace(ctx, tr.TraceID)
	if err != nil || len(byID.Spans) != 2 {
		t.Errorf("Trace(%s): got %d spans, %v; want 2, nil", tr.TraceID, len(byID.Spans), err)
	}
	if _, err := j.Trace(ctx, "0123456789abcdef0123456789abcdef"); !errors.Is(err, jaegertest.ErrTraceNotFound) {
		t.Errorf("Trace of an unknown id: got %v, want ErrTraceNotFound", err)
	}
	if got, err := j.Traces(ctx, "jaegertest-http", "child", 10); err != nil || len(got) != 1 {
		t.Errorf("Traces with operation child: got %d, %v; want 1, nil", len(got), err)
	}
	if got, err := j.Traces(ctx, "jaegertest-http", "no such operation", 10); err != nil || len(got) != 0 {
		t.Errorf("Traces with an unknown operation: got %d, %v; want 0, nil", len(got), err)
	}

	var out bytes.Buffer
	if err := jaegertest.Render(&out, traces); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"trace " + tr.TraceID,
		"jaegertest-http  2 spans\n",
		"\n  parent  ",
		"\n    child  ",
		"  ERROR dial tcp 127.0.0.1:5432: connection refused\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("Render: got\n%s\nwant it to contain %q", out.String(), want)
		}
	}
}

func TestJaegerReturnsATraceSentOverOTLPGRPC(t *testing.T) {
	j := jaegertest.Start(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(j.OTLPGRPCEndpoint()), otlptracegrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	parentSC, _ := sendTrace(t, ctx, exp, "jaegertest-grpc")
	traces, err := j.WaitTraces(ctx, "jaegertest-grpc", "child", 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(traces) != 1 || traces[0].TraceID != parentSC.TraceID().String() || len(traces[0].Spans) != 2 {
		t.Fatalf("traces: got %d (%v), want trace %s with 2 spans", len(traces), traces, parentSC.TraceID())
	}
}

func TestJaegerIsStoppedWhenItsTestEnds(t *testing.T) {
	var pid int
	t.Run("with jaeger", func(t *testing.T) {
		j := jaegertest.Start(t)
		pid = j.PID()
		if err := syscall.Kill(pid, 0); err != nil {
			t.Fatalf("Jaeger (PID %d) while its test runs: got %v, want it running", pid, err)
		}
	})
	if pid == 0 {
		t.Skip("no Jaeger started")
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("Jaeger (PID %d) after its test: got %v, want no such process", pid, err)
	}
}

func opNames(tr jaegertest.Trace) []string {
	var names []string
	for _, s := range tr.Spans {
		names = append(names, s.OperationName)
	}
	return names
}

// Programs export metrics to the same OTLP endpoint as traces (otelx's
// default): Jaeger must take them and drop them, not answer Unimplemented,
// which otelx's shutdown reports as a failure.
func TestJaegerAcceptsAndDropsMetrics(t *testing.T) {
	j := jaegertest.Start(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	grpcExp, err := otlpmetricgrpc.New(ctx, otlpmetricgrpc.WithEndpoint(j.OTLPGRPCEndpoint()), otlpmetricgrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	httpExp, err := otlpmetrichttp.New(ctx, otlpmetrichttp.WithEndpoint(j.OTLPHTTPEndpoint()), otlpmetrichttp.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	for name, exp := range map[string]sdkmetric.Exporter{"gRPC": grpcExp, "HTTP": httpExp} {
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp)))
		c, err := mp.Meter("jaegertest").Int64Counter("jaegertest.sent")
		if err != nil {
			t.Fatal(err)
		}
		c.Add(ctx, 1)
		if err := mp.Shutdown(ctx); err != nil { // flushes: one export
			t.Errorf("metrics over OTLP/%s: got %v, want nil", name, err)
		}
	}
}
