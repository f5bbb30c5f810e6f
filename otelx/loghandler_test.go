package otelx_test

import (
	"context"
	"log/slog"
	"testing"
	"testing/synctest"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/internal/coretest"
	"github.com/coreservice/coreservice/otelx"
	"github.com/coreservice/coreservice/task"
)

func TestLogHandlerAddsTheSpanOfTheContext(t *testing.T) {
	tp := sdktrace.NewTracerProvider()
	defer func() { _ = tp.Shutdown(context.Background()) }()
	logs := coretest.NewLogs()
	log := slog.New(otelx.NewLogHandler(logs)).With("service", "api")
	ctx, span := tp.Tracer("test").Start(context.Background(), "op")
	log.InfoContext(ctx, "inside")
	span.End()
	log.InfoContext(context.Background(), "outside")
	recs := logs.Records()
	if len(recs) != 2 {
		t.Fatalf("records: got %d, want 2", len(recs))
	}
	in, out := recs[0].Attrs, recs[1].Attrs
	sc := span.SpanContext()
	if in["trace_id"] != sc.TraceID().String() || in["span_id"] != sc.SpanID().String() || in["service"] != "api" {
		t.Fatalf("inside the span: got %v, want trace_id %s span_id %s service api", in, sc.TraceID(), sc.SpanID())
	}
	if _, ok := out["trace_id"]; ok || out["service"] != "api" {
		t.Fatalf("outside a span: got %v, want service=api and no trace_id", out)
	}
}

func TestTaskRunLogsCarryTheRunsIDs(t *testing.T) {
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	logs := coretest.NewLogs()
	var svc *core.Base
	tk := task.Func("work", func(ctx context.Context) error {
		svc.Log().InfoContext(ctx, "working")
		return task.ErrDone
	})
	svc = core.NewService(core.Name("api"), core.TracerProvider(tp),
		core.Logger(slog.New(otelx.NewLogHandler(logs))), tk)
	if err := svc.Start(t.Context()); err != nil {
		t.Fatalf("Start: got %v, want nil", err)
	}
	if !logs.Wait(t.Context(), "task worker done: ErrDone") {
		t.Fatal("the worker never ended")
	}
	if err := svc.Stop(t.Context()); err != nil {
		t.Fatalf("Stop: got %v, want nil", err)
	}
	var run sdktrace.ReadOnlySpan
	for _, s := range sr.Ended() {
		if s.Name() == "task api/work" {
			run = s
		}
	}
	if run == nil {
		t.Fatal("no span task api/work")
	}
	for _, msg := range []string{"working", "task worker done: ErrDone"} {
		recs := logs.Find(msg)
		if len(recs) != 1 {
			t.Fatalf("%q: got %d records, want 1", msg, len(recs))
		}
		a := recs[0].Attrs
		if a["trace_id"] != run.SpanContext().TraceID().String() || a["span_id"] != run.SpanContext().SpanID().String() {
			t.Fatalf("%q: got trace_id %s span_id %s, want the run's %s %s", msg, a["trace_id"], a["span_id"],
				run.SpanContext().TraceID(), run.SpanContext().SpanID())
		}
	}
}

func TestErrorHandlerLogsAtMostOncePerInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		logs := coretest.NewLogs()
		h := otelx.NewErrorHandler(logs.Logger(), time.Minute)
		for range 5 {
			h.Handle(errBoom)
		}
		coretest.Advance(time.Minute)
		h.Handle(errBoom) // logged, with the 4 suppressed
		h.Handle(errBoom) // counted
		otelx.FlushErrorHandler(h)
		recs := logs.Records()
		if len(recs) != 3 {
			t.Fatalf("records: got %d (%v), want 3", len(recs), recs)
		}
		if recs[0].Attrs["suppressed"] != "" || recs[1].Attrs["suppressed"] != "4" ||
			recs[2].Message != "OpenTelemetry errors not logged" || recs[2].Attrs["suppressed"] != "1" {
			t.Fatalf("records: got %v, want the first error, then one with suppressed=4, then suppressed=1", recs)
		}
	})
}

// The README sets the default logger after Setup: the handler's lines must
// reach that logger, at level Warn, not the one that was the default when
// the handler was made.
func TestErrorHandlerWithoutLoggerLogsToTheDefaultOfTheTime(t *testing.T) {
	h := otelx.NewErrorHandler(nil, time.Minute)
	old := slog.Default()
	defer slog.SetDefault(old)
	logs := coretest.NewLogs()
	slog.SetDefault(logs.Logger())
	h.Handle(errBoom)
	recs := logs.Records()
	if len(recs) != 1 || recs[0].Message != "OpenTelemetry error" || recs[0].Level != slog.LevelWarn {
		t.Fatalf("records of the default logger: got %v, want one Warn \"OpenTelemetry error\"", recs)
	}
}
