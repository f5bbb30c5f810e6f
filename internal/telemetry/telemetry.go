// Package telemetry holds the span names, attribute keys and span helpers
// shared by every coreservice package. Package otelx re-exports the names for
// users (once it exists); library packages use this one so that they never
// import the SDK.
package telemetry

import (
	"errors"
	"reflect"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName is the instrumentation scope of every tracer and meter the
// library creates: the module path.
const ScopeName = "github.com/coreservice/coreservice"

// Attribute keys, all under coreservice.*.
const (
	AttrService   = attribute.Key("coreservice.service")
	AttrTask      = attribute.Key("coreservice.task")
	AttrWorker    = attribute.Key("coreservice.worker")
	AttrRun       = attribute.Key("coreservice.run")
	AttrNextDelay = attribute.Key("coreservice.next_delay")
	AttrCheck     = attribute.Key("coreservice.check")
)

// Span name prefixes; a span's full name is the prefix, a space, and the
// service (and for tasks, "/" and the task) name.
const (
	SpanStart       = "start"
	SpanStop        = "stop"
	SpanTask        = "task"
	SpanHealthcheck = "healthcheck"
)

// SpanName joins a prefix and a subject: SpanName(SpanStart, "api") is "start api".
func SpanName(prefix, subject string) string { return prefix + " " + subject }

// End ends span, first recording err on it when err is not nil: status
// Error with the message, the error.type attribute and an exception event.
// It never sets status Ok.
func End(span trace.Span, err error) {
	if err != nil && span.IsRecording() {
		RecordError(span, err)
	}
	span.End()
}

// RecordError marks span as failed by err, as End does, without ending it.
func RecordError(span trace.Span, err error) {
	span.SetStatus(codes.Error, err.Error())
	span.SetAttributes(semconv.ErrorTypeKey.String(ErrorType(err)))
	span.RecordError(err)
}

// ErrorType is the value of the error.type attribute for err: the Go type of
// the innermost error in its Unwrap chain that is not a plain wrapper.
func ErrorType(err error) string {
	for {
		t := reflect.TypeOf(err)
		if t == nil {
			return "_OTHER"
		}
		s := t.String()
		if s != "*fmt.wrapError" && s != "*fmt.wrapErrors" {
			return s
		}
		next := errors.Unwrap(err)
		if next == nil {
			return s
		}
		err = next
	}
}
