package bench_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"runtime"
	"syscall"
	"testing"
	"time"

	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/coreservice/coreservice/bench"
	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/task"
)

var (
	quick  = flag.Bool("bench.quick", false, "small N everywhere, to check that the suite runs")
	window = flag.Duration("bench.window", time.Second, "wall time over which BenchmarkMonitorCPU measures CPU time")
)

// readyTimeout bounds every wait for a group's units to begin.
const readyTimeout = 2 * time.Minute

// sizes returns full, or small when -bench.quick is set.
func sizes(full, small []int) []int {
	if *quick {
		return small
	}
	return full
}

var namesCache = map[int][]string{}

// names returns the service names svc-1..svc-n, built once per n so that
// no implementation pays for them.
func names(n int) []string {
	if s, ok := namesCache[n]; ok {
		return s
	}
	s := make([]string, n)
	for i := range s {
		s[i] = fmt.Sprint("svc-", i+1)
	}
	namesCache[n] = s
	return s
}

// lifecycle builds, starts and stops one group, and checks that every unit
// began and every blocking task returned.
func lifecycle(tb testing.TB, impl bench.Impl, shape bench.Shape, n int, spec bench.Spec) {
	p := bench.NewProbe(n, spec)
	g, err := impl.Group(shape, names(n), spec, p)
	if err != nil {
		tb.Fatal(err)
	}
	ctx := context.Background()
	if err := g.Start(ctx); err != nil {
		tb.Fatal(err)
	}
	if err := p.WaitReady(readyTimeout); err != nil {
		tb.Fatal(err)
	}
	if err := g.Stop(ctx); err != nil {
		tb.Fatal(err)
	}
	if spec == (bench.Spec{}) {
		if got := p.Exited(); got != int64(n) {
			tb.Fatalf("%s: tasks returned after Stop: got %d, want %d", impl.Name(), got, n)
		}
	}
}

// perService reports the allocations between m0 and m1 per service.
func perService(b *testing.B, m0, m1 *runtime.MemStats, services int) {
	ops := float64(b.N) * float64(services)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/ops, "ns/service")
	b.ReportMetric(float64(m1.Mallocs-m0.Mallocs)/ops, "allocs/service")
	b.ReportMetric(float64(m1.TotalAlloc-m0.TotalAlloc)/ops, "B/service")
}

// BenchmarkLifecycle is scenario (a): build + start + stop of n trivial
// services under one root, flat and as a tree 10 wide. It reports the cost
// per service.
func BenchmarkLifecycle(b *testing.B) {
	for _, shape := range []bench.Shape{bench.Flat, bench.Tree} {
		for _, impl := range bench.Impls() {
			for _, n := range sizes([]int{1, 10, 100, 1000, 10000}, []int{1, 10, 100}) {
				b.Run(fmt.Sprintf("shape=%s/impl=%s/n=%d", shape, impl.Name(), n), func(b *testing.B) {
					names(n)
					b.ReportAllocs()
					var m0, m1 runtime.MemStats
					runtime.ReadMemStats(&m0)
					for b.Loop() {
						lifecycle(b, impl, shape, n, bench.Spec{})
					}
					runtime.ReadMemStats(&m1)
					perService(b, &m0, &m1, n)
				})
			}
		}
	}
}

// startIdle builds and starts a flat group of n services of spec and waits
// for its units to begin. A group that fails to start (coreservice's checks
// can time out at n=10,000 on a loaded machine) is not an error of the
// suite but a result: it is logged and reported as failed/op = 1, and
// startIdle returns nil.
func startIdle(b *testing.B, impl bench.Impl, n int, spec bench.Spec) bench.Group {
	p := bench.NewProbe(n, spec)
	g, err := impl.Group(bench.Flat, names(n), spec, p)
	if err != nil {
		b.Fatal(err)
	}
	if err := g.Start(context.Background()); err != nil {
		failed(b, "Start", err)
		return nil
	}
	if err := p.WaitReady(readyTimeout); err != nil {
		b.Fatal(err)
	}
	return g
}

// stopIdle stops a group started by startIdle and reports failed/op: 1 if
// it failed while idle (Stop returned its failure), else 0.
func stopIdle(b *testing.B, g bench.Group) {
	if err := g.Stop(context.Background()); err != nil {
		failed(b, "Stop", err)
		return
	}
	b.ReportMetric(0, "failed/op")
}

func failed(b *testing.B, what string, err error) {
	msg := err.Error()
	if len(msg) > 400 {
		msg = msg[:400] + "..."
	}
	b.Logf("%s failed (reported as failed/op): %s", what, msg)
	b.ReportMetric(1, "failed/op")
}

// implsFor returns the implementations to run with services of spec.
func implsFor(spec bench.Spec) []bench.Impl {
	if spec.Check {
		return bench.CheckedImpls()
	}
	return bench.Impls()
}

// settle collects garbage until the live heap stops shrinking, then reads
// the memory statistics.
func settle(m *runtime.MemStats) {
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(m)
}

// BenchmarkResident is scenario (b): the memory that n idle services hold,
// heap and goroutine stacks after garbage collection, and their goroutines,
// per service: a trivial service, and a full one (a periodic task every
// 100 ms and one check run every 100 ms by a monitor). Each iteration
// measures a fresh group once, so run it with -benchtime=1x: its cost does
// not depend on b.N.
func BenchmarkResident(b *testing.B) {
	kinds := []struct {
		name string
		spec bench.Spec
	}{{"trivial", bench.Spec{}}, {"full", bench.Spec{Period: 100 * time.Millisecond, Check: true}}}
	for _, kind := range kinds {
		for _, impl := range implsFor(kind.spec) {
			for _, n := range sizes([]int{1000, 10000}, []int{100}) {
				b.Run(fmt.Sprintf("kind=%s/impl=%s/n=%d", kind.name, impl.Name(), n), func(b *testing.B) {
					names(n)
					for range b.N {
						var m0, m1 runtime.MemStats
						settle(&m0)
						g0 := runtime.NumGoroutine()
						g := startIdle(b, impl, n, kind.spec)
						if g == nil {
							continue
						}
						settle(&m1)
						g1 := runtime.NumGoroutine()
						heap := float64(m1.HeapAlloc) - float64(m0.HeapAlloc)
						stack := float64(m1.StackInuse) - float64(m0.StackInuse)
						b.ReportMetric((heap+stack)/float64(n), "resident-B/service")
						b.ReportMetric(heap/float64(n), "heap-B/service")
						b.ReportMetric(stack/float64(n), "stack-B/service")
						b.ReportMetric(float64(g1-g0)/float64(n), "goroutines/service")
						stopIdle(b, g)
					}
				})
			}
		}
	}
}

// bareLoop is the baseline of BenchmarkLoop: fn called n times in a for
// loop, through a func value, as a task's worker calls it.
//
//go:noinline
func bareLoop(ctx context.Context, fn func(context.Context) error, n int) error {
	for range n {
		if err := fn(ctx); err != nil {
			return err
		}
	}
	return nil
}

// discardExporter is a span exporter that drops every span.
type discardExporter struct{}

func (discardExporter) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discardExporter) Shutdown(context.Context) error                             { return nil }

// taskLoop runs runs+1 empty runs of a task with Every(0) in a started
// service, and returns the time per run from the first run to the last.
func taskLoop(b *testing.B, runs int, opts ...core.Option) time.Duration {
	n := 0
	var first, last time.Time
	done := make(chan struct{})
	loop := task.Func("loop", func(context.Context) error {
		n++ // one worker: runs are sequential
		switch n {
		case 1:
			first = time.Now()
		case runs + 1:
			last = time.Now()
			close(done)
			return task.ErrDone
		}
		return nil
	}, task.Every(0))
	svc := core.NewService(append(opts, core.Name("loop"), core.Logger(quietLogger), loop)...)
	if err := svc.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	<-done
	if err := svc.Stop(context.Background()); err != nil {
		b.Fatal(err)
	}
	return last.Sub(first) / time.Duration(runs)
}

// BenchmarkLoop is scenario (c): the cost of one empty run of a periodic
// loop with no delay between runs: a bare for loop; a coreservice task
// (Every(0)) with telemetry off (the OpenTelemetry globals, no SDK), with
// the no-op providers given explicitly, and with the SDK sampling every
// span (AlwaysSample, a batch span processor, an exporter that drops
// them); and suture's restart loop, the peer, which restarts a service
// whose Serve returns at once. Each reports ns/run from the first run to
// the last (a service's start and stop are left out).
func BenchmarkLoop(b *testing.B) {
	b.Run("impl=bare", func(b *testing.B) {
		n := 0
		fn := func(context.Context) error { n++; return nil }
		b.ReportAllocs()
		if err := bareLoop(context.Background(), fn, b.N); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/run")
	})
	b.Run("impl=coreservice", func(b *testing.B) {
		b.ReportMetric(float64(taskLoop(b, b.N).Nanoseconds()), "ns/run")
	})
	b.Run("impl=coreservice-noop", func(b *testing.B) {
		b.ReportMetric(float64(taskLoop(b, b.N, core.TracerProvider(tracenoop.NewTracerProvider()),
			core.MeterProvider(metricnoop.NewMeterProvider())).Nanoseconds()), "ns/run")
	})
	b.Run("impl=coreservice-sdk", func(b *testing.B) {
		tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()),
			sdktrace.WithBatcher(discardExporter{}))
		defer func() {
			if err := tp.Shutdown(context.Background()); err != nil {
				b.Error(err)
			}
		}()
		b.ReportMetric(float64(taskLoop(b, b.N, core.TracerProvider(tp)).Nanoseconds()), "ns/run")
	})
	b.Run("impl=suture", func(b *testing.B) {
		d, err := bench.SutureLoop(context.Background(), b.N)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(d.Nanoseconds()), "ns/run")
	})
}

// stopLatency times Stop alone of a started group whose units have begun;
// building and starting are left out (the timer is stopped).
func stopLatency(b *testing.B, impl bench.Impl, n int, spec bench.Spec) {
	ctx := context.Background()
	for range b.N {
		b.StopTimer()
		p := bench.NewProbe(n, spec)
		g, err := impl.Group(bench.Flat, names(n), spec, p)
		if err != nil {
			b.Fatal(err)
		}
		if err := g.Start(ctx); err != nil {
			b.Fatal(err)
		}
		if err := p.WaitReady(readyTimeout); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := g.Stop(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStopSleeper is scenario (d), first part: the latency of Stop of
// one service whose task sleeps an hour between runs (it has made its
// first run). Only Stop is timed, so run it with a fixed -benchtime (Nx).
func BenchmarkStopSleeper(b *testing.B) {
	for _, impl := range bench.Impls() {
		b.Run("impl="+impl.Name(), func(b *testing.B) {
			stopLatency(b, impl, 1, bench.Spec{Period: time.Hour})
		})
	}
}

// BenchmarkStopMany is scenario (d), second part: the latency of Stop of
// n trivial services under one root. Only Stop is timed, so run it with a
// fixed -benchtime (Nx).
func BenchmarkStopMany(b *testing.B) {
	for _, impl := range bench.Impls() {
		for _, n := range sizes([]int{10000}, []int{100}) {
			b.Run(fmt.Sprintf("impl=%s/n=%d", impl.Name(), n), func(b *testing.B) {
				names(n)
				stopLatency(b, impl, n, bench.Spec{})
			})
		}
	}
}

// BenchmarkPropagation is scenario (e): the time from a failure of the
// bottom service of a chain to the top's Done, through depth dependents.
// Building and starting are left out (the timer is stopped), so run it with
// a fixed -benchtime (Nx).
func BenchmarkPropagation(b *testing.B) {
	for _, impl := range bench.Impls() {
		for _, depth := range sizes([]int{10, 100}, []int{10}) {
			b.Run(fmt.Sprintf("impl=%s/depth=%d", impl.Name(), depth), func(b *testing.B) {
				for range b.N {
					b.StopTimer()
					p := bench.NewProbe(depth+1, bench.Spec{})
					c, err := impl.Chain(depth, p)
					if err != nil {
						b.Fatal(err)
					}
					if err := c.Start(context.Background()); err != nil {
						b.Fatal(err)
					}
					if err := p.WaitReady(readyTimeout); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
					c.Fail()
					<-c.Done()
					b.StopTimer()
					if err := c.Err(); !errors.Is(err, bench.ErrInjected) {
						b.Fatalf("top's error: got %v, want one matching %v", err, bench.ErrInjected)
					}
					if err := c.Stop(context.Background()); err != nil && !errors.Is(err, bench.ErrInjected) {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// cpuTime returns the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err) // cannot fail with RUSAGE_SELF and a valid pointer
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkMonitorCPU is scenario (f): the CPU time (getrusage, user +
// system, the whole process) per second of wall time that n idle services
// cost, measured over -bench.window once they have all begun: trivial
// services (whatever each library runs on its own: coreservice's monitor
// ticks every 100 ms), and services with one check run every 100 ms. Each
// iteration measures a fresh group once, so run it with -benchtime=1x.
func BenchmarkMonitorCPU(b *testing.B) {
	kinds := []struct {
		name string
		spec bench.Spec
	}{{"idle", bench.Spec{}}, {"check", bench.Spec{Check: true}}}
	for _, kind := range kinds {
		for _, impl := range implsFor(kind.spec) {
			for _, n := range sizes([]int{1000, 10000}, []int{100}) {
				b.Run(fmt.Sprintf("kind=%s/impl=%s/n=%d", kind.name, impl.Name(), n), func(b *testing.B) {
					names(n)
					for range b.N {
						g := startIdle(b, impl, n, kind.spec)
						if g == nil {
							continue
						}
						runtime.GC() // start the window without the start's garbage
						c0, t0 := cpuTime(), time.Now()
						<-time.After(*window) // a sampling window, not a wait for a condition
						c1, t1 := cpuTime(), time.Now()
						cpuPerWall := (c1 - c0).Seconds() / t1.Sub(t0).Seconds()
						b.ReportMetric(cpuPerWall, "cpu-s/s")
						b.ReportMetric(cpuPerWall*1e6/float64(n), "cpu-us/service/s")
						stopIdle(b, g)
					}
				})
			}
		}
	}
}

// BenchmarkShared is scenario (g): build + start + stop of n parents under
// one root, each requiring one shared service, which starts before them
// and stops after them.
func BenchmarkShared(b *testing.B) {
	for _, impl := range bench.Impls() {
		for _, n := range sizes([]int{1000}, []int{100}) {
			b.Run(fmt.Sprintf("impl=%s/parents=%d", impl.Name(), n), func(b *testing.B) {
				names(n)
				ctx := context.Background()
				b.ReportAllocs()
				var m0, m1 runtime.MemStats
				runtime.ReadMemStats(&m0)
				for b.Loop() {
					p := bench.NewProbe(n+1, bench.Spec{})
					g, err := impl.Shared(names(n), p)
					if err != nil {
						b.Fatal(err)
					}
					if err := g.Start(ctx); err != nil {
						b.Fatal(err)
					}
					if err := p.WaitReady(readyTimeout); err != nil {
						b.Fatal(err)
					}
					if err := g.Stop(ctx); err != nil {
						b.Fatal(err)
					}
					if got := p.Exited(); got != int64(n+1) {
						b.Fatalf("tasks returned after Stop: got %d, want %d", got, n+1)
					}
				}
				runtime.ReadMemStats(&m1)
				perService(b, &m0, &m1, n+1)
			})
		}
	}
}
