package telemetry

import (
	"reflect"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// RecordPanic marks span as failed by err, a recovered panic, as
// RecordError does, and puts the panic's stack on the exception event as
// exception.stacktrace. It does not end span.
func RecordPanic(span trace.Span, err error, stack []byte) {
	if !span.IsRecording() {
		return
	}
	span.SetStatus(codes.Error, err.Error())
	span.SetAttributes(semconv.ErrorTypeKey.String(ErrorType(err)))
	span.RecordError(err, trace.WithAttributes(semconv.ExceptionStacktrace(string(stack))))
}

// SpanGate tells a hot loop whether starting a span on a tracer is worth it.
// Even on the OpenTelemetry no-op path, Tracer.Start allocates; a loop that
// asks the gate first allocates nothing while no tracing is installed.
//
// The gate says no only when the tracer is known to record nothing: a
// trace/noop tracer, or the OpenTelemetry global tracer while no provider has
// been installed with otel.SetTracerProvider. It looks again at every call,
// so a provider installed later is picked up by the next span. For any other
// tracer it always says yes. The zero SpanGate always says yes.
type SpanGate struct {
	off bool // the tracer never records
	// unset is the global delegating provider the tracer came from; spans
	// are off while it is still the global provider (no SDK installed).
	unset trace.TracerProvider
}

// globalPkg is where OpenTelemetry keeps its default, delegating provider.
const globalPkg = "go.opentelemetry.io/otel/internal/global"

// NewSpanGate returns the gate for tracer, which was obtained with
// Tracer(scope) from some provider.
func NewSpanGate(tracer trace.Tracer, scope string) SpanGate {
	if _, ok := tracer.(noop.Tracer); ok {
		return SpanGate{off: true}
	}
	gtp := otel.GetTracerProvider()
	// While the global provider is still the delegating default, the tracer
	// is its (cached) tracer if core got it from there.
	if !globalDefault(gtp) || gtp.Tracer(scope) != tracer {
		return SpanGate{} // an installed provider, or an unknown one: always on
	}
	return SpanGate{unset: gtp}
}

// globalDefault reports whether p is one of OpenTelemetry's default global
// providers, which delegate to whatever is installed later.
func globalDefault(p any) bool {
	t := reflect.TypeOf(p)
	return t != nil && t.Kind() == reflect.Pointer && t.Elem().PkgPath() == globalPkg
}

// GlobalInstalled reports whether a tracer or meter provider has been
// installed as an OpenTelemetry global (otel.SetTracerProvider or
// otel.SetMeterProvider).
func GlobalInstalled() bool {
	return !globalDefault(otel.GetTracerProvider()) || !globalDefault(otel.GetMeterProvider())
}

// On reports whether a span started now could be recorded. It does not
// allocate.
func (g SpanGate) On() bool {
	if g.off {
		return false
	}
	return g.unset == nil || otel.GetTracerProvider() != g.unset
}
