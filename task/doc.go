// Package task runs the work of a service: typed loops, each of one or more
// workers, with their own delays and backoff policies, started and stopped
// with the service and observable run by run.
//
// A task is a function and options. It is a core.Option, so it is given to
// core.NewService like any other:
//
//	fetch := task.New("fetch", func(ctx context.Context) (Batch, error) {
//		return queue.Next(ctx)
//	},
//		task.Every(time.Second), task.Workers(4), task.Timeout(10*time.Second),
//		task.Retry(func() backoff.BackOff { return backoff.NewExponentialBackOff() }))
//	fetch.OnResult(func(ctx context.Context, b Batch) error { return index.Add(ctx, b) })
//	svc := core.NewService(core.Name("ingest"), fetch)
//
// Without options a task runs as core-service's @task does: one worker,
// the first run at once, then a run 100 ms after each run ends, forever; the
// first failure fails the service.
//
// # Lifecycle
//
// The service's Start launches the task's workers, after the service's
// OnStart hooks; Start does not wait for any run. Each worker then loops on
// its own: it waits Delay (default 0), runs the function, and after a
// successful run waits the Every delay (fixed, measured from the end of the
// run, so runs of one worker never overlap) or the next delay of its
// Schedule policy, and runs again. Jitter randomizes every wait.
//
// A worker ends, and the service keeps running, when its function returns
// ErrDone, after its first success under Once, and when its Schedule policy
// returns backoff.Stop. Once (whether a worker repeats) is independent of
// Every and Schedule (how long it waits), in whatever order they are given;
// Every and Schedule replace each other. A run that fails (an error, a
// panic, a Timeout) is retried after the Retry policy's next delay; when
// there is no Retry policy, when it returns backoff.Stop (or panics, or
// returns any other negative delay), or when the error is
// backoff.Permanent, the service fails with that run's failure.
//
// Under Leader, the task runs only on the replica of the service that
// leads an election (package leader): the workers run during each term won,
// with the term's fencing token in their runs' context (leader.Token); the
// loss of leadership cancels the runs in progress at once (no failure) and
// no run starts until leadership is won again; the other replicas run
// nothing. The task's role is a status of its service, "leader <task>":
// "leader (token N)" or "standby", ready in both cases.
//
// A task that fails while its service is still starting (its first run
// fails at once, say) makes the service's Start fail with that failure, and
// the start is rolled back. A Task belongs to one service: giving it to a
// second one is an invalid option.
//
// Stop cancels the service's context: a worker waiting between runs returns
// at once; a run in progress sees its context cancelled, and Stop waits for
// it to return, for at most the service's StopTimeout (then it names the
// worker, "task fetch#2", in a *core.StopTimeoutError). A run that returns
// its context's cancellation once Stop cancelled it (an error matching
// context.Canceled, or the context's cause) was interrupted: it is not a
// failure. A run that returns any other error then, or panics, has failed:
// it is counted in Failures and, when the failure is the service's (no
// Retry policy, backoff.Stop, backoff.Permanent), it is the stop's error,
// a *core.TaskError returned by Stop (the service still ends Terminated,
// and Err stays nil, as for a failing OnStop hook). A failure that a Retry
// policy would retry is not retried, since the service stops, and is only
// logged, as it would have been a moment before the stop.
//
// # Concurrency
//
// A task's workers run concurrently with each other, each in its own
// goroutine owned by the service; the runs of one worker are sequential.
// The function must be safe for concurrent use when Workers is more than 1.
// The result consumers (OnResult) run in the worker that produced the
// result, so they too run concurrently across workers. Last, Stats, Runs,
// Failures and OnResult are safe to call from any goroutine at any time;
// Stats reads both counters as one snapshot. Every
// goroutine of a task ends before the service's Stop returns, except a run
// that ignores its context past StopTimeout.
//
// # Errors
//
// Invalid arguments and options (an empty name, a nil function, Workers(0),
// negative durations, a Jitter outside [0, 1], nil policy factories,
// factories that return nil or panic, a nil OnResult consumer) are reported
// by the service's Start before it starts anything (requirements, hooks,
// tasks), as a *core.StartupError matching core.ErrInvalidOption whose
// message names the task. To check the Schedule and Retry factories, Start
// calls each one given once, even one a later option replaced; the first
// worker keeps the policy of that call. A task failure that is not retried makes the service fail with a
// *core.TaskError naming the service, the task and the worker (from 1) and
// wrapping the run's error; a panic is a *core.PanicError, with the stack,
// inside it. A run that timed out wraps context.DeadlineExceeded. Match them
// with errors.Is and errors.As.
//
// # Telemetry
//
// Every run is a span "task <service>/<task>" of kind internal, on the
// service's TracerProvider: the root of its own trace, linked to the
// service's "start <service>" span, with the attributes coreservice.service,
// coreservice.task, coreservice.worker (from 1), coreservice.run (the run's
// number within its worker, from 1) and, when another run follows,
// coreservice.next_delay (the wait before it, in seconds). A failed run has
// status Error, the error.type attribute and an exception event; a panic
// adds exception.stacktrace to that event. Status Ok is never set. The
// function's context carries the run's span, so spans it starts are
// children of the run's, and the task logs with that context, through the
// service's logger, with task=<name> and worker=<n> on every record:
// retries at Warn, failures that fail the service at Error, workers ending
// at Info. Successful runs are not logged. Every failed run is also one
// event of the service (core.TaskRetryScheduled when it is retried, else
// core.TaskRunFailed), raised with Host.Emit: its log record is the event's,
// and OnEvent hooks get it.
//
// While no tracer is installed (the OpenTelemetry global provider without
// an SDK, or a trace/noop provider), no span is started at all: a run then
// costs no allocation beyond the function's own, a few tens of nanoseconds
// over calling the function in a for loop (BenchmarkLoop).
package task
