package deps_test

import (
	"context"
	"testing"

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
