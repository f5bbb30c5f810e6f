// Package bench compares coreservice with its peers: thejerf/suture/v4,
// go.uber.org/fx, oklog/run, golang.org/x/sync/errgroup, and a bare
// goroutine + context + WaitGroup baseline. It is a module of its own, so
// that users of the library never download the peers or the plotting code.
//
// Each implementation (Impl) builds the same services in the same shapes,
// and the benchmarks in bench_test.go drive them all through the same code.
// The command ./run (from this directory) runs the benchmarks and
// regenerates RESULTS.md and the charts; ./run -quick checks that they
// compile and run.
//
// # Services
//
// A trivial service is one named unit of work with one task that, once
// launched, signals the Probe that it is running and then blocks until its
// service stops (its context is cancelled), then returns nil. The group's
// start counts as finished only once every task has signalled, and its stop
// only once every task has returned, for every implementation: for the
// libraries whose Start returns before their goroutines run (suture,
// oklog/run, errgroup, the bare baseline) the benchmark waits for the
// signals, so no implementation is credited for work it has not done yet.
//
// A Spec varies the service: Period > 0 makes the task periodic (an empty
// run at once, then one Period after each run ends, as a coreservice task
// with task.Every does), and Check adds a passing health check run at start
// and then every CheckInterval by a monitor. The peers have no monitor, so
// their check is what a user would write: a goroutine (or a unit of the
// library: a suture service, an errgroup goroutine, an oklog/run actor)
// with a time.Ticker that runs the check at once and then on every tick.
//
// Every implementation runs with its logging off: coreservice with
// core.Logger(slog.New(slog.DiscardHandler)), fx with fx.NopLogger, suture
// with an EventHook that drops every event. coreservice runs with its
// default options otherwise (StartTimeout, StopTimeout, MonitorInterval of
// 100 ms, the OpenTelemetry global providers, which record nothing).
package bench
