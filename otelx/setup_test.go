package otelx_test

import (
	"bufio"
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/internal/coretest"
	"github.com/coreservice/coreservice/otelx"
	"github.com/coreservice/coreservice/task"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var quiet = slog.New(slog.DiscardHandler)

// toCollector points every OTLP exporter at c, over http/protobuf.
func toCollector(t *testing.T, c *coretest.Collector) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", c.URL())
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
}

func mustNew(t *testing.T, opts ...otelx.Option) *otelx.Telemetry {
	t.Helper()
	tel, err := otelx.New(t.Context(), opts...)
	if err != nil {
		t.Fatalf("New: got %v, want nil", err)
	}
	return tel
}

// ticker is a service "api" with a task "tick" that runs every 10 ms and
// closes ran after its third run.
func ticker(opts ...core.Option) (svc *core.Base, ran <-chan struct{}) {
	ch := make(chan struct{})
	n := 0
	tk := task.Func("tick", func(context.Context) error {
		if n++; n == 3 {
			close(ch)
		}
		return nil
	}, task.Every(10*time.Millisecond))
	return core.NewService(append(opts, core.Name("api"), core.Logger(quiet), tk)...), ch
}

func TestNewExportsSpansAndMetricsWhereTheEnvironmentSays(t *testing.T) {
	c := coretest.NewCollector(t)
	toCollector(t, c)
	t.Setenv("OTEL_SERVICE_NAME", "billing")
	tel := mustNew(t)
	svc, ran := ticker(tel.Option())
	if err := svc.Start(t.Context()); err != nil {
		t.Fatalf("Start: got %v, want nil", err)
	}
	<-ran
	if err := svc.Stop(t.Context()); err != nil {
		t.Fatalf("Stop: got %v, want nil", err)
	}
	if err := tel.Shutdown(t.Context()); err != nil {
		t.Fatalf("Shutdown: got %v, want nil", err)
	}
	names := map[string]bool{}
	for _, s := range c.Spans() {
		names[s.Name] = true
		if got := s.Resource["service.name"]; got != "billing" {
			t.Fatalf("span %q: service.name: got %q, want billing", s.Name, got)
		}
	}
	for _, want := range []string{"start api", "stop api", "task api/tick"} {
		if !names[want] {
			t.Errorf("spans: got %v, want %q among them", names, want)
		}
	}
	metrics := c.MetricNames()
	for _, want := range []string{"billing coreservice.task.run.duration", "billing coreservice.service.state"} {
		if !slices.Contains(metrics, want) {
			t.Errorf("metrics: got %v, want %q among them", metrics, want)
		}
	}
}

func TestServiceNamePrecedence(t *testing.T) {
	program := filepath.Base(os.Args[0])
	for _, tc := range []struct {
		name     string
		opt      string
		env      string // OTEL_SERVICE_NAME
		resource string // OTEL_RESOURCE_ATTRIBUTES
		want     string
	}{
		{name: "option first", opt: "opt", env: "env", resource: "service.name=res", want: "opt"},
		{name: "then OTEL_SERVICE_NAME", env: "env", resource: "service.name=res", want: "env"},
		{name: "then OTEL_RESOURCE_ATTRIBUTES", resource: "service.name=res,team=core", want: "res"},
		{name: "then the program", resource: "team=core", want: program},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := coretest.NewCollector(t)
			toCollector(t, c)
			t.Setenv("OTEL_SERVICE_NAME", tc.env)
			t.Setenv("OTEL_RESOURCE_ATTRIBUTES", tc.resource)
			var opts []otelx.Option
			if tc.opt != "" {
				opts = append(opts, otelx.ServiceName(tc.opt))
			}
			tel := mustNew(t, opts...)
			_, span := tel.TracerProvider().Tracer("test").Start(t.Context(), "one")
			span.End()
			if err := tel.Shutdown(t.Context()); err != nil {
				t.Fatalf("Shutdown: got %v, want nil", err)
			}
			spans := c.Spans()
			if len(spans) != 1 {
				t.Fatalf("spans: got %d, want 1", len(spans))
			}
			if got := spans[0].Resource["service.name"]; got != tc.want {
				t.Fatalf("service.name: got %q, want %q", got, tc.want)
			}
			if tc.resource == "team=core" && spans[0].Resource["team"] != "core" {
				t.Fatalf("resource: got %v, want team=core from OTEL_RESOURCE_ATTRIBUTES", spans[0].Resource)
			}
		})
	}
}

func TestMalformedEnvironmentNamesTheVariable(t *testing.T) {
	for _, tc := range []struct{ name, value string }{
		{"OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"},
		{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "udp"},
		{"OTEL_EXPORTER_OTLP_ENDPOINT", "localhost:4317"},
		{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://"},
		{"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://[::1"},
		{"OTEL_TRACES_SAMPLER", "sometimes"},
		{"OTEL_TRACES_EXPORTER", "zipkin"},
		{"OTEL_METRICS_EXPORTER", "statsd"},
		{"OTEL_PROPAGATORS", "tracecontext,smoke-signals"},
		{"OTEL_SDK_DISABLED", "yes"},
		{"OTEL_RESOURCE_ATTRIBUTES", "team"},
	} {
		t.Run(tc.name+"="+tc.value, func(t *testing.T) {
			t.Setenv(tc.name, tc.value)
			tel, err := otelx.New(t.Context())
			var ee *otelx.EnvError
			if !errors.As(err, &ee) || ee.Var != tc.name {
				if tel != nil {
					_ = tel.Shutdown(t.Context())
				}
				t.Fatalf("New: got %v, want an *EnvError naming %s", err, tc.name)
			}
			if !strings.Contains(err.Error(), tc.name) {
				t.Fatalf("error: got %q, want it to name %s", err, tc.name)
			}
		})
	}
	t.Run("OTEL_TRACES_SAMPLER_ARG=2", func(t *testing.T) {
		t.Setenv("OTEL_TRACES_SAMPLER", "traceidratio")
		t.Setenv("OTEL_TRACES_SAMPLER_ARG", "2")
		_, err := otelx.New(t.Context())
		var ee *otelx.EnvError
		if !errors.As(err, &ee) || ee.Var != "OTEL_TRACES_SAMPLER_ARG" {
			t.Fatalf("New: got %v, want an *EnvError naming OTEL_TRACES_SAMPLER_ARG", err)
		}
	})
}

func TestBadOptions(t *testing.T) {
	for _, opt := range []otelx.Option{otelx.ServiceName(""), otelx.ErrorInterval(0), nil} {
		if _, err := otelx.New(t.Context(), opt); err == nil {
			t.Errorf("New(%v): got nil, want an error", opt)
		}
	}
}

func TestSDKDisabledBuildsNothing(t *testing.T) {
	c := coretest.NewCollector(t)
	toCollector(t, c)
	t.Setenv("OTEL_SDK_DISABLED", "true")
	tel := mustNew(t)
	svc, ran := ticker(tel.Option())
	if err := svc.Start(t.Context()); err != nil {
		t.Fatalf("Start: got %v, want nil", err)
	}
	<-ran
	_ = svc.Stop(t.Context())
	if err := tel.Shutdown(t.Context()); err != nil {
		t.Fatalf("Shutdown: got %v, want nil", err)
	}
	if got := c.Spans(); len(got) != 0 {
		t.Fatalf("spans exported: got %d, want 0", len(got))
	}
	if _, span := tel.TracerProvider().Tracer("t").Start(t.Context(), "x"); span.IsRecording() {
		t.Fatal("span: got recording, want a no-op span")
	}
}

func TestDefaultProtocolIsGRPC(t *testing.T) {
	// A plain listener shows what the exporter speaks: gRPC opens with the
	// HTTP/2 preface, http/protobuf with "POST /v1/traces".
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+l.Addr().String())
	t.Setenv("OTEL_METRICS_EXPORTER", "none")
	t.Setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "500") // ms: the export gives up before Shutdown does
	first := make(chan string, 1)
	go func() {
		conn, err := l.Accept()
		if err != nil {
			first <- err.Error()
			return
		}
		defer conn.Close()
		line, _ := bufio.NewReader(conn).ReadString('\n')
		first <- line
	}()
	tel := mustNew(t)
	_, span := tel.TracerProvider().Tracer("test").Start(t.Context(), "one")
	span.End()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	_ = tel.Shutdown(ctx) // fails: the listener is no collector
	if got := <-first; !strings.HasPrefix(got, "PRI * HTTP/2.0") {
		t.Fatalf("first line sent: got %q, want the HTTP/2 preface of gRPC", got)
	}
}

func TestShutdownIsBoundedByItsContextWhenTheCollectorIsUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+addr)
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
	// Each export gives up after 1 s, after Shutdown has returned: the
	// SDK's export goroutine ends then, before goleak looks.
	t.Setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1000")
	tel := mustNew(t)
	svc, ran := ticker(tel.Option())
	if err := svc.Start(t.Context()); err != nil {
		t.Fatalf("Start: got %v, want nil", err)
	}
	<-ran
	if got := svc.State(); got != core.StateRunning {
		t.Fatalf("state while exports fail: got %v, want running", got)
	}
	if err := svc.Stop(t.Context()); err != nil {
		t.Fatalf("Stop: got %v, want nil", err)
	}
	const bound = 300 * time.Millisecond
	ctx, cancel := context.WithTimeout(t.Context(), bound)
	defer cancel()
	began := time.Now()
	err = tel.Shutdown(ctx)
	// A generous margin: this guards against a hang, it is not a timing
	// measurement.
	if took := time.Since(began); took > bound+5*time.Second {
		t.Fatalf("Shutdown took %v, want about its context's %v", took, bound)
	}
	if err == nil {
		t.Fatal("Shutdown: got nil, want the export failure")
	}
	if again := tel.Shutdown(t.Context()); again != err {
		t.Fatalf("second Shutdown: got %v, want the first result %v", again, err)
	}
}

var errBoom = errors.New("boom")
