package task

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/internal/telemetry"
	"github.com/coreservice/coreservice/internal/values"
	"github.com/coreservice/coreservice/leader"
)

// worker is one loop of a task, run in a goroutine owned by the service.
// Its fields are set by newWorker and then used by that goroutine only.
type worker[T any] struct {
	t      *Task[T]
	cfg    *config
	id     int    // from 1
	goName string // "task <name>#<id>", for Host.Go and StopTimeoutError
	svc    string
	// log is the service's logger (Host.Log) with the task and the worker,
	// made on the first record the logger takes (logger).
	log   *slog.Logger
	sched backoff.BackOff // cadenceSchedule without Once only
	retry backoff.BackOff // nil: no retries
	timer *time.Timer     // made on the first wait longer than zero
	run   int64           // number of the current run, from 1
	// failing is set by a failed run and cleared by a successful one: the
	// retry policy is Reset at the start of each streak of failures.
	failing bool
	// cut is set by a run that ended the loop because its context ended
	// (a stop, or under Leader the loss of leadership); ended once the
	// loop ended for good otherwise (ErrDone, Once, the Schedule, a
	// failure): under Leader, the next term does not run it again. (Next
	// to failing: the three take one word.)
	cut, ended bool
	retries    int // failed runs of the current streak that were retried
	// delivering is when the current delivery to consumers began (Unix
	// nanoseconds), 0 outside one; read by watchdog's function.
	delivering atomic.Int64
	watchdog   atomic.Pointer[time.Timer] // warns about slow consumers; made on the first delivery

	host  *core.Host // its tracer, meter and start span, read when a run is traced or metered
	gate  telemetry.SpanGate
	spans *workerSpans // made on the first run the tracer may record
	epoch time.Time    // run durations are measured from it: one monotonic read each end

	mgate   telemetry.MeterGate
	metrics *workerMetrics // made on the first run the meter records
}

// workerSpans is what a worker's spans are started with, made on the first
// run while the tracer may record, so that a worker whose runs are never
// traced builds no span name or attribute.
type workerSpans struct {
	name      string
	tracer    trace.Tracer
	link      trace.Link // to the service's start span
	startOpts []trace.SpanStartOption
	attrs     []attribute.KeyValue  // service, task and worker
	kv        [1]attribute.KeyValue // scratch for one attribute: a variadic call then allocates nothing
}

// workerMetrics are a worker's instruments and its precomputed attribute
// sets, so that recording a successful run allocates nothing.
type workerMetrics struct {
	runs      metric.Float64Histogram
	retries   metric.Int64Counter
	okOpts    []metric.RecordOption // service and task
	retryOpts []metric.AddOption    // service and task
}

// newWorker makes worker id of t. sched and retry are its policies if
// already made (by Validate), or nil for newWorker to call the factories.
func newWorker[T any](t *Task[T], h *core.Host, id int, sched, retry backoff.BackOff) (*worker[T], error) {
	w := &worker[T]{
		t:      t,
		cfg:    &t.cfg,
		id:     id,
		goName: "task " + t.name + "#" + strconv.Itoa(id),
		svc:    h.Name(),
		host:   h,
		gate:   telemetry.NewSpanGate(h.Tracer(), telemetry.ScopeName),
		epoch:  time.Now(),
		mgate:  telemetry.NewMeterGate(h.Meter(), telemetry.ScopeName),
	}
	w.sched, w.retry = sched, retry
	var err error
	if c := w.cfg; c.cadence == cadenceSchedule && !c.once && w.sched == nil {
		pf := c.policies[c.schedule]
		if w.sched, err = policy(pf.option, pf.factory); err != nil {
			return nil, err
		}
	}
	if c := w.cfg; c.retry >= 0 && w.retry == nil {
		pf := c.policies[c.retry]
		if w.retry, err = policy(pf.option, pf.factory); err != nil {
			return nil, err
		}
	}
	return w, nil
}

// nextBackOff asks p for its next delay, first resetting it if reset is
// set, turning a panic in the policy into a *core.PanicError. A negative
// delay other than backoff.Stop is an error: there is no floor.
func nextBackOff(p backoff.BackOff, reset bool) (d time.Duration, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &core.PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	if reset {
		p.Reset()
	}
	if d = p.NextBackOff(); d < 0 && d != backoff.Stop {
		return 0, fmt.Errorf("NextBackOff returned %v, want >= 0 or backoff.Stop", d)
	}
	return d, nil
}

// interrupted reports whether err, returned by a run once the service's
// context ctx was cancelled, is that cancellation: it matches
// context.Canceled or ctx's cause. Any other error is the run's own.
func interrupted(ctx context.Context, err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.Cause(ctx))
}

// policy calls a policy factory, turning a nil policy or a panic into an
// error.
func policy(option string, factory func() backoff.BackOff) (p backoff.BackOff, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("%s: policy factory: %w", option, &core.PanicError{Value: v, Stack: debug.Stack()})
		}
	}()
	if p = factory(); values.IsNil(p) {
		return nil, fmt.Errorf("%s: the policy factory returned nil", option)
	}
	return p, nil
}

// loop is the worker's goroutine: wait Delay, then run and wait until the
// service stops, the worker ends, or a failure is not retried. It returns
// nil, or the *core.TaskError the service fails with.
func (w *worker[T]) loop(ctx context.Context) error {
	defer func() {
		if w.timer != nil {
			w.timer.Stop()
		}
		if t := w.watchdog.Load(); t != nil {
			t.Stop()
		}
	}()
	if !w.sleep(ctx, w.jitter(w.cfg.delay)) {
		return nil
	}
	for {
		next, end, err := w.runOnce(ctx)
		if end {
			w.ended = !w.cut
			w.cut = false
			return err
		}
		if !w.sleep(ctx, next) {
			return nil
		}
	}
}

// sleep waits d, or until ctx is done; it reports whether the worker should
// go on. It allocates nothing for d <= 0 and reuses the worker's timer.
func (w *worker[T]) sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	if w.timer == nil {
		w.timer = time.NewTimer(d)
	} else {
		w.timer.Reset(d)
	}
	select {
	case <-ctx.Done():
		w.timer.Stop()
		return false
	case <-w.timer.C:
		return true
	}
}

func (w *worker[T]) jitter(d time.Duration) time.Duration {
	if w.cfg.jitter == 0 {
		return d
	}
	return jittered(d, w.cfg.jitter, rand.Float64())
}

// stage is where a run was when it returned.
type stage uint8

const (
	stageFn       stage = iota // in the task's function
	stageConsumer              // in a result consumer
)

// runOnce performs one run: span, timeout, fn, consumers, and the decision
// of what comes next. It returns the wait before the next run, or end=true
// with the worker's result (nil, or the *core.TaskError the service fails
// with).
func (w *worker[T]) runOnce(ctx context.Context) (next time.Duration, end bool, result error) {
	w.run++
	rctx := ctx // the run's context
	var span trace.Span
	if w.gate.On() {
		rctx, span = w.startSpan(ctx)
	}
	lctx := rctx // for logs: the run's span, without the timeout
	var began time.Duration
	metered := w.mgate.On()
	if metered {
		began = time.Since(w.epoch)
	}
	timedOut := false
	var (
		st       stage
		err      error
		panicked *core.PanicError
	)
	if w.cfg.timeout > 0 {
		tctx, cancel := context.WithTimeout(rctx, w.cfg.timeout)
		st, panicked, err = w.call(tctx)
		timedOut = errors.Is(tctx.Err(), context.DeadlineExceeded)
		cancel()
	} else {
		st, panicked, err = w.call(rctx)
	}

	var runErr error // the run's failure, for the span
	switch {
	case err == nil:
		w.failing, w.retries = false, 0
		switch {
		case w.cfg.once:
			end = true
			w.logRun(lctx, slog.LevelInfo, "task worker done: Once", nil)
		case w.cfg.cadence == cadenceEvery:
			next = w.cfg.every
		default: // cadenceSchedule
			var perr error
			if next, perr = nextBackOff(w.sched, false); perr != nil {
				runErr = fmt.Errorf("task.Schedule policy: %w", perr)
				end, result = true, &core.TaskError{Service: w.svc, Task: w.t.name, Worker: w.id, Err: runErr, Run: w.run}
				w.emitFailed(lctx, runErr, true, ctx.Err() != nil)
			} else if next == backoff.Stop {
				end = true
				w.logRun(lctx, slog.LevelInfo, "task worker done: the Schedule policy stopped", nil)
			}
		}
	case panicked == nil && errors.Is(err, ErrDone):
		end = true
		w.logRun(lctx, slog.LevelInfo, "task worker done: ErrDone", nil)
	case panicked == nil && ctx.Err() != nil && interrupted(ctx, err):
		// The service is stopping and the run returned its cancellation:
		// not a failure.
		end, w.cut = true, true
		if st == stageConsumer {
			msg := "task result not delivered to every consumer: the service is stopping"
			if errors.Is(context.Cause(ctx), leader.ErrLost) {
				msg = "task result not delivered to every consumer: leadership was lost"
			}
			w.logRun(lctx, slog.LevelWarn, msg, err)
		}
	default:
		next, end, result, runErr = w.failed(ctx, lctx, err, timedOut)
	}
	if !end {
		next = w.jitter(next)
		if runErr != nil {
			w.emitRetry(lctx, runErr, next)
		}
	}
	if runErr != nil {
		w.t.failures.Add(1)
	} else {
		w.t.passed.Add(1)
	}
	if metered {
		w.record(lctx, began, runErr, !end && runErr != nil)
	}

	if span != nil {
		w.endSpan(span, end, next, runErr, panicked)
	}
	return next, end, result
}

// failed decides what follows a failed run (err, from fn or a consumer;
// timedOut: its Timeout ended it): a retry after next, or the end of the
// worker with result, the *core.TaskError the service fails with (nil once
// the service stops and the failure would have been retried). runErr is
// the run's failure as the span and the logs report it. ctx is the
// service's, lctx the run's for logs. It is kept out of runOnce, which the
// runs that do not fail go through.
//
//go:noinline
func (w *worker[T]) failed(ctx, lctx context.Context, err error, timedOut bool) (next time.Duration, end bool, result, runErr error) {
	switch {
	case timedOut && errors.Is(err, context.DeadlineExceeded):
		err = fmt.Errorf("run timed out after %v: %w", w.cfg.timeout, err)
	case timedOut:
		err = fmt.Errorf("run timed out after %v: %w: %w", w.cfg.timeout, context.DeadlineExceeded, err)
	}
	end = w.retry == nil || errors.As(err, new(*backoff.PermanentError))
	exhausted := false
	if !end {
		var perr error
		next, perr = nextBackOff(w.retry, !w.failing)
		if perr != nil {
			err = errors.Join(err, fmt.Errorf("task.Retry policy: %w", perr))
		}
		end = perr != nil || next == backoff.Stop
		exhausted = end
	}
	if !w.failing {
		w.retries = 0
	}
	w.failing = true
	switch {
	case end:
		// Also while the service stops: the failure is then the
		// stop's error, returned by Stop.
		result = &core.TaskError{Service: w.svc, Task: w.t.name, Worker: w.id, Err: err,
			Run: w.run, Retries: w.retries, Exhausted: exhausted}
		w.emitFailed(lctx, err, true, ctx.Err() != nil)
	case ctx.Err() != nil:
		// A failure the policy would retry, but the service stops:
		// it is no more the service's than it was a moment earlier.
		// Under Leader, the same holds for the loss of leadership.
		end, w.cut = true, true
		w.emitFailed(lctx, err, false, true)
	default:
		w.retries++
	}
	return next, end, result, err
}

// startSpan starts the run's span, with its attributes and the link to the
// start span once it is known to record.
//
//go:noinline
func (w *worker[T]) startSpan(ctx context.Context) (context.Context, trace.Span) {
	sp := w.spanSettings()
	ctx, span := sp.tracer.Start(ctx, sp.name, sp.startOpts...)
	if span.IsRecording() {
		span.AddLink(sp.link)
		span.SetAttributes(sp.attrs...)
		sp.kv[0] = telemetry.AttrRun.Int64(w.run)
		span.SetAttributes(sp.kv[:1]...)
	}
	return ctx, span
}

// endSpan ends the run's span: with the delay to the next run unless the
// worker ends, and the run's failure or panic.
//
//go:noinline
func (w *worker[T]) endSpan(span trace.Span, end bool, next time.Duration, runErr error, panicked *core.PanicError) {
	if !end && span.IsRecording() {
		w.spans.kv[0] = telemetry.AttrNextDelay.Float64(next.Seconds())
		span.SetAttributes(w.spans.kv[:1]...)
	}
	if panicked != nil {
		telemetry.RecordPanic(span, runErr, panicked.Stack)
		span.End()
	} else {
		telemetry.End(span, runErr)
	}
}

// record records a run that began at start (since the worker's epoch) in
// MetricTaskRunDuration, with error.type if it failed, and counts a retry in
// MetricTaskRetries.
func (w *worker[T]) record(ctx context.Context, start time.Duration, runErr error, retry bool) {
	d := (time.Since(w.epoch) - start).Seconds()
	m := w.metrics
	if m == nil {
		m = w.instruments()
	}
	if runErr == nil {
		m.runs.Record(ctx, d, m.okOpts...)
	} else {
		m.runs.Record(ctx, d, metric.WithAttributeSet(attribute.NewSet(
			telemetry.AttrService.String(w.svc), telemetry.AttrTask.String(w.t.name),
			semconv.ErrorTypeKey.String(telemetry.ErrorType(runErr)))))
	}
	if retry {
		m.retries.Add(ctx, 1, m.retryOpts...)
	}
}

// instruments makes the worker's instruments. The SDK returns the same
// instrument for the same name, so every worker of every task shares them.
// Errors come only from invalid names or units, constants here: they are
// logged, and the no-op instruments returned anyway are used.
func (w *worker[T]) instruments() *workerMetrics {
	m := &workerMetrics{}
	var err1, err2 error
	meter := w.host.Meter()
	m.runs, err1 = meter.Float64Histogram(telemetry.MetricTaskRunDuration,
		metric.WithUnit("s"), metric.WithDescription("Duration of task runs"),
		metric.WithExplicitBucketBoundaries(telemetry.DurationBuckets...))
	m.retries, err2 = meter.Int64Counter(telemetry.MetricTaskRetries,
		metric.WithUnit("{retry}"), metric.WithDescription("Retries scheduled after failed task runs"))
	for _, err := range []error{err1, err2} {
		if err != nil {
			if l := w.logger(context.Background(), slog.LevelWarn); l != nil {
				l.Warn("cannot make a metric instrument", "error", err)
			}
		}
	}
	set := attribute.NewSet(telemetry.AttrService.String(w.svc), telemetry.AttrTask.String(w.t.name))
	m.okOpts = []metric.RecordOption{metric.WithAttributeSet(set)}
	m.retryOpts = []metric.AddOption{metric.WithAttributeSet(set)}
	w.metrics = m
	return m
}

// call runs the task's function and then, if it succeeded, the result
// consumers, recovering a panic in either. It reports where the run
// stopped, its error, and the panic if there was one (then err is that
// *core.PanicError).
func (w *worker[T]) call(ctx context.Context) (st stage, panicked *core.PanicError, err error) {
	defer func() {
		if v := recover(); v != nil {
			panicked = &core.PanicError{Value: v, Stack: debug.Stack()}
			err = panicked
		}
	}()
	v, err := w.t.fn(ctx)
	if err != nil {
		return stageFn, nil, err
	}
	w.t.set(v)
	if cs := w.t.consumers.Load(); cs != nil {
		return stageConsumer, nil, w.deliver(ctx, *cs, v)
	}
	return stageConsumer, nil, nil
}

// deliver hands v to the result consumers cs, in order, under the watchdog
// that warns about a slow delivery, and returns the first one's error. A
// panic in a consumer goes up to call. It is kept out of call, whose frame
// is on the stack of every run.
//
//go:noinline
func (w *worker[T]) deliver(ctx context.Context, cs []func(context.Context, T) error, v T) error {
	w.watchDelivery()
	defer w.delivering.Store(0)
	for i, c := range cs {
		if err := c(ctx, v); err != nil {
			return fmt.Errorf("result consumer %d: %w", i+1, err)
		}
	}
	return nil
}

// SlowConsumerWarning is how long the result consumers of one run may take
// before the worker logs a warning; it logs again each time that much more
// has passed, for as long as the delivery lasts. Consumers run within the
// run, so a stuck one holds up its worker: never silently.
const SlowConsumerWarning = 10 * time.Second

// watchDelivery marks the start of a delivery to the consumers and arms the
// watchdog that warns about a slow one. It allocates only the first time.
func (w *worker[T]) watchDelivery() {
	if w.log == nil {
		// Before the watchdog exists: its function reads w.log.
		w.log = w.taggedLog()
	}
	w.delivering.Store(time.Now().UnixNano())
	if t := w.watchdog.Load(); t != nil {
		t.Reset(SlowConsumerWarning)
	} else {
		w.watchdog.Store(time.AfterFunc(SlowConsumerWarning, w.warnSlowDelivery))
	}
}

// warnSlowDelivery runs on the watchdog's timer: it warns while a delivery
// has lasted SlowConsumerWarning or more, and re-arms for the next warning.
func (w *worker[T]) warnSlowDelivery() {
	start := w.delivering.Load()
	if start == 0 {
		return // the delivery ended
	}
	blocked := time.Since(time.Unix(0, start))
	if blocked >= SlowConsumerWarning {
		w.log.Warn("task result consumers are holding up the worker", "blocked", blocked.Round(time.Millisecond))
	}
	if t := w.watchdog.Load(); t != nil {
		t.Reset(SlowConsumerWarning - blocked%SlowConsumerWarning)
	}
}

// logger returns the worker's logger (with the task and the worker) if the
// service's logger records level, else nil: a record that nothing takes
// costs no logger and no attributes. Only the worker's goroutine calls it.
func (w *worker[T]) logger(ctx context.Context, level slog.Level) *slog.Logger {
	if !w.host.Log().Enabled(ctx, level) {
		return nil
	}
	if w.log == nil {
		w.log = w.taggedLog()
	}
	return w.log
}

// taggedLog is the service's logger with the task and the worker.
func (w *worker[T]) taggedLog() *slog.Logger {
	return w.host.Log().With("task", w.t.name, "worker", w.id)
}

// spanSettings returns what the worker's spans are started with, making it
// on the first call. Only the worker's goroutine calls it.
func (w *worker[T]) spanSettings() *workerSpans {
	if w.spans == nil {
		w.spans = &workerSpans{
			name:   telemetry.SpanName(telemetry.SpanTask, w.svc+"/"+w.t.name),
			tracer: w.host.Tracer(),
			link:   trace.Link{SpanContext: w.host.StartSpanContext()},
			// Only what a sampler decides on goes in the start options;
			// the attributes and the link are added once the span is
			// known to record, so that an unsampled run does not copy
			// them.
			startOpts: []trace.SpanStartOption{trace.WithNewRoot(), trace.WithSpanKind(trace.SpanKindInternal)},
			attrs: []attribute.KeyValue{
				telemetry.AttrService.String(w.svc),
				telemetry.AttrTask.String(w.t.name),
				telemetry.AttrWorker.Int(w.id),
			},
		}
	}
	return w.spans
}

// logRun logs msg about the current run at level, with the run's number and
// err if not nil, if the service's logger records level. It is kept out of
// runOnce, so that its arguments do not weigh on the frame of every run.
//
//go:noinline
func (w *worker[T]) logRun(ctx context.Context, level slog.Level, msg string, err error) {
	l := w.logger(ctx, level)
	if l == nil {
		return
	}
	if err == nil {
		l.Log(ctx, level, msg, "run", w.run)
		return
	}
	l.Log(ctx, level, msg, "run", w.run, "error", err)
}

// emitFailed raises the TaskRunFailed of the current run (the service logs
// it, and hands it to its OnEvent hooks). It is kept out of runOnce, so that
// the event does not weigh on the frame of every run.
//
//go:noinline
func (w *worker[T]) emitFailed(ctx context.Context, err error, fails, stopping bool) {
	w.host.Emit(ctx, core.TaskRunFailed{Task: w.t.name, Worker: w.id, Run: w.run, Err: err,
		Fails: fails, Stopping: stopping})
}

// emitRetry raises the TaskRetryScheduled of the current run, retried in
// next, as emitFailed does.
//
//go:noinline
func (w *worker[T]) emitRetry(ctx context.Context, err error, next time.Duration) {
	w.host.Emit(ctx, core.TaskRetryScheduled{Task: w.t.name, Worker: w.id, Run: w.run, Err: err, Delay: next})
}
