package health_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/health"
	"github.com/coreservice/coreservice/internal/coretest"
)

func attr(s sdktrace.ReadOnlySpan, key attribute.Key) (attribute.Value, bool) {
	for _, a := range s.Attributes() {
		if a.Key == key {
			return a.Value, true
		}
	}
	return attribute.Value{}, false
}

func TestCheckSpans(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sr := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
		defer func() { _ = tp.Shutdown(context.Background()) }()

		var tg toggle
		var fnSpans []trace.SpanContext // the span in fn's context, run by run
		api := core.NewService(core.Name("api"), core.Logger(coretest.Quiet()), core.TracerProvider(tp),
			health.Check("ping", pass),
			health.Check("queue", func(ctx context.Context) error {
				fnSpans = append(fnSpans, trace.SpanFromContext(ctx).SpanContext())
				return tg.fn(ctx)
			}, health.Threshold(5)))
		coretest.MustStart(t, api)
		tg.set(errors.New("too deep"))
		<-time.After(150 * time.Millisecond) // one monitor run, at 100 ms
		coretest.MustStop(t, api)

		byID := make(map[trace.SpanID]sdktrace.ReadOnlySpan)
		var checks []sdktrace.ReadOnlySpan
		for _, s := range sr.Ended() {
			byID[s.SpanContext().SpanID()] = s
			if s.Name() == "check ping" || s.Name() == "check queue" {
				checks = append(checks, s)
			}
		}
		// Two runs of each check: at start and on the tick.
		if len(checks) != 4 {
			t.Fatalf("check spans: got %d, want 4", len(checks))
		}
		parents := map[string]int{}
		for _, s := range checks {
			parent, ok := byID[s.Parent().SpanID()]
			if !ok {
				t.Fatalf("%s: parent %v not recorded, want start api or healthcheck api", s.Name(), s.Parent().SpanID())
			}
			parents[parent.Name()+" > "+s.Name()]++
			if s.SpanKind() != trace.SpanKindInternal {
				t.Errorf("%s: kind %v, want internal", s.Name(), s.SpanKind())
			}
			if s.InstrumentationScope().Name != "github.com/coreservice/coreservice" {
				t.Errorf("%s: scope %q, want the module path", s.Name(), s.InstrumentationScope().Name)
			}
			want := s.Name()[len("check "):]
			if v, ok := attr(s, "coreservice.check"); !ok || v.AsString() != want {
				t.Errorf("%s: coreservice.check = %v, want %q", s.Name(), v.String(), want)
			}
			if s.Status().Code == codes.Ok {
				t.Errorf("%s: status Ok; the library never sets it", s.Name())
			}
		}
		for _, k := range []string{"start api > check ping", "start api > check queue",
			"healthcheck api > check ping", "healthcheck api > check queue"} {
			if parents[k] != 1 {
				t.Errorf("spans %q: got %d, want 1 (all: %v)", k, parents[k], parents)
			}
		}

		var failed sdktrace.ReadOnlySpan
		for _, s := range checks {
			if s.Name() == "check queue" && byID[s.Parent().SpanID()].Name() == "healthcheck api" {
				failed = s
			}
		}
		if failed.Status().Code != codes.Error || failed.Status().Description != "too deep" {
			t.Errorf("failed run: status %v %q, want Error with the message", failed.Status().Code, failed.Status().Description)
		}
		if v, ok := attr(failed, "error.type"); !ok || v.AsString() != "*errors.errorString" {
			t.Errorf("failed run: error.type = %v, want *errors.errorString", v.String())
		}
		if ev := failed.Events(); len(ev) != 1 || ev[0].Name != "exception" {
			t.Errorf("failed run: events %v, want one exception", ev)
		}
		// fn runs under its check's span, so its own spans nest under it.
		if len(fnSpans) != 2 || !fnSpans[1].Equal(failed.SpanContext()) {
			t.Errorf("span in fn's context: got %v, want the check span %v", fnSpans, failed.SpanContext())
		}
	})
}
