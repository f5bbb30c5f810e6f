package deps_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cenkalti/backoff/v4"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/deps"
	"github.com/coreservice/coreservice/internal/coretest"
)

func TestStartTraceShowsTheTree(t *testing.T) {
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	rec := &coretest.Recorder{}
	disk := coretest.Node("disk", rec, core.TracerProvider(tp))
	db := coretest.Node("db", rec, core.TracerProvider(tp), deps.Requires(disk))
	api := coretest.Node("api", rec, core.TracerProvider(tp), deps.Requires(db),
		deps.Lazy(func(context.Context) (*core.Base, error) {
			return coretest.Node("cache", rec, core.TracerProvider(tp)), nil
		}))
	coretest.MustStart(t, api)
	coretest.MustStop(t, api)

	byName := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range sr.Ended() {
		byName[s.Name()] = s
	}
	parentOf := map[string]string{"start db": "start api", "start cache": "start api", "start disk": "start db",
		"stop db": "stop api", "stop cache": "stop api", "stop disk": "stop db"}
	for child, parent := range parentOf {
		c, p := byName[child], byName[parent]
		if c == nil || p == nil {
			t.Fatalf("missing span %q or %q", child, parent)
		}
		if c.Parent().SpanID() != p.SpanContext().SpanID() || c.SpanContext().TraceID() != p.SpanContext().TraceID() {
			t.Errorf("span %q: want it a child of %q", child, parent)
		}
	}
}

func TestRestartIsASpanLinkedToTheFailedInstancesStartAndCounted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sr := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
		defer func() { _ = tp.Shutdown(context.Background()) }()
		reader := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
		defer func() { _ = mp.Shutdown(context.Background()) }()
		f := &coretest.Flaky{Name: "db", StartErr: func(n int) error {
			if n == 2 {
				return errors.New("connection refused")
			}
			return nil
		}}
		db := deps.Supervise(f.Factory, func() backoff.BackOff { return coretest.NewPolicy(time.Second, time.Second) }, deps.Name("db"))
		api := core.NewService(core.Name("api"), core.Logger(coretest.Quiet()), core.TracerProvider(tp), core.MeterProvider(mp), db)
		coretest.MustStart(t, api)
		f.Last().Fail(errors.New("disk full"))
		synctest.Wait()
		coretest.Advance(2 * time.Second)
		synctest.Wait()
		coretest.MustStop(t, api)

		var restarts []sdktrace.ReadOnlySpan
		byName := map[string]sdktrace.ReadOnlySpan{}
		for _, s := range sr.Ended() {
			byName[s.Name()] = s
			if s.Name() == "restart db" {
				restarts = append(restarts, s)
			}
		}
		if len(restarts) != 2 {
			t.Fatalf("restart spans: got %d, want 2", len(restarts))
		}
		first, second := restarts[0], restarts[1]
		if first.Status().Code != codes.Error || second.Status().Code != codes.Unset {
			t.Fatalf("restart span statuses: got %v, %v, want Error (db#2 failed to start) then unset", first.Status(), second.Status())
		}
		if len(first.Links()) != 1 || first.Links()[0].SpanContext.SpanID() != byName["start db"].SpanContext().SpanID() {
			t.Fatalf("first restart's links: got %v, want the supervisor's start span, under which db#1 started", first.Links())
		}
		if len(second.Links()) != 1 || second.Links()[0].SpanContext.SpanID() != first.SpanContext().SpanID() {
			t.Fatalf("second restart's links: got %v, want the first restart, under which db#2 started", second.Links())
		}
		if ev := first.Events(); len(ev) == 0 || ev[0].Name != "failure" {
			t.Fatalf("first restart's events: got %v, want the failure first", ev)
		}
		start3 := byName["start db#3"]
		if start3 == nil || start3.Parent().SpanID() != second.SpanContext().SpanID() {
			t.Fatalf("start db#3: want it a child of the second restart span")
		}

		var rm metricdata.ResourceMetrics
		if err := reader.Collect(context.Background(), &rm); err != nil {
			t.Fatal(err)
		}
		var total int64
		var failed int64
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				if m.Name != "coreservice.restarts" {
					continue
				}
				for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
					total += dp.Value
					if _, ok := dp.Attributes.Value("error.type"); ok {
						failed += dp.Value
					}
				}
			}
		}
		if total != 2 || failed != 1 {
			t.Fatalf("coreservice.restarts: got %d (%d failed), want 2 (1 failed)", total, failed)
		}
	})
}
