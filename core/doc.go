// Package core is the service: a lifecycle state machine with ordered,
// rolled-back start, bounded idempotent stop, prompt failure propagation and
// a health monitor, plus Run, which drives services from main.
//
// A service is built from options:
//
//	svc := core.NewService(core.Name("ingest"),
//		core.OnStart(openDB), core.OnStop(closeDB),
//		fetchTask,                     // package task
//		deps.Requires(pg),             // package deps
//		health.Check("queue", check),  // package health
//	)
//	err := core.Run(ctx, svc)
//
// # Lifecycle
//
// A service moves only forward through the states of State: New, Starting,
// Running, Stopping, then Terminated (clean) or Failed. Start runs, in
// order: requirements (dependency order, independent ones concurrently, each
// followed by one health check), OnStart hooks, units (task workers), every
// health check once, the monitor (only when there is something to watch:
// checks, or requirements of a type other than *Base). Stop runs the reverse: it cancels the
// service's context, waits for the units and the monitor (bounded by
// StopTimeout), runs the OnStop hooks in reverse order and releases the
// requirements in reverse dependency order. A start that fails is rolled
// back the same way, the failing part included.
//
// A service fails, and stops itself at once, when a unit returns an error
// or panics, when a check fails Threshold monitor ticks in a row, or when a
// requirement it holds stops. Every service that requires it then fails in
// turn, before the failing service's own stop sequence runs: the failing
// service tells its dependents first and waits for their units and OnStop
// hooks, so that they never use it while it stops (dependents stop before
// what they use, on a failure as on Stop). A failure met while the service
// is already stopping (a requirement failing meanwhile, say) is returned by
// Stop. Done is closed once the stop has finished; Err tells why it failed.
// Changed wakes code that waits for a state.
//
// # Concurrency
//
// Every method of Base is safe for concurrent use. Start is meant to be
// called once; Stop any number of times, from any goroutine: all callers
// wait for the same stop and get the same result. Every goroutine the
// service starts (units, monitor ticks, requirement watchers, the stop
// sequence of a self-stop) ends before Done is closed, except user code that
// ignores its context past the timeout that bounds it. Between its ticks the
// monitor is a timer, not a goroutine.
//
// # Bounds
//
// Every wait is bounded. User code (OnStart and OnStop hooks, units, lazy
// builders, the Start and Stop of a requirement that is not a *Base) is
// called so that the service can stop waiting for it: Start stops at
// StartTimeout, each step of Stop at its own StopTimeout (see StopTimeout:
// the OnStop hooks always get their full time). A goroutine stuck in user
// code cannot be killed, so, as http.Server.Shutdown does with its handlers
// and suture with a service that fails to terminate in a timely manner, the
// service stops waiting, names it in the error (a *StartupError, or a
// *StopTimeoutError with the units still running) and lets it finish in the
// background; its result is logged when it comes. Done and the final state
// always come.
//
// # Errors
//
// Start returns a *StartupError (ErrStartup) naming the failing part;
// Healthcheck an error matching ErrUnhealthy; a second Start
// ErrAlreadyStarted; requirement cycles a *CycleError (ErrCycle); a stop
// that timed out a *StopTimeoutError (ErrStopTimeout). Invalid options
// (ErrInvalidOption) are reported by Start, never by a panic; so is a
// service whose *Base (also embedded) is nil or zero, wherever it is given
// (Start, Run, a requirement, a lazy builder's result): see Validate. Failures
// caused by units are the unit's own error, such as a *TaskError, and
// panics are *PanicError values with the stack. Match them with errors.Is
// and errors.As; messages are for people.
//
// # Extending
//
// Option is a one-method interface over an opaque *Config, so other
// packages add units (Config.AddUnit), requirements (Config.AddRequirement)
// and checks (Config.AddCheck) with public API only. Units run their
// goroutines through a *Host, which owns them for the service.
//
// # Telemetry and logging
//
// Start and Stop are spans "start <name>" and "stop <name>"; each monitor
// run is a new trace "healthcheck <name>" linked to the start span (while no
// tracer is installed, the monitor starts no span). Spans go to the
// service's TracerProvider, by default the OpenTelemetry global one, which
// records nothing until a program installs an SDK (otel.SetTracerProvider,
// or package otelx's Setup). Metrics go to the service's MeterProvider
// likewise: the state of each service, and the duration of every check
// run. Every log record of a
// service carries service=<name>, and the library logs with the context so
// that handlers can add the span.
package core
