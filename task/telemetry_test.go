package task_test

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cenkalti/backoff/v4"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/internal/coretest"
	"github.com/coreservice/coreservice/task"
)

func newRecorder(t *testing.T) (*tracetest.SpanRecorder, trace.TracerProvider) {
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return sr, tp
}

func spansNamed(sr *tracetest.SpanRecorder, name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range sr.Ended() {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

func attrs(s sdktrace.ReadOnlySpan) map[attribute.Key]attribute.Value {
	m := map[attribute.Key]attribute.Value{}
	for _, a := range s.Attributes() {
		m[a.Key] = a.Value
	}
	return m
}

func TestEveryRunIsARootSpanLinkedToStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sr, tp := newRecorder(t)
		var mu sync.Mutex
		var fnSpans []trace.SpanContext
		var n atomic.Int32
		tk := task.Func("fetch", func(ctx context.Context) error {
			mu.Lock()
			fnSpans = append(fnSpans, trace.SpanContextFromContext(ctx))
			mu.Unlock()
			if n.Add(1) == 1 {
				return errBoom
			}
			return nil
		}, task.Every(10*time.Second),
			task.Retry(func() backoff.BackOff { return backoff.NewConstantBackOff(time.Second) }))
		svc := newService(core.TracerProvider(tp), tk)
		coretest.MustStart(t, svc)
		advance(5 * time.Second) // runs at 0 (fails) and 1s
		coretest.MustStop(t, svc)

		start := spansNamed(sr, "start svc")
		runs := spansNamed(sr, "task svc/fetch")
		if len(start) != 1 || len(runs) != 2 {
			t.Fatalf("spans: got %d start and %d task spans, want 1 and 2", len(start), len(runs))
		}
		for i, s := range runs {
			if s.Parent().IsValid() || s.SpanContext().TraceID() == start[0].SpanContext().TraceID() {
				t.Errorf("run %d: not the root of its own trace", i+1)
			}
			if len(s.Links()) != 1 || s.Links()[0].SpanContext.SpanID() != start[0].SpanContext().SpanID() {
				t.Errorf("run %d: links %v, want one link to the start span", i+1, s.Links())
			}
			if s.SpanKind() != trace.SpanKindInternal {
				t.Errorf("run %d: kind %v, want internal", i+1, s.SpanKind())
			}
			if s.InstrumentationScope().Name != "github.com/coreservice/coreservice" {
				t.Errorf("run %d: scope %q, want the module path", i+1, s.InstrumentationScope().Name)
			}
			if !fnSpans[i].Equal(s.SpanContext()) {
				t.Errorf("run %d: the function's context carries span %v, want the run's", i+1, fnSpans[i].SpanID())
			}
			if s.Status().Code == codes.Ok {
				t.Errorf("run %d: status Ok; the library never sets it", i+1)
			}
			a := attrs(s)
			want := map[attribute.Key]attribute.Value{
				"coreservice.service":    attribute.StringValue("svc"),
				"coreservice.task":       attribute.StringValue("fetch"),
				"coreservice.worker":     attribute.IntValue(1),
				"coreservice.run":        attribute.Int64Value(int64(i + 1)),
				"coreservice.next_delay": attribute.Float64Value([]float64{1, 10}[i]),
			}
			for k, v := range want {
				if a[k] != v {
					t.Errorf("run %d: %s = %v, want %v", i+1, k, a[k].String(), v.String())
				}
			}
		}

		failed, ok := runs[0], runs[1]
		if failed.Status().Code != codes.Error || failed.Status().Description != "boom" {
			t.Errorf("failed run: status %v, want Error boom", failed.Status())
		}
		if got := attrs(failed)["error.type"].AsString(); got != "*errors.errorString" {
			t.Errorf("failed run: error.type %q, want *errors.errorString", got)
		}
		if len(failed.Events()) != 1 || failed.Events()[0].Name != "exception" {
			t.Errorf("failed run: events %v, want one exception event", failed.Events())
		}
		if ok.Status().Code != codes.Unset || len(ok.Events()) != 0 {
			t.Errorf("successful run: status %v, events %v, want unset and none", ok.Status(), ok.Events())
		}
	})
}

func TestLastRunHasNoNextDelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sr, tp := newRecorder(t)
		svc := newService(core.TracerProvider(tp), task.Func("init", func(context.Context) error { return nil }, task.Once()))
		coretest.MustStart(t, svc)
		synctest.Wait()
		coretest.MustStop(t, svc)
		runs := spansNamed(sr, "task svc/init")
		if len(runs) != 1 {
			t.Fatalf("task spans: got %d, want 1", len(runs))
		}
		if v, ok := attrs(runs[0])["coreservice.next_delay"]; ok {
			t.Fatalf("next_delay: got %v, want none: no run follows", v.String())
		}
	})
}

func TestPanicSpanHasTheStack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sr, tp := newRecorder(t)
		svc := newService(core.TracerProvider(tp), task.Func("crash", func(context.Context) error { panic("kaboom") }, afterStart))
		coretest.MustStart(t, svc)
		waitFailed(t, svc)
		runs := spansNamed(sr, "task svc/crash")
		if len(runs) != 1 {
			t.Fatalf("task spans: got %d, want 1", len(runs))
		}
		s := runs[0]
		if s.Status().Code != codes.Error || s.Status().Description != "panic: kaboom" {
			t.Fatalf("status: got %v, want Error panic: kaboom", s.Status())
		}
		if got := attrs(s)["error.type"].AsString(); got != "*core.PanicError" {
			t.Fatalf("error.type: got %q, want *core.PanicError", got)
		}
		if len(s.Events()) != 1 || s.Events()[0].Name != "exception" {
			t.Fatalf("events: got %v, want one exception event", s.Events())
		}
		var stack string
		for _, a := range s.Events()[0].Attributes {
			if a.Key == "exception.stacktrace" {
				stack = a.Value.AsString()
			}
		}
		if !strings.Contains(stack, "TestPanicSpanHasTheStack") {
			t.Fatalf("exception.stacktrace: got %q, want the panicking goroutine's stack", stack)
		}
	})
}

func TestLogsCarryTheRunSpan(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sr, tp := newRecorder(t)
		logs := &capture{}
		var n atomic.Int32
		tk := task.Func("fetch", func(context.Context) error {
			if n.Add(1) == 1 {
				return errBoom
			}
			return task.ErrDone
		}, task.Retry(func() backoff.BackOff { return backoff.NewConstantBackOff(time.Second) }))
		svc := core.NewService(core.Name("svc"), core.Logger(slog.New(logs)), core.TracerProvider(tp), tk)
		coretest.MustStart(t, svc)
		advance(time.Minute)
		coretest.MustStop(t, svc)
		runs := spansNamed(sr, "task svc/fetch")
		if len(runs) != 2 {
			t.Fatalf("task spans: got %d, want 2", len(runs))
		}
		for i, msg := range []string{"task run failed; retrying", "task worker done: ErrDone"} {
			r, ok := logs.find(msg)
			if !ok {
				t.Fatalf("no log %q", msg)
			}
			if !r.span.Equal(runs[i].SpanContext()) {
				t.Errorf("log %q: span %v, want run %d's", msg, r.span.SpanID(), i+1)
			}
			if r.attrs["service"] != "svc" || r.attrs["task"] != "fetch" || r.attrs["worker"] != "1" {
				t.Errorf("log %q: attrs %v, want service=svc task=fetch worker=1", msg, r.attrs)
			}
		}
	})
}

func TestNoSpansWithANoopProvider(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var valid atomic.Bool
		tk := task.Func("quiet", func(ctx context.Context) error {
			valid.Store(trace.SpanContextFromContext(ctx).IsValid())
			return nil
		}, task.Once())
		svc := newService(core.TracerProvider(noop.NewTracerProvider()), tk)
		coretest.MustStart(t, svc)
		synctest.Wait()
		coretest.MustStop(t, svc)
		if tk.Runs() != 1 || valid.Load() {
			t.Fatalf("runs %d, span in context %v, want 1 run and no span", tk.Runs(), valid.Load())
		}
	})
}

// A provider installed globally after Start (otel.SetTracerProvider) is
// picked up by the SpanGate: runs start producing spans, with the
// attributes. Run in a child process, because the global provider cannot be
// uninstalled and the allocation test and benchmark of this package need it
// unset.
func TestSpanGatePicksUpALateProvider(t *testing.T) {
	if os.Getenv("TASK_TEST_CHILD") == "late-provider" {
		synctest.Test(t, func(t *testing.T) {
			tk := task.Func("tick", func(context.Context) error { return nil }, task.Every(time.Second))
			svc := newService(tk)
			coretest.MustStart(t, svc)
			advance(2500 * time.Millisecond) // runs 1-3, untraced
			sr := tracetest.NewSpanRecorder()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
			otel.SetTracerProvider(tp)
			advance(2 * time.Second) // runs 4 and 5, traced
			coretest.MustStop(t, svc)
			_ = tp.Shutdown(context.Background())
			runs := spansNamed(sr, "task svc/tick")
			if len(runs) != 2 {
				t.Fatalf("task spans after the provider was installed: got %d, want 2", len(runs))
			}
			for i, s := range runs {
				a := attrs(s)
				if a["coreservice.run"].AsInt64() != int64(4+i) || a["coreservice.task"].AsString() != "tick" ||
					a["coreservice.next_delay"].AsFloat64() != 1 || s.Parent().IsValid() {
					t.Errorf("span %d: attributes %v, parent %v", i, s.Attributes(), s.Parent())
				}
			}
		})
		return
	}
	if out, err := runChild(t, "TestSpanGatePicksUpALateProvider", "late-provider"); err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

// next_delay on a run's span is the jittered wait the worker then really
// sleeps, for Every and for Retry waits.
func TestNextDelayIsTheJitteredWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sr, tp := newRecorder(t)
		st := newStamps()
		var n atomic.Int32
		tk := task.Func("j", func(context.Context) error {
			st.add()
			if n.Add(1)%3 == 0 {
				return errBoom
			}
			return nil
		}, task.Every(10*time.Second), task.Jitter(0.5),
			task.Retry(func() backoff.BackOff { return backoff.NewConstantBackOff(4 * time.Second) }))
		svc := newService(core.TracerProvider(tp), tk)
		coretest.MustStart(t, svc)
		advance(5 * time.Minute)
		coretest.MustStop(t, svc)
		at := st.get()
		runs := spansNamed(sr, "task svc/j")
		if len(runs) < 20 || len(runs) != len(at) {
			t.Fatalf("got %d spans for %d runs, want one per run, at least 20", len(runs), len(at))
		}
		for i := range len(at) - 1 {
			want := (at[i+1] - at[i]).Seconds()
			if got := attrs(runs[i])["coreservice.next_delay"].AsFloat64(); got != want {
				t.Fatalf("run %d: next_delay %v, want the wait that followed, %v", i+1, got, want)
			}
		}
	})
}
