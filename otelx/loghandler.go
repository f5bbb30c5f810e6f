package otelx

import (
	"context"
	"log/slog"

	"go.opentelemetry.io/otel/trace"
)

// Log attribute keys that NewLogHandler adds.
const (
	// LogTraceID is the key of the trace id, 32 hex digits.
	LogTraceID = "trace_id"
	// LogSpanID is the key of the span id, 16 hex digits.
	LogSpanID = "span_id"
)

// NewLogHandler returns a handler that adds trace_id and span_id, in hex as
// OpenTelemetry writes them, to every record whose context carries a valid
// span context, and passes every record on to h. The library logs with the
// context (InfoContext and the like), so a line logged inside a task run
// carries that run's ids, and so do lines a task's code logs with its ctx:
//
//	slog.SetDefault(slog.New(otelx.NewLogHandler(slog.NewJSONHandler(os.Stderr, nil))))
//
// Records without a span pass through unchanged. The ids are attributes of
// the record: under a group opened with WithGroup they are in that group.
func NewLogHandler(h slog.Handler) slog.Handler { return &logHandler{h} }

type logHandler struct{ next slog.Handler }

func (h *logHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *logHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r = r.Clone()
		r.AddAttrs(slog.String(LogTraceID, sc.TraceID().String()), slog.String(LogSpanID, sc.SpanID().String()))
	}
	return h.next.Handle(ctx, r)
}

func (h *logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &logHandler{h.next.WithAttrs(attrs)}
}

func (h *logHandler) WithGroup(name string) slog.Handler { return &logHandler{h.next.WithGroup(name)} }
