package otelx

import "go.opentelemetry.io/otel"

// FlushErrorHandler logs the count of errors h counted and did not log, as
// Setup's shutdown does.
func FlushErrorHandler(h otel.ErrorHandler) { h.(*errorHandler).flush() }
