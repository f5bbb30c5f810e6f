package otelx_test

import (
	"context"
	"log"
	"log/slog"
	"os"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/otelx"
	"github.com/coreservice/coreservice/task"
)

// Setup in main: spans and metrics of every service go where the OTEL_*
// environment says (by default OTLP/gRPC to localhost:4317, a Jaeger).
func ExampleSetup() {
	ctx := context.Background()
	shutdown, err := otelx.Setup(ctx)
	if err != nil {
		log.Fatal(err) // a malformed OTEL_* variable, named
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := shutdown(ctx); err != nil {
			log.Print(err)
		}
	}()
	slog.SetDefault(slog.New(otelx.NewLogHandler(slog.NewTextHandler(os.Stderr, nil))))

	svc := core.NewService(core.Name("api"),
		task.Func("sync", func(ctx context.Context) error { return nil }, task.Every(time.Second)))
	if err := core.Run(ctx, svc); err != nil {
		log.Print(err)
	}
}

// A service that uses providers of its own, with nothing installed
// globally.
func ExampleNew() {
	tel, err := otelx.New(context.Background(), otelx.ServiceName("billing"))
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = tel.Shutdown(context.Background()) }()
	_ = core.NewService(core.Name("billing"), tel.Option())
}

// Records logged with a context that carries a span get its ids.
func ExampleNewLogHandler() {
	plain := slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{} // for a stable example output
			}
			return a
		},
	})
	logger := slog.New(otelx.NewLogHandler(plain))
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
		SpanID:  trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
	})
	ctx := trace.ContextWithSpanContext(context.Background(), sc)
	logger.InfoContext(ctx, "fetched", "rows", 3)
	logger.InfoContext(context.Background(), "no span")
	// Output:
	// level=INFO msg=fetched rows=3 trace_id=4bf92f3577b34da6a3ce929d0e0e4736 span_id=00f067aa0ba902b7
	// level=INFO msg="no span"
}
