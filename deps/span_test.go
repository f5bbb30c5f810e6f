package deps_test

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/deps"
)

func TestStartTraceShowsTheTree(t *testing.T) {
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	rec := &recorder{}
	disk := node("disk", rec, core.TracerProvider(tp))
	db := node("db", rec, core.TracerProvider(tp), deps.Requires(disk))
	api := node("api", rec, core.TracerProvider(tp), deps.Requires(db),
		deps.Lazy(func(context.Context) (*core.Base, error) {
			return node("cache", rec, core.TracerProvider(tp)), nil
		}))
	mustStart(t, api)
	mustStop(t, api)

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
