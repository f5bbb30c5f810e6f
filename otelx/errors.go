package otelx

import (
	"log/slog"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
)

// NewErrorHandler returns an OpenTelemetry error handler that logs the
// errors the SDK reports (failed exports, dropped spans) to l, nil meaning
// slog.Default() at the time of each line, at most once per interval: the errors in between are
// counted, and the count is logged with the next one. Setup installs one;
// programs that use New can install one with otel.SetErrorHandler. interval
// must be positive; a non-positive interval logs every error.
func NewErrorHandler(l *slog.Logger, interval time.Duration) otel.ErrorHandler {
	return newErrorHandler(l, interval)
}

// errorHandler is NewErrorHandler's handler.
type errorHandler struct {
	log      *slog.Logger // nil: slog.Default()
	interval time.Duration

	mu         sync.Mutex
	last       time.Time // when an error was last logged
	suppressed int       // errors since then, not logged
}

func newErrorHandler(l *slog.Logger, interval time.Duration) *errorHandler {
	return &errorHandler{log: l, interval: interval}
}

// logger is where h logs: its logger, or the default one of now.
func (h *errorHandler) logger() *slog.Logger {
	if h.log == nil {
		return slog.Default()
	}
	return h.log
}

// Handle logs err, or counts it if an error was logged less than an
// interval ago.
func (h *errorHandler) Handle(err error) {
	now := time.Now()
	h.mu.Lock()
	if !h.last.IsZero() && now.Sub(h.last) < h.interval {
		h.suppressed++
		h.mu.Unlock()
		return
	}
	n := h.suppressed
	h.last, h.suppressed = now, 0
	h.mu.Unlock()
	if n > 0 {
		h.logger().Warn("OpenTelemetry error", "error", err, "suppressed", n)
	} else {
		h.logger().Warn("OpenTelemetry error", "error", err)
	}
}

// flush logs how many errors were counted and not logged, if any.
func (h *errorHandler) flush() {
	h.mu.Lock()
	n := h.suppressed
	h.suppressed = 0
	h.mu.Unlock()
	if n > 0 {
		h.logger().Warn("OpenTelemetry errors not logged", "suppressed", n)
	}
}
