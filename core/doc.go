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
// health check once (a failure fails the start, except for a
// StartupGraceCheck in its grace, which leaves the service Running but not
// ready), the monitor (only when there is something to watch:
// checks, or requirements of a type other than *Base). Stop runs the reverse: it cancels the
// service's context, waits for the units and the monitor (bounded by
// StopTimeout), runs the OnStop hooks in reverse order and releases the
// requirements in reverse dependency order. A start that fails is rolled
// back the same way, the failing part included.
//
// A service fails, and stops itself at once, when a unit returns an error
// or panics, when a check fails Threshold monitor ticks in a row (ticks
// in a startup grace do not count), or when a
// requirement it holds stops. Every service that requires it then fails in
// turn, before the failing service's own stop sequence runs: the failing
// service tells its dependents first and waits for their units and OnStop
// hooks, so that they never use it while it stops (dependents stop before
// what they use, on a failure as on Stop). A failure met while the service
// is already stopping (a requirement failing meanwhile, say) is returned by
// Stop. Done is closed once the stop has finished; Err tells why it failed.
// Changed wakes code that waits for a state. A unit whose work is done ends
// its service with Host.Stop, which does not wait.
//
// Every state change goes through one transition that checks the edge
// against the State doc, records the cause of a failure and raises the
// change as an event. An illegal edge is a bug of this package: it is
// logged as an error with the stack and changes nothing (built with
// -tags coreassert, it panics).
//
// # Events
//
// OnEvent hooks receive the service's lifecycle events as typed values
// (Event): StateChanged at every state change, TaskRunFailed and
// TaskRetryScheduled from its tasks (package task raises them with
// Host.Emit), CheckFailed from its monitor, RequirementFailed when a
// requirement fails under it, StopTimedOut when a stop step leaves user code
// running, EventsDropped, and the events of units that supervise
// (RestartScheduled, Restarted, RestartGaveUp: deps.Supervise) or
// campaign (LeadershipWon, LeadershipLost: package leader), raised with
// Host.Emit. Each is a slog.LogValuer. The service's own
// log is written from the same events by one function, so the log and the
// hooks never disagree.
//
// Per service, the hooks get the events in the order they happened, one at
// a time. A slow hook never holds the service up: the events wait in a
// queue of at most EventQueueSize per service, drained by one goroutine that
// exists only while the queue is not empty (an idle service has none); an
// event raised while the queue is full is dropped, and counted in an
// EventsDropped delivered in its place once there is room (the log, written
// as the service goes, has every event). The move to the final state is the
// last event delivered; Done is closed, and Stop returns, once the hooks
// have had it, or after StopTimeout, when the events still queued are
// dropped and their number logged. A hook that panics or calls
// runtime.Goexit is recovered and logged. With no hook and a logger that records nothing, raising an event
// costs no allocation and builds no record.
//
// # Concurrency
//
// Every method of Base is safe for concurrent use. Start is meant to be
// called once; Stop any number of times, from any goroutine: all callers
// wait for the same stop and get the same result. Every goroutine the
// service starts (units, monitor ticks, requirement watchers, the stop
// sequence of a self-stop, the delivery of events to the OnEvent hooks) ends
// before Done is closed, except user code that ignores its context past the
// timeout that bounds it (and an OnEvent hook still running at StopTimeout).
// Between its ticks the monitor is a timer, not a goroutine.
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
// (Start, Run, a requirement, a lazy builder's result): see Validate. A
// type embedding *Base with a Healthcheck method of its own is an
// ErrInvalidOption where Run, a parent (package deps) or the probes
// (package health) are given it (ValidateHealthcheck): the monitor and the
// probes, which have only the *Base, would never run that method. Its
// health goes into checks (health.Check on its methods), the one truth
// Healthcheck, the monitor and the probes share. Failures
// caused by units are the unit's own error, such as a *TaskError, and
// panics are *PanicError values with the stack. Match them with errors.Is
// and errors.As; messages are for people.
//
// # Extending
//
// Option is a one-method interface over an opaque *Config, so other
// packages add units (Config.AddUnit), requirements (Config.AddRequirement)
// and checks (Config.AddCheck) with public API only. Units run their
// goroutines through a *Host, which owns them for the service; they can
// hold services chosen while the service runs (Host.Acquire and
// Host.Release: a supervisor's instance, a leader's service), which the
// stop releases, and report what they are doing in the probes
// (Host.SetStatus).
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
// run. A service without a Logger, TracerProvider or MeterProvider option
// inherits each from the parent that starts it as a requirement (the first
// to acquire it, at that moment), so that options given to the root of a
// tree reach the whole tree; one started directly (Start, Run) takes
// slog.Default() and the global providers at Start. Every log record of a
// service carries service=<name>, and the library logs with the context so
// that handlers can add the span. Its records of state changes and of the
// failures of tasks, checks and requirements are its events (see Events):
// the message, level and attributes of each come from the event.
//
// Code the service runs (hooks, the goroutines of its units, so tasks, and
// its checks) reaches the service's logger and name from its context with
// Log(ctx) and ServiceName(ctx), so that it needs no variable holding the
// service:
//
//	core.OnStop(func(ctx context.Context) error {
//		core.Log(ctx).InfoContext(ctx, "flushing")
//		return flush(ctx)
//	})
package core
