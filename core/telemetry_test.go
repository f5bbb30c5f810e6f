package core_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/internal/coretest"
)

func spansByName(spans []sdktrace.ReadOnlySpan) map[string]sdktrace.ReadOnlySpan {
	m := make(map[string]sdktrace.ReadOnlySpan, len(spans))
	for _, s := range spans {
		m[s.Name()] = s
	}
	return m
}

func TestStartStopSpans(t *testing.T) {
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	rec := &coretest.Recorder{}
	db := coretest.Node("db", rec, core.TracerProvider(tp))
	foreign := newFake("cache", rec)
	api := coretest.Node("api", rec, core.TracerProvider(tp), requires(db), requires(foreign))
	coretest.MustStart(t, api)
	coretest.MustStop(t, api)

	spans := spansByName(sr.Ended())
	for _, name := range []string{"start api", "start db", "start cache", "stop api", "stop db"} {
		if _, ok := spans[name]; !ok {
			t.Fatalf("no span %q among %d spans", name, len(sr.Ended()))
		}
	}
	startAPI := spans["start api"]
	for _, child := range []string{"start db", "start cache"} {
		if got := spans[child].Parent().SpanID(); got != startAPI.SpanContext().SpanID() {
			t.Errorf("%s: parent %v, want the span of start api", child, got)
		}
	}
	if got := spans["stop db"].Parent().SpanID(); got != spans["stop api"].SpanContext().SpanID() {
		t.Errorf("stop db: parent %v, want the span of stop api", got)
	}
	if startAPI.InstrumentationScope().Name != "github.com/coreservice/coreservice" {
		t.Errorf("scope: got %q, want the module path", startAPI.InstrumentationScope().Name)
	}
	for _, s := range sr.Ended() {
		if s.Status().Code == codes.Ok {
			t.Errorf("span %s has status Ok; the library never sets it", s.Name())
		}
	}
}

func TestFailedStartSpan(t *testing.T) {
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	boom := errors.New("boom")
	s := core.NewService(core.Name("api"), core.Logger(coretest.Quiet()), core.TracerProvider(tp),
		core.OnStart(func(context.Context) error { return boom }))
	if err := s.Start(t.Context()); !errors.Is(err, boom) {
		t.Fatalf("Start: %v", err)
	}
	span := spansByName(sr.Ended())["start api"]
	if span == nil || span.Status().Code != codes.Error {
		t.Fatalf("start span: got %v, want status Error", span)
	}
	var errType string
	for _, a := range span.Attributes() {
		if a.Key == "error.type" {
			errType = a.Value.AsString()
		}
	}
	if errType != "*core.StartupError" {
		t.Errorf("error.type: got %q, want *core.StartupError", errType)
	}
	if len(span.Events()) != 1 || span.Events()[0].Name != "exception" {
		t.Errorf("events: got %v, want one exception event", span.Events())
	}
}

func TestMonitorSpansAreRootsLinkedToStart(t *testing.T) {
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	ticked := make(chan struct{})
	var runs atomic.Int32
	var once sync.Once
	s := core.NewService(core.Name("api"), core.Logger(coretest.Quiet()), core.TracerProvider(tp),
		core.MonitorInterval(1), // 1ns: the first tick comes at once
		&check{name: "c", fn: func(context.Context) error {
			if runs.Add(1) > 1 { // the first run is the start's
				once.Do(func() { close(ticked) })
			}
			return nil
		}})
	coretest.MustStart(t, s)
	<-ticked
	coretest.MustStop(t, s)
	spans := spansByName(sr.Ended())
	hc, start := spans["healthcheck api"], spans["start api"]
	if hc == nil {
		t.Fatal("no healthcheck span")
	}
	if hc.Parent().IsValid() || hc.SpanContext().TraceID() == start.SpanContext().TraceID() {
		t.Error("healthcheck span is not the root of its own trace")
	}
	if len(hc.Links()) != 1 || hc.Links()[0].SpanContext.SpanID() != start.SpanContext().SpanID() {
		t.Errorf("healthcheck links: got %v, want one link to the start span", hc.Links())
	}
}
