package core

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/coreservice/coreservice/internal/telemetry"
	"github.com/coreservice/coreservice/internal/values"
)

// Service is the contract between a service and whoever starts it: Run, a
// parent that requires it (package deps), a probe (package health). *Base
// implements it; so does any type that embeds *Base, and any other type with
// these methods can be required by a service too.
//
// Implementations must be safe for concurrent use, must move through the
// states of State only forward, and must close Done exactly once, on
// reaching StateTerminated or StateFailed.
type Service interface {
	// Name identifies the service in logs, spans, errors and probes.
	Name() string
	// Start brings the service to StateRunning, or fails and leaves nothing
	// running. It is called once.
	Start(ctx context.Context) error
	// Stop brings the service to a final state and releases what it holds.
	// It is idempotent and safe for concurrent use.
	Stop(ctx context.Context) error
	// Healthcheck returns nil if the service is Running and healthy, else an
	// error matching ErrUnhealthy.
	Healthcheck(ctx context.Context) error
	// State is the current state.
	State() State
	// Done is closed on reaching StateTerminated or StateFailed.
	Done() <-chan struct{}
	// Err is nil until Done is closed; then it is the cause of the failure,
	// or nil after a clean stop.
	Err() error
}

// Base is the standard Service, built by NewService from options. Embed it
// (as *core.Base) in a struct of your own to give that struct the Service
// methods; a struct that embeds *Base shares its requirements' bookkeeping,
// so it can be required by several parents (package deps).
//
// The zero Base is not usable: always build one with NewService. A nil or
// zero Base (also embedded) is reported as an error by Start, Run and
// parents, never a panic; see Validate.
type Base struct {
	name string
	cfg  *Config
	// The logger the service was given, or inherited, or slog.Default()
	// at Start; nil until one of them is known (see logBase).
	logBaseP atomic.Pointer[slog.Logger]
	log      atomic.Pointer[slog.Logger] // the base logger with service=<name>; nil until logger needs it
	// The tracer and the meter, from the providers the options set, else
	// inherited at acquire or the OpenTelemetry globals' at Start; nil
	// until then. Written under mu before the move to Starting, read only
	// after it.
	tracer trace.Tracer
	meter  metric.Meter
	host   *Host

	// The service's lifecycle: the state and the facts its transitions
	// depend on, one value under mu (see lifecycle and transition).
	lifecycle

	mu           sync.Mutex
	eventsOutbox eventStream     // events on their way to the log and the OnEvent hooks
	lateErrs     []error         // failures met while stopping, before sealed
	abandoned    []abandonedCall // user code the start stopped waiting for
	startCancel  context.CancelCauseFunc
	startSpan    trace.SpanContext
	reqs         []*reqState
	statuses     []Status      // set by the units (Host.SetStatus)
	held         *held         // services the units acquired (Host.Acquire); nil until the first Acquire
	changed      chan struct{} // closed at the next state change; nil until Changed asks
	dependents   dependents    // parents to tell when b begins to stop, with b's name there
	waits        map[*Base]int // services this one's start is waiting for
	stopWaits    map[*Base]int // services this one's stop is waiting for
	settled      latch         // when Start has finished, either way
	hooksDone    latch         // when the stop is past its units and OnStop hooks
	done         chan struct{} // closed on reaching a final state

	metrics serviceMetrics
	spans   telemetry.SpanGate // off while the tracer records nothing

	cancel    context.CancelFunc // cancels the service's lifetime context
	checking  int                // Healthcheck calls begun while Running, under way
	checkIdle chan struct{}      // closed when checking drops to 0; nil if nobody waits
	workers   workerSet
}

// serviceSeq numbers the services whose name is derived from their caller,
// so that two services built by the same function get different names.
var serviceSeq atomic.Uint64

// NewService builds a service from options. It never fails: an invalid
// option is reported by Start, as a *StartupError wrapping ErrInvalidOption,
// before anything is started.
func NewService(opts ...Option) *Base {
	cfg := newConfig(opts)
	name := cfg.name
	if name == "" {
		name = callerName(2) + "#" + fmt.Sprint(serviceSeq.Add(1))
	}
	b := &Base{
		name: name,
		cfg:  cfg,
		done: make(chan struct{}),
	}
	// What the options set is final; what they leave unset is inherited
	// from the parent that starts the service, or resolved at Start
	// (inherit, resolveTelemetry).
	if cfg.logger != nil {
		b.logBaseP.Store(cfg.logger)
	}
	if tp := cfg.tracerProvider; tp != nil {
		b.tracer = tp.Tracer(telemetry.ScopeName)
		b.spans = telemetry.NewSpanGate(b.tracer, telemetry.ScopeName)
	}
	if mp := cfg.meterProvider; mp != nil {
		b.meter = mp.Meter(telemetry.ScopeName)
		b.metrics.gate = telemetry.NewMeterGate(b.meter, telemetry.ScopeName)
	}
	b.host = &Host{b: b}
	return b
}

// callerName returns the package-qualified name of the function skip frames
// up, such as "main.main" or "store.NewPostgres".
func callerName(skip int) string {
	pc, _, _, ok := runtime.Caller(skip)
	if !ok {
		return "service"
	}
	fn := runtime.FuncForPC(pc)
	if fn == nil {
		return "service"
	}
	name := fn.Name()
	if i := strings.LastIndex(name, "/"); i >= 0 {
		name = name[i+1:]
	}
	return name
}

// Name returns the service's name.
func (b *Base) Name() string {
	if b == nil {
		return ""
	}
	return b.name
}

// Log returns the service's logger: every record carries service=<name>.
// It is the logger given by the Logger option, else the one inherited from
// the parent that started the service, else slog.Default() as it was at
// Start (see Logger); before Start, without a Logger option, slog.Default()
// as it is now. Code the service runs reaches it from its context with
// core.Log(ctx).
func (b *Base) Log() *slog.Logger {
	if b.invalid() != nil {
		return slog.Default()
	}
	return b.logger()
}

// logEnabled reports whether the service's logger takes records at lvl:
// asked of the tagged logger once it is built, and until then of the
// logger the service was given, whose handler the tagged one only adds an
// attribute to, so that a check for a record nobody takes builds nothing.
func (b *Base) logEnabled(ctx context.Context, lvl slog.Level) bool {
	if l := b.log.Load(); l != nil {
		return l.Enabled(ctx, lvl)
	}
	return b.logBase().Enabled(ctx, lvl)
}

// logBase is the logger the service logs to, before service=<name> is
// added: the one it was given or inherited, else slog.Default() (looked up
// now until the service is started, at Start from then on).
func (b *Base) logBase() *slog.Logger {
	if l := b.logBaseP.Load(); l != nil {
		return l
	}
	return slog.Default()
}

// logger is Log for a valid b: the logger is built on its first use, so
// that a service that logs nothing builds none.
func (b *Base) logger() *slog.Logger {
	if l := b.log.Load(); l != nil {
		return l
	}
	base := b.logBaseP.Load()
	if base == nil {
		// Not started and no logger of its own: what it will log to is
		// decided at its start, so this one is not kept.
		return slog.Default().With("service", b.name)
	}
	l := base.With("service", b.name)
	if !b.log.CompareAndSwap(nil, l) {
		return b.log.Load()
	}
	return l
}

// State returns the current state.
func (b *Base) State() State {
	if b.invalid() != nil {
		return StateFailed
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state
}

// Changed returns a channel that is closed at the service's next state
// change, for code that waits for a state (such as a readiness probe) and
// would otherwise poll: take the channel, read State, and wait on the
// channel if the state is not the one wanted. A channel taken in a final
// state is never closed.
func (b *Base) Changed() <-chan struct{} {
	if b.invalid() != nil {
		return make(chan struct{}) // never changes
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.changed == nil {
		b.changed = make(chan struct{})
	}
	return b.changed
}

// Running reports whether the state is StateRunning.
func (b *Base) Running() bool { return b.State() == StateRunning }

// Done returns a channel closed when the service reaches StateTerminated or
// StateFailed, after its whole stop sequence has finished.
func (b *Base) Done() <-chan struct{} {
	if b.invalid() != nil {
		return closedDone
	}
	return b.done
}

// Err returns nil until Done is closed. Then it returns the cause of the
// failure when the state is StateFailed (for a failed start, the
// *StartupError that Start returned), or nil after a clean stop.
func (b *Base) Err() error {
	if err := b.invalid(); err != nil {
		return err
	}
	select {
	case <-b.done:
	default:
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cause
}

// coreBase gives package core the *Base inside any type embedding one.
func (b *Base) coreBase() *Base { return b }

type baser interface{ coreBase() *Base }

// Start starts the service and returns once it is Running, or once its
// start failed and was rolled back.
//
// In order, Start moves the service to StateStarting; starts its
// requirements in dependency order, independent ones concurrently, each
// followed by one health check; runs the OnStart hooks; launches the units
// (task workers); runs every health check once; launches the monitor; and
// moves the service to StateRunning. All of it runs under a span
// "start <name>" and is bounded by StartTimeout and by ctx.
//
// If any of it fails, or ctx ends, or a unit already launched fails, Start
// moves the service to StateStopping, rolls back everything started so far,
// the failing part included, in reverse order (the stop sequence, see
// Stop), moves the service to StateFailed and returns a *StartupError
// (matching ErrStartup) that names the failing part and wraps the cause
// (joined with the failures of their own that other requirements met as
// the first one cancelled their starts) and
// what the rollback met (StartupError.Rollback); Err returns the same
// error. Stop called during Start ends it the same way, but the service ends
// in StateTerminated, unless the start also failed for a reason of its own
// (an error that is not the cancellation Stop caused).
//
// Start is meant to be called once. A second call, concurrent or not, or a
// call after Stop stopped the service, returns an error matching
// ErrAlreadyStarted and changes nothing (Stop before Start is a no-op that
// leaves the service startable). Requirements are not started with Start
// but acquired by their parents, which share a service started once
// (package deps).
func (b *Base) Start(ctx context.Context) error {
	if err := b.invalid(); err != nil {
		return &StartupError{Service: b.Name(), Part: "options", Err: err}
	}
	if err := checkCycle(ctx, b); err != nil {
		return &StartupError{Service: b.name, Err: err}
	}
	b.mu.Lock()
	if b.state != StateNew {
		b.mu.Unlock()
		return fmt.Errorf("start %s: %w", b.name, ErrAlreadyStarted)
	}
	b.holders++
	startCtx := b.begin(ctx)
	b.mu.Unlock()
	return b.startup(startCtx)
}

// begin moves the service from New to Starting. b.mu is held; the
// start (startup) writes the event's log record.
func (b *Base) begin(ctx context.Context) context.Context {
	b.resolveTelemetry()
	b.transition(ctx, StateStarting, nil, false)
	ctx, b.startCancel = context.WithCancelCause(ctx)
	return ctx
}

var errStopRequested = errors.New("stopped while starting")

// startup runs the start sequence and, if it fails, the rollback.
func (b *Base) startup(ctx context.Context) error {
	defer b.startCancel(nil)
	b.flushLog() // the move to Starting
	// A start that runs no user code has nothing for StartTimeout to bound,
	// and leads to no other start, which would read the start chain.
	if !b.startsInline() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, b.cfg.startTimeout, &timeoutExceeded{"StartTimeout", b.cfg.startTimeout})
		defer cancel()
		ctx = withPath(ctx, b)
	}
	ctx, span := b.span(ctx, telemetry.SpanStart, b.name)
	b.mu.Lock()
	b.startSpan = span.SpanContext()
	b.mu.Unlock()

	err := b.startSteps(ctx)

	b.mu.Lock()
	if err == nil && (b.cause != nil || b.stopReq) {
		// A launched unit failed, or Stop was called, after the last step.
		err = &StartupError{Service: b.name, Err: b.startAbort(ctx)}
	}
	if err == nil {
		b.transition(ctx, StateRunning, nil, false)
		b.mu.Unlock()
		telemetry.End(span, nil)
		b.flushLog()
		b.mu.Lock()
		b.settled.open() // last: parents waiting for b see its whole start
		b.mu.Unlock()
		return nil
	}
	if se := (*StartupError)(nil); errors.As(err, &se) && b.cause != nil && !errors.Is(se.Err, b.cause) {
		// The step failed because a unit's failure cancelled the start:
		// the unit's failure is the cause worth reporting.
		se.Err = b.cause
	}
	// A start that failed for a reason of its own is a failure, also when
	// Stop (or the last parent giving up) aborted it meanwhile.
	failure := !b.stopReq || !errors.Is(err, errStopRequested)
	b.transition(ctx, StateStopping, err, failure)
	b.workers.close()
	b.settled.open()
	b.mu.Unlock()
	telemetry.End(span, err)
	b.flushLog()

	// Roll back under the stop's bounds, whatever is left of the start's.
	rollback := b.shutdown(detach(ctx))
	// What the start left running is named by the rollback too, and the
	// part the start's error names is named by Stop when nothing else
	// would: a start that Stop aborted is no failure (Err is nil), and when
	// a parent started the service no Start call gets that error.
	b.mu.Lock()
	abandoned, failed, byParent := b.abandoned, b.cause != nil, b.byParent
	b.mu.Unlock()
	var left, named []error
	for _, a := range abandoned {
		e := &StartupError{Service: b.name, Part: a.what, Err: a.err}
		if errors.Is(err, a.err) {
			named = append(named, e)
		} else {
			left = append(left, e)
		}
	}
	if len(left) > 0 {
		rollback = errors.Join(append(left, rollback)...)
	}
	stopErr := rollback
	if len(named) > 0 && !failed && byParent {
		stopErr = errors.Join(append(named, rollback)...)
	}
	if se := (*StartupError)(nil); rollback != nil && errors.As(err, &se) {
		// A new error: parents may already hold the first one.
		final := &StartupError{Service: se.Service, Part: se.Part, Err: se.Err, Rollback: rollback}
		b.mu.Lock()
		if b.cause == err {
			b.cause = final
		}
		b.mu.Unlock()
		err = final
	}
	b.finish(stopErr)
	return err
}

// startAbort is the reason the start was aborted from outside: a unit's
// failure, or Stop. b.mu is held.
func (b *Base) startAbort(ctx context.Context) error {
	if b.cause != nil {
		return b.cause
	}
	if b.stopReq {
		return errStopRequested
	}
	return context.Cause(ctx)
}

// startSteps runs the start sequence, returning a *StartupError naming the
// part that failed.
func (b *Base) startSteps(ctx context.Context) error {
	fail := func(part string, err error) error {
		if ctx.Err() != nil {
			b.mu.Lock()
			if cause := b.startAbort(ctx); cause != nil && errors.Is(err, ctx.Err()) && !errors.Is(err, cause) {
				err = cause
			}
			b.mu.Unlock()
		}
		return &StartupError{Service: b.name, Part: part, Err: err}
	}
	if err := b.cfg.err(); err != nil {
		return fail("options", err)
	}
	if err := b.validateChecks(); err != nil {
		return fail("options", err)
	}
	if err := b.validateUnits(); err != nil {
		return fail("options", err)
	}
	life, cancel := context.WithCancel(context.Background())
	b.mu.Lock()
	b.cancel = cancel
	b.mu.Unlock()
	b.workers.open(life, b)

	if part, err := b.startRequirements(ctx); err != nil {
		return fail(part, err)
	}
	b.mu.Lock()
	b.pastRequirements = true
	b.mu.Unlock()
	// A hook's context is marked as the service's own, so that Stop called
	// from a hook with it does not wait for the hook.
	// The checks' runs get it too, so that they reach the service with
	// core.Log(ctx).
	hookCtx := ctx
	if len(b.cfg.onStart) > 0 || len(b.cfg.checks) > 0 {
		hookCtx = b.own(ctx)
	}
	for _, h := range b.cfg.onStart {
		part := fmt.Sprintf("OnStart hook %d", h.index)
		if err := ctx.Err(); err != nil {
			return fail(part, err)
		}
		if err, _ := b.callBounded(hookCtx, part, h.fn); err != nil {
			return fail(part, err)
		}
		if ctx.Err() != nil {
			// The hook returned nil once the start's context had ended (at
			// StartTimeout, say): the start ended while it ran, so it is
			// the part named.
			return fail(part, context.Cause(ctx))
		}
	}
	for _, u := range b.cfg.units {
		if err := ctx.Err(); err != nil {
			return fail(u.Name(), err)
		}
		if err := b.launchUnit(ctx, u); err != nil {
			return fail(u.Name(), err)
		}
	}
	for i, c := range b.cfg.checks {
		if err := ctx.Err(); err != nil {
			return fail("check "+c.Name(), err)
		}
		if err := b.runCheck(hookCtx, i, nil); err != nil {
			return fail("check "+c.Name(), err)
		}
	}
	if err := ctx.Err(); err != nil {
		return fail("", err)
	}
	if b.needsMonitor() {
		b.startMonitor()
	}
	return nil
}

// Stop stops the service and returns once it has reached StateTerminated or
// StateFailed, or once ctx ends, whichever is first.
//
// The stop sequence moves the service to StateStopping; cancels the
// service's context, so that task workers and the monitor end; waits for
// them, for at most StopTimeout; runs the OnStop hooks in reverse order,
// each bounded by a StopTimeout of its own;
// stops the requirements this service holds in reverse dependency order,
// independent ones concurrently (a requirement shared with other parents
// only when its last parent releases it), waiting for those that are
// stopping, also when someone else stopped them; and moves the service to
// StateTerminated, or StateFailed if a failure caused the stop. It runs
// under a span "stop <name>".
//
// Stop returns the errors met while stopping, joined with errors.Join and
// logged: a *StopTimeoutError naming the units still running at
// StopTimeout, failing OnStop hooks, requirements that failed to stop. It
// does not return the failure that made the service stop itself: that is
// Err. If ctx ends first, Stop returns ctx's error; the stop sequence goes
// on, bounded by StopTimeout, and Done is closed when it ends.
//
// Stop is idempotent and safe for concurrent use: every call, concurrent or
// later, waits for the same stop sequence and returns the same result. Stop
// on a service that was never started does nothing and returns nil. Stop
// during Start aborts the start, which rolls back, and returns the
// rollback's result. What the start left running (an OnStart hook that
// ignored its context, say) is named by Start's *StartupError; when a parent
// started the service, so that no Start call gets that error, Stop returns
// that *StartupError too. Stop stops a shared service even while other parents
// hold it; they then fail, as they would if it had failed.
//
// Stop called from one of the service's own units, OnStart/OnStop hooks or
// checks with the context it was given (or one derived from it) begins the stop
// (or aborts the start) and returns nil at once: the stop waits for that
// unit or hook, so it must return. Called with an unrelated context, such
// as context.Background(), Stop cannot tell: from a unit or an OnStop hook
// it waits for the stop that waits for its caller, which is left running
// after StopTimeout and named in a *StopTimeoutError; from an OnStart hook
// the aborted start stops waiting for the hook at once. A unit ends its
// service explicitly, without that context, with Host.Stop.
//
// With OnEvent hooks, the stop ends (and Done is closed) once the hooks have
// had the move to the final state, or after a further StopTimeout (see
// OnEvent).
func (b *Base) Stop(ctx context.Context) error {
	if err := b.invalid(); err != nil {
		return fmt.Errorf("stop: %w", err)
	}
	b.mu.Lock()
	if b.state == StateNew {
		b.mu.Unlock()
		return nil
	}
	if _, ok := ctx.Value(stopReasonKey{}).(string); !ok && (b.state == StateRunning || b.state == StateStarting) {
		ctx = withStopReason(ctx, "Stop")
	}
	b.stopLocked(ctx)
	b.mu.Unlock()
	if ctx.Value(unitKey{}) == b {
		// Called from one of b's own units: the stop waits for them, so
		// waiting here would wait for ourselves.
		return nil
	}
	return b.awaitStop(ctx)
}

// awaitStop waits until the stop has finished, or ctx ends, and returns the
// stop's result. A stop that has finished wins over a ctx that has ended.
func (b *Base) awaitStop(ctx context.Context) error {
	select {
	case <-b.done:
	default:
		select {
		case <-b.done:
		case <-ctx.Done():
			return fmt.Errorf("stop %s: %w", b.name, context.Cause(ctx))
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.stopErr
}

// stopLocked begins the stop of a Starting or Running service (Starting:
// by aborting the start, which rolls back) and drops every hold on it; it
// does not wait. It is the one decision to stop, taken under b.mu, so that a
// parent acquiring b either comes before it (and then holds b, which is not
// stopped) or sees b stopping. b.mu is held.
func (b *Base) stopLocked(ctx context.Context) {
	if b.stopHoldsLocked(ctx) {
		go b.stopAsync(ctx)
	}
}

// stopHoldsLocked is stopLocked, except that a stop sequence it begins is
// not launched: it reports true, and the caller must run b.stopAsync(ctx),
// on a goroutine of its choice (see releaseAll). b.mu is held.
func (b *Base) stopHoldsLocked(ctx context.Context) (launch bool) {
	switch b.state {
	case StateStarting:
		b.stopReq = true
		b.startCancel(errStopRequested)
	case StateRunning:
		launch = b.enterStopLocked(ctx, nil)
	}
	b.holders = 0
	return launch
}

// beginStopLocked moves a Running service to Stopping, failing with cause
// unless it is nil, and launches its stop sequence, which writes the
// event's log record: no unit starts from now on, and the units' context is
// cancelled at once. b.mu is held.
func (b *Base) beginStopLocked(ctx context.Context, cause error) {
	if b.enterStopLocked(ctx, cause) {
		go b.stopAsync(ctx)
	}
}

// enterStopLocked is beginStopLocked without launching the stop sequence:
// it reports whether the service moved to Stopping, and then the caller
// must run b.stopAsync(ctx). b.mu is held.
func (b *Base) enterStopLocked(ctx context.Context, cause error) bool {
	if !b.transition(ctx, StateStopping, cause, cause != nil) {
		return false
	}
	b.workers.close()
	if b.cancel != nil {
		b.cancel()
	}
	return true
}

// stopsInline reports whether b's stop sequence, begun and not launched
// (stopHoldsLocked), runs no user code and waits for nothing that could
// take long: no OnStop hook, OnEvent hook, requirement or dependent, and
// no unit or Healthcheck call still running. Such a stop is run on the
// goroutine of the parent releasing b, which would only wait for it.
func (b *Base) stopsInline() bool {
	b.mu.Lock()
	static := len(b.cfg.onStop) == 0 && len(b.cfg.onEvent) == 0 && len(b.reqs) == 0 && len(b.dependents.list) == 0
	b.mu.Unlock()
	return static && b.unitsIdle()
}

// fail makes the service stop itself with cause: at once when Running; by
// aborting the start when Starting. During a stop, cause is kept with the
// stop's errors, unless it is the cancellation the stop caused.
func (b *Base) fail(cause error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.failLocked(cause)
}

// requirementFailed fails b because its requirement name, a *Base, failed
// with cause (it is on its way down, telling its dependents first): it
// raises RequirementFailed, then fails b as fail does.
func (b *Base) requirementFailed(name, origin string, cause error) {
	b.mu.Lock()
	if !b.state.final() {
		raise(b, context.Background(), RequirementFailed{Service: b.name, Requirement: name, Err: cause, Origin: origin}, false)
	}
	b.failLocked(&requirementError{name: name, err: cause, origin: origin})
	b.mu.Unlock()
	b.flushLog()
}

// requirementStopped fails b because its requirement name stopped without
// failing (Stop, or its last holder released it), unless b is already
// stopping: b is going down anyway and the requirement's stop waits for b's
// hooks, so it is no failure of b's stop. A requirement that fails is
// reported to a stopping parent through requirementFailed.
func (b *Base) requirementStopped(name string) {
	b.mu.Lock()
	if b.state == StateStopping || b.state.final() {
		b.mu.Unlock()
		return
	}
	err := &requirementStoppedError{name: name}
	raise(b, context.Background(), RequirementFailed{Service: b.name, Requirement: name, Err: err}, false)
	b.failLocked(err)
	b.mu.Unlock()
	b.flushLog()
}

// failLocked is fail with b.mu held.
func (b *Base) failLocked(cause error) {
	switch b.state {
	case StateStarting:
		switch {
		case b.cause == nil:
			b.cause = cause
			b.startCancel(cause)
		case !errors.Is(cause, context.Canceled):
			b.lateErrs = append(b.lateErrs, cause) // returned by the rollback's stop
		}
	case StateRunning:
		b.beginStopLocked(context.Background(), cause)
	case StateStopping:
		switch {
		case errors.Is(cause, context.Canceled):
		case b.sealed:
			b.logger().Error("failure during the last step of the stop", "error", cause)
		default:
			b.lateErrs = append(b.lateErrs, cause)
		}
	default:
		b.logger().Error("failure after the service stopped", "error", cause)
	}
}

// stopAsync runs the stop sequence of a Running service. It is started
// once, by the Stop or fail that moved the service to Stopping, and first
// writes that move's log record.
func (b *Base) stopAsync(ctx context.Context) {
	b.flushLog()
	b.mu.Lock()
	cause := b.cause
	parents := b.dependents.list
	b.dependents = dependents{}
	b.mu.Unlock()
	// Parents learn of it first, before anything of b stops, and b's stop
	// waits until their work has ended and their OnStop hooks have run (the
	// order of any stop: dependents first). Their next step, releasing b,
	// waits for b, so they wait no longer.
	for _, d := range parents {
		if cause != nil {
			d.parent.requirementFailed(d.name, failureOrigin(b.name, cause), cause)
		} else {
			d.parent.requirementStopped(d.name)
		}
	}
	for _, d := range parents {
		d.parent.mu.Lock()
		hooksDone := d.parent.hooksDone.wait()
		d.parent.mu.Unlock()
		<-hooksDone
	}
	b.finish(b.shutdown(detach(ctx)))
}

// shutdown is the stop sequence, shared by Stop, self-failure and the
// rollback of a failed start. It returns the errors it met.
func (b *Base) shutdown(ctx context.Context) error {
	// A stop begun by one of b's units must still wait for the services it
	// releases: the unit's mark means "do not wait for me" to b alone.
	if ctx.Value(unitKey{}) != nil {
		ctx = context.WithValue(ctx, unitKey{}, nil)
	}
	ctx, span := b.span(ctx, telemetry.SpanStop, b.name)
	var errs []error
	b.mu.Lock()
	cancelLife := b.cancel
	b.mu.Unlock()
	if cancelLife != nil {
		cancelLife()
	}
	// Each step has a StopTimeout of its own, so that no step, however
	// stuck, takes the time of the next: first the units and the monitor.
	// The bound is a timer, not a context: nothing below derives from it.
	var bound stopBound
	if !b.unitsIdle() { // else nothing to wait for: no timer
		bound.timer = time.NewTimer(b.cfg.stopTimeout)
	}
	if err := b.workers.wait(ctx, &bound, b.name, b.cfg.stopTimeout); err != nil {
		b.stopTimedOut(ctx, err)
		errs = append(errs, err)
	}
	if !b.waitChecking(ctx, &bound) { // Healthcheck calls begun while Running
		errs = append(errs, fmt.Errorf("Healthcheck calls still running after StopTimeout %v", b.cfg.stopTimeout))
	}
	bound.stop()
	b.mu.Lock()
	hooks := b.pastRequirements
	b.mu.Unlock()
	if hooks {
		// Then each OnStop hook, marked as the service's own (Stop called
		// from a hook does not wait for it).
		for i := len(b.cfg.onStop) - 1; i >= 0; i-- {
			h := b.cfg.onStop[i]
			name := fmt.Sprintf("OnStop hook %d", h.index)
			hookCtx, cancel := context.WithTimeout(context.WithValue(ctx, unitKey{}, b), b.cfg.stopTimeout)
			err, returned := b.callBounded(hookCtx, name, h.fn)
			cancel()
			switch {
			case !returned:
				err := &StopTimeoutError{Service: b.name, Timeout: b.cfg.stopTimeout, Units: []string{name}}
				b.stopTimedOut(ctx, err)
				errs = append(errs, err)
			case err != nil:
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
			}
		}
	}
	b.mu.Lock()
	b.hooksDone.open() // requirements that failed may stop now
	b.mu.Unlock()
	// What the units acquired goes first: it may use the registered
	// requirements.
	for _, err := range b.releaseHeld(ctx) {
		if err != nil {
			b.stopTimedOut(ctx, err)
			errs = append(errs, err)
		}
	}
	for _, err := range b.releaseRequirements(ctx) {
		b.stopTimedOut(ctx, err) // the Stop of a service of another type
		errs = append(errs, err)
	}
	b.mu.Lock()
	errs = append(errs, b.lateErrs...) // failures of units and hooks met while stopping
	b.sealed = true
	b.mu.Unlock()
	err := errors.Join(errs...)
	if err != nil {
		err = fmt.Errorf("stop %s: %w", b.name, err)
	}
	telemetry.End(span, err)
	return err
}

// detach returns ctx without its cancellation (context.WithoutCancel), or
// ctx itself when it has none to drop: a stop begun by another stop, whose
// context is already detached, builds no context for it.
func detach(ctx context.Context) context.Context {
	if ctx.Done() == nil {
		return ctx
	}
	return context.WithoutCancel(ctx)
}

// stopTimedOut raises StopTimedOut if err is a *StopTimeoutError of b's own
// (not one of a requirement's stop, which that requirement raised).
func (b *Base) stopTimedOut(ctx context.Context, err error) {
	if ste := (*StopTimeoutError)(nil); errors.As(err, &ste) && ste.Service == b.name {
		emit(b, ctx, StopTimedOut{Service: b.name, Timeout: ste.Timeout, Units: ste.Units})
	}
}

// finish ends the stop: it logs what the stop met, raises the move to the
// final state, waits until the log has it and the OnEvent hooks have had it
// (for at most StopTimeout, see awaitHooks), then applies the final state
// and closes Done in one step, so that a final State always comes with a
// closed Done and its Err.
func (b *Base) finish(stopErr error) {
	if stopErr != nil {
		b.logger().Error("stop met errors", "error", stopErr)
	}
	b.mu.Lock()
	final := StateTerminated
	if b.cause != nil {
		final = StateFailed
	}
	moved := b.transition(context.Background(), final, b.cause, false)
	b.mu.Unlock()
	b.awaitLog()
	b.awaitHooks(b.cfg.stopTimeout)
	b.mu.Lock()
	if moved {
		b.applyStateLocked(final)
	}
	b.stopErr = stopErr
	close(b.done)
	b.mu.Unlock()
}

// stopBound is the StopTimeout of the stop's first step (units, monitor and
// Healthcheck calls): a timer, nil when there was nothing to wait for, and
// whether it has fired (its channel delivers once).
type stopBound struct {
	timer   *time.Timer
	expired bool
}

// expire returns the channel the timer fires on, or nil (never ready) if
// there is no timer or it has fired already (expired, which the caller
// checks first).
func (s *stopBound) expire() <-chan time.Time {
	if s.timer == nil || s.expired {
		return nil
	}
	return s.timer.C
}

// stop releases the timer.
func (s *stopBound) stop() {
	if s.timer != nil {
		s.timer.Stop()
	}
}

// waitChecking waits until no Healthcheck call begun while Running is under
// way, or until ctx ends or bound expires, and reports whether none is.
func (b *Base) waitChecking(ctx context.Context, bound *stopBound) bool {
	b.mu.Lock()
	if b.checking == 0 {
		b.mu.Unlock()
		return true
	}
	if b.checkIdle == nil {
		b.checkIdle = make(chan struct{})
	}
	idle := b.checkIdle
	b.mu.Unlock()
	if bound.expired {
		return false
	}
	select {
	case <-idle:
		return true
	case <-bound.expire():
		bound.expired = true
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.checking == 0
	case <-ctx.Done():
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.checking == 0
	}
}

// doneChecking ends one Healthcheck call counted in b.checking.
func (b *Base) doneChecking() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.checking--; b.checking == 0 && b.checkIdle != nil {
		close(b.checkIdle)
		b.checkIdle = nil
	}
}

// protect calls fn, turning a panic into a *PanicError: user code in the
// start and stop sequences must not leave a service half started.
func protect(fn func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	return fn()
}

// Validate reports whether s can be used as a service: it returns an error
// matching ErrInvalidOption when s is nil, or is (or embeds) a *Base that
// NewService did not build: a nil *Base, or a zero Base{}. Start, Run and
// the parents of s call it before using s, so such a service is an error
// from Start, never a panic; the methods of an unusable *Base report it too
// (State is StateFailed, Done is closed, Err is that error).
func Validate(s Service) error {
	if bb, ok := s.(baser); ok {
		if err := bb.coreBase().invalid(); err != nil {
			return fmt.Errorf("service of type %T: %w", s, err)
		}
	}
	if values.IsNil(s) {
		return fmt.Errorf("%w: nil service", ErrInvalidOption)
	}
	return nil
}

var (
	errNilBase  = fmt.Errorf("%w: nil *core.Base: build services with core.NewService", ErrInvalidOption)
	errZeroBase = fmt.Errorf("%w: zero core.Base: build services with core.NewService", ErrInvalidOption)
	closedDone  = func() chan struct{} { c := make(chan struct{}); close(c); return c }()
)

// invalid reports a *Base that NewService did not build.
func (b *Base) invalid() error {
	switch {
	case b == nil:
		return errNilBase
	case b.cfg == nil:
		return errZeroBase
	}
	return nil
}

// span starts the span "<prefix> <subject>" of service subject (a start or
// a stop). While the service's tracer records nothing it builds neither
// the name nor the span: it returns ctx and a no-op span, never the span
// ctx may already carry, which is not the caller's to end.
func (b *Base) span(ctx context.Context, prefix, subject string) (context.Context, trace.Span) {
	if !b.spans.On() {
		return ctx, noSpan
	}
	return b.tracer.Start(ctx, telemetry.SpanName(prefix, subject),
		trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithAttributes(telemetry.AttrService.String(subject)))
}

// noSpan is a span that records nothing.
var noSpan = trace.SpanFromContext(context.Background())
