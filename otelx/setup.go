package otelx

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/contrib/propagators/autoprop"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/internal/telemetry"
)

// ErrGlobalsInstalled is returned by Setup when an OpenTelemetry global
// tracer or meter provider is already installed, by an earlier Setup or by
// other code. Setup then builds and installs nothing.
var ErrGlobalsInstalled = errors.New("otelx: an OpenTelemetry global provider is already installed")

// installing makes Setup's check for installed globals and its install one
// step.
var installing sync.Mutex

// Telemetry is a tracer provider, a meter provider and a propagator built
// from the OTEL_* environment by New. Its methods are safe for concurrent
// use.
type Telemetry struct {
	tp       *sdktrace.TracerProvider // nil when the SDK is disabled
	mp       *sdkmetric.MeterProvider // nil when the SDK is disabled
	prop     propagation.TextMapPropagator
	handler  *errorHandler // Setup's, flushed by Shutdown; nil for New
	once     sync.Once
	shutdown error
}

// New builds, without installing anything globally, an SDK tracer provider
// and meter provider configured by the standard OpenTelemetry environment,
// and the propagator it names:
//
//   - OTEL_TRACES_EXPORTER and OTEL_METRICS_EXPORTER: unset or otlp, an OTLP
//     exporter; console, none, or (metrics) prometheus, the exporters of
//     go.opentelemetry.io/contrib/exporters/autoexport. Spans are batched;
//     metrics are exported every OTEL_METRIC_EXPORT_INTERVAL (default 60 s).
//   - OTEL_EXPORTER_OTLP_PROTOCOL (and its _TRACES_ and _METRICS_ forms):
//     grpc (the default here, unlike the specification's http/protobuf, so
//     that the default endpoint is localhost:4317, where Jaeger and the
//     OpenTelemetry Collector listen) or http/protobuf (localhost:4318).
//   - OTEL_EXPORTER_OTLP_ENDPOINT and the exporters' other variables, read by
//     the exporters themselves.
//   - OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES: the resource; the
//     ServiceName option comes first, then OTEL_SERVICE_NAME, then the
//     service.name of OTEL_RESOURCE_ATTRIBUTES, then the program's name.
//   - OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG, read by the SDK.
//   - OTEL_PROPAGATORS, through go.opentelemetry.io/contrib/propagators/autoprop;
//     by default W3C tracecontext and baggage.
//   - OTEL_SDK_DISABLED=true: no SDK at all; the providers are OpenTelemetry's
//     no-ops and Shutdown does nothing.
//
// A malformed variable (an unknown protocol, exporter, sampler or
// propagator, an endpoint that is not an http or https URL, a bad sampler
// ratio or resource attribute list, a timeout, interval or batch size such
// as OTEL_EXPORTER_OTLP_TIMEOUT, OTEL_METRIC_EXPORT_INTERVAL or
// OTEL_BSP_MAX_QUEUE_SIZE that is not a bare whole number in range) is an
// *EnvError naming it, and nothing is built. Building connects to nothing:
// an unreachable collector shows up as export errors later, never here.
// OTEL_METRICS_EXPORTER=prometheus is the exception that listens: New opens
// its HTTP server on OTEL_EXPORTER_PROMETHEUS_HOST:OTEL_EXPORTER_PROMETHEUS_PORT
// (default localhost:9464, loopback; a port in use is New's error) until
// Shutdown.
func New(ctx context.Context, opts ...Option) (*Telemetry, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	if err := checkEnv(); err != nil {
		return nil, err
	}
	prop, err := propagator()
	if err != nil {
		return nil, err
	}
	if strings.EqualFold(env("OTEL_SDK_DISABLED"), "true") {
		return &Telemetry{prop: prop}, nil
	}
	res, err := newResource(ctx, cfg.serviceName)
	if err != nil {
		return nil, err
	}
	spans, err := spanExporter(ctx)
	if err != nil {
		return nil, err
	}
	reader, err := metricReader(ctx)
	if err != nil {
		if spans != nil {
			err = errors.Join(err, spans.Shutdown(ctx))
		}
		return nil, err
	}
	topts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	if spans != nil {
		topts = append(topts, sdktrace.WithBatcher(spans))
	}
	mopts := []sdkmetric.Option{sdkmetric.WithResource(res)}
	if reader != nil {
		mopts = append(mopts, sdkmetric.WithReader(reader))
	}
	return &Telemetry{
		tp:   sdktrace.NewTracerProvider(topts...),
		mp:   sdkmetric.NewMeterProvider(mopts...),
		prop: prop,
	}, nil
}

// Setup builds what New builds and installs it as the OpenTelemetry global
// tracer provider, meter provider and propagator, so that every service
// that sets no provider of its own (core.TracerProvider, core.MeterProvider)
// uses them, and a task that calls another service with an instrumented
// client continues its trace there. It also installs an OpenTelemetry error
// handler that logs errors, such as failed exports to an unreachable
// collector, through the Logger option at most once per ErrorInterval (the
// ones in between are counted in the next line).
//
// Call Setup once, early in main, before building services, and defer the
// shutdown it returns: it flushes what is buffered and stops the exporters,
// within its context; it is idempotent and returns the same result every
// time. Setup returns ErrGlobalsInstalled, and installs nothing, when a
// global tracer or meter provider is already installed (a second Setup, for
// example); to build providers without installing them, use New. With
// OTEL_SDK_DISABLED=true, Setup installs nothing and returns a no-op
// shutdown.
func Setup(ctx context.Context, opts ...Option) (shutdown func(context.Context) error, err error) {
	// Concurrent Setups must not both see no global installed: the check
	// and the install are one step. The OpenTelemetry globals are process
	// wide; so is this lock, which guards nothing else.
	installing.Lock()
	defer installing.Unlock()
	if telemetry.GlobalInstalled() {
		return nil, ErrGlobalsInstalled
	}
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	t, err := New(ctx, opts...)
	if err != nil {
		return nil, err
	}
	if t.tp == nil { // disabled
		return t.Shutdown, nil
	}
	t.handler = newErrorHandler(cfg.logger, cfg.errorInterval)
	otel.SetErrorHandler(t.handler)
	otel.SetTextMapPropagator(t.prop)
	otel.SetTracerProvider(t.tp)
	otel.SetMeterProvider(t.mp)
	return t.Shutdown, nil
}

// TracerProvider returns the tracer provider: the SDK's, or a no-op one when
// OTEL_SDK_DISABLED=true.
func (t *Telemetry) TracerProvider() trace.TracerProvider {
	if t.tp == nil {
		return tracenoop.NewTracerProvider()
	}
	return t.tp
}

// MeterProvider returns the meter provider: the SDK's, or a no-op one when
// OTEL_SDK_DISABLED=true.
func (t *Telemetry) MeterProvider() metric.MeterProvider {
	if t.mp == nil {
		return metricnoop.NewMeterProvider()
	}
	return t.mp
}

// Propagator returns the propagator OTEL_PROPAGATORS names (by default W3C
// tracecontext and baggage).
func (t *Telemetry) Propagator() propagation.TextMapPropagator { return t.prop }

// Option returns a core.Option that makes a service use t's tracer and
// meter providers, for programs that do not install them globally:
// core.NewService(core.Name("api"), t.Option()).
func (t *Telemetry) Option() core.Option { return providersOption{t} }

type providersOption struct{ t *Telemetry }

func (o providersOption) ApplyTo(c *core.Config) {
	core.TracerProvider(o.t.TracerProvider()).ApplyTo(c)
	core.MeterProvider(o.t.MeterProvider()).ApplyTo(c)
}
func (o providersOption) String() string { return "otelx.Telemetry.Option()" }

// Shutdown flushes the spans and metrics still buffered, then stops the
// providers and their exporters, within ctx: when ctx ends first (a
// collector that cannot be reached, say), it returns ctx's error with what
// was not exported; an export still under way then ends in the background
// within the exporter's own timeout (OTEL_EXPORTER_OTLP_TIMEOUT, default
// 10 s), since the SDK offers no way to cut it short. It is idempotent: every call returns the first call's
// result. Spans and metrics recorded after it are dropped.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	t.once.Do(func() {
		var errs []error
		if t.tp != nil {
			if err := t.tp.Shutdown(ctx); err != nil {
				errs = append(errs, fmt.Errorf("tracer provider: %w", err))
			}
		}
		if t.mp != nil {
			if err := t.mp.Shutdown(ctx); err != nil {
				errs = append(errs, fmt.Errorf("meter provider: %w", err))
			}
		}
		if t.handler != nil {
			t.handler.flush()
		}
		if err := errors.Join(errs...); err != nil {
			t.shutdown = fmt.Errorf("otelx: shutdown: %w", err)
		}
	})
	return t.shutdown
}

// propagator is what OTEL_PROPAGATORS names, through autoprop, or W3C
// tracecontext and baggage.
func propagator() (propagation.TextMapPropagator, error) {
	v := env("OTEL_PROPAGATORS")
	if v == "" {
		return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}), nil
	}
	names := strings.Split(v, ",")
	for i := range names {
		names[i] = strings.TrimSpace(names[i])
	}
	p, err := autoprop.TextMapPropagator(names...)
	if err != nil {
		return nil, &EnvError{"OTEL_PROPAGATORS", v, err.Error()}
	}
	return p, nil
}

// newResource is the resource of everything exported: the SDK, host and
// process attributes, then OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME,
// then the service name option or, failing all, the program's name.
func newResource(ctx context.Context, serviceName string) (*resource.Resource, error) {
	res, err := resource.New(ctx, resource.WithTelemetrySDK(), resource.WithHost(),
		resource.WithProcessPID(), resource.WithProcessRuntimeName(), resource.WithProcessRuntimeVersion())
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("otelx: resource: %w", err)
	}
	fromEnv, err := resource.New(ctx, resource.WithFromEnv())
	if err != nil {
		return nil, &EnvError{"OTEL_RESOURCE_ATTRIBUTES", env("OTEL_RESOURCE_ATTRIBUTES"), err.Error()}
	}
	if serviceName == "" {
		if v, ok := fromEnv.Set().Value(semconv.ServiceNameKey); !ok || v.AsString() == "" {
			serviceName = filepath.Base(os.Args[0])
		}
	}
	if res, err = resource.Merge(res, fromEnv); err != nil {
		return nil, fmt.Errorf("otelx: resource: %w", err)
	}
	if serviceName != "" {
		if res, err = resource.Merge(res, resource.NewSchemaless(semconv.ServiceName(serviceName))); err != nil {
			return nil, fmt.Errorf("otelx: resource: %w", err)
		}
	}
	return res, nil
}

// spanExporter is the exporter OTEL_TRACES_EXPORTER names; nil for none.
func spanExporter(ctx context.Context) (sdktrace.SpanExporter, error) {
	var (
		exp sdktrace.SpanExporter
		err error
	)
	switch env("OTEL_TRACES_EXPORTER") {
	case "", "otlp":
		if otlpProtocol("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") == "grpc" {
			exp, err = otlptracegrpc.New(ctx)
		} else {
			exp, err = otlptracehttp.New(ctx)
		}
	case "none":
		return nil, nil
	default:
		exp, err = autoexport.NewSpanExporter(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("otelx: span exporter: %w", err)
	}
	return exp, nil
}

// metricReader is the reader OTEL_METRICS_EXPORTER names; nil for none.
func metricReader(ctx context.Context) (sdkmetric.Reader, error) {
	var (
		exp sdkmetric.Exporter
		err error
	)
	switch env("OTEL_METRICS_EXPORTER") {
	case "", "otlp":
		if otlpProtocol("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL") == "grpc" {
			exp, err = otlpmetricgrpc.New(ctx)
		} else {
			exp, err = otlpmetrichttp.New(ctx)
		}
	case "none":
		return nil, nil
	default:
		r, err := autoexport.NewMetricReader(ctx)
		if err != nil {
			return nil, fmt.Errorf("otelx: metric reader: %w", err)
		}
		return r, nil
	}
	if err != nil {
		return nil, fmt.Errorf("otelx: metric exporter: %w", err)
	}
	return sdkmetric.NewPeriodicReader(exp), nil
}
