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
//
// # Restarts
//
// The restart scenarios (restart.go) supervise one child with each
// library. In BenchmarkRestart the child (a Crasher) signals each start and
// fails with ErrInjected when told to; one op is one restart: the crash,
// the library's restart, and the wait until the new child runs (its body
// has begun, and for coreservice the requirement's Current returns the new
// instance), the same for every Restarter, so none is credited for a
// restart it has not finished. Every restarter restarts at once: the bare
// baseline is a goroutine calling the body in a for loop; suture is a
// supervisor whose Spec has FailureThreshold +Inf, so that its failure
// count never passes it and it never pauses (FailureDecay and
// FailureBackoff then never apply); coreservice is a parent service
// requiring deps.Supervise(factory, ZeroBackOff), factory building a
// service whose one task (task.Once) runs the body.
//
// TestRestartLoopUnderDefaultPolicies counts, on the fake clock of a
// testing/synctest bubble, the restarts over 20 minutes of a child that
// fails at once each time it is started, under each library's default
// policy: suture's default Spec (FailureDecay 30 s, FailureThreshold 5,
// FailureBackoff 15 s, DefaultJitter adding 0-50 %; deterministic in a
// bubble, where it is seeded from the fake clock), and coreservice with
// backoff.NewExponentialBackOff() (500 ms, ×1.5, ±50 % jitter, 60 s
// max interval, MaxElapsedTime 15 min, after which coreservice gives up):
// as given (its jitter comes from math/rand's global source, so its
// counts vary between runs), with the jitter drawn from a fixed seed
// (SeededExponential), and with no jitter. Each coreservice instance runs
// the body once it and the parent are Running: a first instance failing
// during the parent's start fails that start instead. The test checks
// each count against its policy's arithmetic; with -bench.restartloop it
// prints them as benchmark results, which ./run adds to the results. The
// bare baseline has no policy and no place there: a loop restarting at
// once on a fake clock never lets it advance.
package bench
