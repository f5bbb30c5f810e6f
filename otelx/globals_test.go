package otelx_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/internal/coretest"
	"github.com/coreservice/coreservice/otelx"
	"github.com/coreservice/coreservice/task"
)

// globalsRun is set once TestSetupInstallsTheGlobalsOnce has run in this
// process (go test -count=N runs it N times).
var globalsRun bool

// TestSetupInstallsTheGlobalsOnce is the only test of the package that
// installs OpenTelemetry globals: they cannot be uninstalled, so it runs
// once per process.
func TestSetupInstallsTheGlobalsOnce(t *testing.T) {
	if globalsRun {
		t.Skip("the OpenTelemetry globals were installed by an earlier run in this process")
	}
	globalsRun = true
	c := coretest.NewCollector(t)
	toCollector(t, c)
	logs := coretest.NewLogs()
	// Two Setups at once: exactly one installs the globals.
	type result struct {
		shutdown func(context.Context) error
		err      error
	}
	results := make(chan result, 2)
	for range 2 {
		go func() {
			sd, err := otelx.Setup(t.Context(), otelx.ServiceName("frontend"), otelx.Logger(logs.Logger()))
			results <- result{sd, err}
		}()
	}
	var shutdown func(context.Context) error
	for range 2 {
		r := <-results
		switch {
		case r.err == nil && shutdown == nil:
			shutdown = r.shutdown
		case r.err == nil:
			_ = r.shutdown(t.Context())
			t.Fatal("two concurrent Setups: got both installed, want one ErrGlobalsInstalled")
		case !errors.Is(r.err, otelx.ErrGlobalsInstalled):
			t.Fatalf("Setup: got %v, want nil or ErrGlobalsInstalled", r.err)
		}
	}
	if shutdown == nil {
		t.Fatal("two concurrent Setups: got none installed, want one")
	}
	if _, ok := otel.GetTracerProvider().(*sdktrace.TracerProvider); !ok {
		t.Fatalf("global tracer provider: got %T, want the SDK's", otel.GetTracerProvider())
	}
	fields := otel.GetTextMapPropagator().Fields()
	slices.Sort(fields)
	if got := strings.Join(fields, ","); got != "baggage,traceparent,tracestate" {
		t.Fatalf("propagator fields: got %s, want baggage,traceparent,tracestate", got)
	}

	// A task that calls another service carries its run's trace there.
	got := make(chan trace.SpanContext, 1)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := otel.GetTextMapPropagator().Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		got <- trace.SpanContextFromContext(ctx)
	}))
	defer backend.Close()
	sent := make(chan trace.SpanContext, 1)
	call := task.Func("call", func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, backend.URL, nil)
		if err != nil {
			return err
		}
		otel.GetTextMapPropagator().Inject(ctx, propagation.HeaderCarrier(req.Header))
		resp, err := backend.Client().Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		sent <- trace.SpanContextFromContext(ctx)
		return nil
	}, task.Once())
	// No TracerProvider option: the service uses the global one.
	svc := core.NewService(core.Name("frontend"), core.Logger(quiet), call)
	if err := svc.Start(t.Context()); err != nil {
		t.Fatalf("Start: got %v, want nil", err)
	}
	run, remote := <-sent, <-got
	if !run.IsValid() || remote.TraceID() != run.TraceID() || remote.SpanID() != run.SpanID() {
		t.Fatalf("backend saw trace %v span %v, want the run's %v %v",
			remote.TraceID(), remote.SpanID(), run.TraceID(), run.SpanID())
	}
	if err := svc.Stop(t.Context()); err != nil {
		t.Fatalf("Stop: got %v, want nil", err)
	}
	backend.Client().CloseIdleConnections()

	if _, err := otelx.Setup(t.Context()); !errors.Is(err, otelx.ErrGlobalsInstalled) {
		t.Fatalf("second Setup: got %v, want ErrGlobalsInstalled", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := shutdown(ctx); err != nil {
		t.Fatalf("shutdown: got %v, want nil", err)
	}
	if err := shutdown(ctx); err != nil {
		t.Fatalf("second shutdown: got %v, want nil again", err)
	}
	var runSpan bool
	for _, s := range c.Spans() {
		if s.Name == "task frontend/call" && s.Resource["service.name"] == "frontend" {
			runSpan = true
		}
	}
	if !runSpan {
		t.Fatalf("exported spans: got %d, want the task run's among them", len(c.Spans()))
	}
}
