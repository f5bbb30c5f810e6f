package task_test

import (
	"context"
	"log/slog"
	"runtime"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/internal/telemetry"
	"github.com/coreservice/coreservice/task"
)

// bareLoop is the baseline of BenchmarkLoop: fn called n times in a plain
// for loop, through a func value, as the worker calls it.
//
//go:noinline
func bareLoop(ctx context.Context, fn func(context.Context) (int, error), n int) error {
	for range n {
		if _, err := fn(ctx); err != nil {
			return err
		}
	}
	return nil
}

// BenchmarkLoop measures what a run of a task costs over calling its
// function in a bare for loop: "bare" is that loop, "task" the worker loop
// of a task with Every(0), started by a real service with telemetry off (the
// OpenTelemetry global provider, with no SDK installed).
//
// Both report ns/run. "task" measures from the first run to the last, so
// that the service's start and stop are left out, and also reports
// allocs/run over the same span, and overhead-ns/run: its ns/run minus that
// of a bare loop of the same length run right after it.
func BenchmarkLoop(b *testing.B) {
	b.Run("bare", func(b *testing.B) {
		var n int
		fn := func(context.Context) (int, error) { n++; return n, nil }
		b.ReportAllocs()
		b.ResetTimer()
		if err := bareLoop(b.Context(), fn, b.N); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/run")
	})
	b.Run("bare-clock", func(b *testing.B) {
		// A bare loop reading the monotonic clock twice per call, as a
		// metered run does: what the clock alone costs on this machine.
		epoch := time.Now()
		var n int
		var d time.Duration
		fn := func(context.Context) (int, error) {
			n++
			start := time.Since(epoch)
			d += time.Since(epoch) - start
			return n, nil
		}
		b.ReportAllocs()
		b.ResetTimer()
		if err := bareLoop(b.Context(), fn, b.N); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/run")
		_ = d
	})
	b.Run("task", func(b *testing.B) { benchTask(b) })
	b.Run("task-noop", func(b *testing.B) {
		// OpenTelemetry's no-op providers, given explicitly.
		benchTask(b, core.TracerProvider(tracenoop.NewTracerProvider()),
			core.MeterProvider(metricnoop.NewMeterProvider()))
	})
	b.Run("task-metered", func(b *testing.B) {
		// An SDK meter provider: every run's duration is recorded.
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
		defer func() { _ = mp.Shutdown(context.Background()) }()
		benchTask(b, core.MeterProvider(mp))
	})
	b.Run("task-unsampled", func(b *testing.B) {
		// An SDK tracer whose sampler drops every span.
		tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()))
		defer func() { _ = tp.Shutdown(context.Background()) }()
		benchTask(b, core.TracerProvider(tp))
	})
	b.Run("bare-traced", func(b *testing.B) {
		// The baseline of task-traced: a bare loop that starts and ends one
		// span per call, with the same tracer, options and attributes.
		tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()))
		defer func() { _ = tp.Shutdown(context.Background()) }()
		tracer := tp.Tracer(telemetry.ScopeName)
		opts := []trace.SpanStartOption{trace.WithNewRoot(), trace.WithSpanKind(trace.SpanKindInternal)}
		attrs := []attribute.KeyValue{telemetry.AttrService.String("bench"), telemetry.AttrTask.String("loop"),
			telemetry.AttrWorker.Int(1)}
		var n int
		fn := func(ctx context.Context) (int, error) {
			n++
			_, span := tracer.Start(ctx, "task bench/loop", opts...)
			span.AddLink(trace.Link{})
			span.SetAttributes(attrs...)
			span.SetAttributes(telemetry.AttrRun.Int64(int64(n)))
			span.SetAttributes(telemetry.AttrNextDelay.Float64(0))
			span.End()
			return n, nil
		}
		b.ReportAllocs()
		b.ResetTimer()
		if err := bareLoop(b.Context(), fn, b.N); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/run")
	})
	b.Run("task-traced", func(b *testing.B) {
		// A recording SDK tracer with no exporter: the cost of the spans alone.
		tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()))
		defer func() { _ = tp.Shutdown(context.Background()) }()
		benchTask(b, core.TracerProvider(tp))
	})
}

// benchTask is BenchmarkLoop's "task" case, with extra service options.
func benchTask(b *testing.B, opts ...core.Option) {
	{
		n, total := 0, b.N+1 // one more run: the first one starts the clock
		var (
			first, last time.Time
			m0, m1      runtime.MemStats
			done        = make(chan struct{})
		)
		loop := task.New("loop", func(context.Context) (int, error) {
			n++
			switch n {
			case 1:
				runtime.ReadMemStats(&m0)
				first = time.Now()
			case total:
				last = time.Now()
				runtime.ReadMemStats(&m1)
				close(done)
				return n, task.ErrDone
			}
			return n, nil
		}, task.Every(0))
		// The monitor's health checks would add their own allocations (a
		// span every 100 ms) to the process-wide count: keep it out of the way.
		svc := core.NewService(append(opts, core.Name("bench"), core.Logger(slog.New(slog.DiscardHandler)),
			core.MonitorInterval(time.Hour), loop)...)
		b.ReportAllocs()
		b.ResetTimer()
		if err := svc.Start(b.Context()); err != nil {
			b.Fatal(err)
		}
		<-done
		if err := svc.Stop(context.Background()); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		perRun := float64(last.Sub(first).Nanoseconds()) / float64(b.N)
		b.ReportMetric(perRun, "ns/run")
		b.ReportMetric(float64(m1.Mallocs-m0.Mallocs)/float64(b.N), "allocs/run")

		var k int
		fn := func(context.Context) (int, error) { k++; return k, nil }
		start := time.Now()
		if err := bareLoop(context.Background(), fn, b.N); err != nil {
			b.Fatal(err)
		}
		bare := float64(time.Since(start).Nanoseconds()) / float64(b.N)
		b.ReportMetric(perRun-bare, "overhead-ns/run")
	}
}
