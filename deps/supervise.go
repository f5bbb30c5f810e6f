package deps

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/internal/inline"
	"github.com/coreservice/coreservice/internal/telemetry"
	"github.com/coreservice/coreservice/internal/values"
)

// DefaultHealthyAfter is how long an instance of a Supervise requirement
// must have been Running for its failure to start a new streak of
// restarts (the policy is Reset) when HealthyAfter is not given: 30 s,
// suture's FailureDecay.
const DefaultHealthyAfter = 30 * time.Second

// SupervisorStatus is the name of the status a supervisor sets
// (core.Host.SetStatus), as the probes show it under the requirement:
// /readyz/<parent>/<requirement>/supervisor.
const SupervisorStatus = "supervisor"

// Supervise returns a requirement on a service that factory builds, and
// builds again when it fails: the parent starts a supervisor, a service
// named as the requirement, that builds an instance with factory, starts
// it (as the supervisor's requirement, with the parent's logger and
// telemetry), and is Running while the parent runs. When the instance
// fails, or stops, while the parent runs, the supervisor releases it,
// waits policy's NextBackOff, builds a new instance with factory and starts
// it; a restart that fails (factory's error or panic, the new instance's
// failed start) is retried after the next delay.
//
// The supervisor gives up when the policy's NextBackOff is backoff.Stop,
// or when factory or a restart fails with an error wrapped in
// backoff.Permanent: it fails with a *GaveUpError wrapping the last cause,
// and its parent fails as it would for any requirement. The policy is
// Reset when an instance that had been Running for HealthyAfter (default
// DefaultHealthyAfter) fails: a new streak of restarts begins with the
// policy's first delay. policy is called once per start of the parent (as
// it begins): each start has a fresh BackOff.
//
// The first instance is part of the parent's start: a failure to build or
// start it fails the parent's start, as Lazy's would; once it is Running,
// a failure is restarted, also while the parent is still starting (the
// parent then starts, not ready). A new instance's own requirements are
// resolved again by its start: Lazy builders run again, and a shared
// service held by other parents is joined, not restarted. A service that
// only the failed instance held was stopped with it, and a stopped service
// never starts again: build such requirements in the factory, with the
// instance, or let the parent hold them too.
//
// While an instance restarts, the parent stays Running but is not ready:
// the supervisor's status (SupervisorStatus) is "restarting (attempt 2 in
// 1.5s)" in /readyz/<parent>/<requirement>/supervisor, in Healthcheck and
// in Graph; Get returns the instance that failed, and Current waits for the
// next one. A task of the parent that uses the requirement should call
// Current at the start of each run (bounded by the run's context), or
// treat the failed instance's errors as worth a retry (task.Retry).
//
// The supervisor raises core.RestartScheduled, core.Restarted and
// core.RestartGaveUp, logged by the parent's logger (service=<requirement>)
// and given to the hooks of OnEvent; each restart is a span "restart
// <requirement>", a new trace linked to the span the failed instance was
// started under, with the new instance's start span in it; and the
// counter coreservice.restarts counts the restarts begun.
//
// Bad input, reported by the parent's Start naming the requirement: a nil
// factory or policy, a policy that returns nil, a factory that returns a
// nil service or one that was started already, an instance whose start
// fails as an invalid option (core.ErrInvalidOption). During a restart
// these give up at once: they are not transient.
func Supervise[S core.Service](factory func(context.Context) (S, error), policy func() backoff.BackOff, opts ...Option) *Requirement[S] {
	var zero S
	r := newRequirement(kindSupervise, zero, factory, opts)
	r.sv = &supervision[S]{policy: policy}
	r.cfg.supervise() // the defaults
	return r
}

// GaveUpError is the failure of a supervisor (deps.Supervise) that gave
// up restarting its instance: "gave up after 5 restarts: <last cause>".
// The parent fails with it, wrapped as any requirement failure.
type GaveUpError struct {
	// Requirement is the name of the requirement.
	Requirement string
	// Attempts is how many restarts were tried in the last streak.
	Attempts int
	// Err is the last cause: the instance's failure, or the last restart's.
	Err error
}

// Error names the requirement, the attempts and the last cause.
func (e *GaveUpError) Error() string {
	return fmt.Sprintf("%s: gave up after %d restarts: %v", e.Requirement, e.Attempts, e.Err)
}

// Unwrap returns the last cause.
func (e *GaveUpError) Unwrap() error { return e.Err }

// Current returns the instance of a Supervise requirement once it is
// Running: at once while it runs, else when the supervisor has restarted
// it. It returns an error when ctx ends first, when the supervisor gave up
// or stopped (its Err, or an error saying it stopped), or when the parent
// has not started the supervisor. For the other kinds of requirement it
// returns Get once the service is Running, else an error saying what it
// is.
func (r *Requirement[S]) Current(ctx context.Context) (S, error) {
	var zero S
	if r.kind != kindSupervise {
		s := r.Get()
		if values.IsNil(s) {
			return zero, fmt.Errorf("%s: not built", r)
		}
		if st := s.State(); st != core.StateRunning {
			return zero, fmt.Errorf("%s: %s is %s", r, s.Name(), st)
		}
		return s, nil
	}
	r.mu.Lock()
	u := r.sv.sup
	r.mu.Unlock()
	if u == nil {
		return zero, fmt.Errorf("%s: not started", r)
	}
	return u.current(ctx)
}

// Restarts returns how many times the supervisor of a Supervise
// requirement restarted its instance since the parent's start (0 for the
// other kinds).
func (r *Requirement[S]) Restarts() int {
	if r.sv == nil {
		return 0
	}
	r.mu.Lock()
	u := r.sv.sup
	r.mu.Unlock()
	if u == nil {
		return 0
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.restarts
}

// superviseAdapter is the core.Requirement of a Supervise: each start of
// the parent resolves it to a new supervisor service.
type superviseAdapter[S core.Service] struct{ *adapter[S] }

// ResolveInline implements inline.Resolver: building the supervisor calls
// no user code (its start calls the factory, bounded).
func (a superviseAdapter[S]) ResolveInline(inline.Token) bool { return true }

// Resolve builds the supervisor of this start of the parent.
func (a superviseAdapter[S]) Resolve(context.Context) (core.Service, error) {
	r := a.r
	u := &supervisor[S]{r: r, name: r.name()}
	opts := []core.Option{core.Name(u.name), u}
	for _, fn := range r.cfg.sv.hooks {
		opts = append(opts, core.OnEvent(fn))
	}
	u.svc = core.NewService(opts...)
	r.mu.Lock()
	r.sv.sup = u
	r.mu.Unlock()
	return u.svc, nil
}

// supervisor is the unit of a Supervise's supervisor service: it starts the
// first instance in Launch and watches and restarts it in a goroutine of
// the service.
type supervisor[S core.Service] struct {
	r    *Requirement[S]
	name string
	svc  *core.Base
	host *core.Host

	policy   backoff.BackOff
	counter  metric.Int64Counter
	spansOn  telemetry.SpanGate
	counters telemetry.MeterGate

	mu       sync.Mutex
	inst     S                 // the latest instance that was Running
	running  bool              // inst is Running under the supervisor, as far as it knows
	changed  chan struct{}     // closed when inst or running change; made by the first waiter after a change
	since    time.Time         // when inst became Running
	under    trace.SpanContext // the span inst was started under
	restarts int
	streak   int // restarts tried since the policy's last Reset

	timer *time.Timer // the delay before a restart; the watch goroutine's only
}

// ApplyTo registers the unit with the supervisor service.
func (u *supervisor[S]) ApplyTo(c *core.Config) { c.AddUnit(u) }

// PartOfParent implements inline.Part: the supervisor is part of its
// parent, and has the parent's StartTimeout and StopTimeout.
func (u *supervisor[S]) PartOfParent(inline.Token) bool { return true }

// Name names the unit.
func (u *supervisor[S]) Name() string { return SupervisorStatus }

// Validate calls the policy function, for this start: a nil BackOff is
// bad input.
func (u *supervisor[S]) Validate() error {
	if u.policy = u.r.sv.policy(); u.policy == nil {
		return fmt.Errorf("%s: the policy function returned a nil BackOff", u.r)
	}
	return nil
}

// Launch builds and starts the first instance, then watches it.
func (u *supervisor[S]) Launch(ctx context.Context, h *core.Host) error {
	u.host = h
	u.policy.Reset()
	u.spansOn = telemetry.NewSpanGate(h.Tracer(), telemetry.ScopeName)
	u.counters = telemetry.NewMeterGate(h.Meter(), telemetry.ScopeName)
	var err error
	u.counter, err = h.Meter().Int64Counter(telemetry.MetricRestarts,
		metric.WithUnit("{restart}"), metric.WithDescription("Restarts begun by supervisors"))
	if err != nil {
		h.Log().Warn("restarts counter unavailable", "error", err)
	}
	inst, err := u.build(ctx)
	if err == nil {
		err = h.Acquire(ctx, inst.Name(), inst)
	}
	if err != nil {
		return err
	}
	u.setRunning(inst, h.StartSpanContext())
	h.Go(SupervisorStatus, u.watch)
	return nil
}

// build calls the factory and checks what it returns; a panic is an error.
func (u *supervisor[S]) build(ctx context.Context) (inst S, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("%s: factory: %w", u.r, &core.PanicError{Value: v, Stack: debug.Stack()})
		}
	}()
	inst, err = u.r.build(ctx)
	if err != nil {
		return inst, fmt.Errorf("%s: factory: %w", u.r, err)
	}
	if values.IsNil(inst) {
		return inst, backoff.Permanent(fmt.Errorf("%w: %s: factory returned a nil service", core.ErrInvalidOption, u.r))
	}
	if err := core.Validate(inst); err != nil {
		return inst, backoff.Permanent(fmt.Errorf("%w: %s: factory returned an unusable service: %w", core.ErrInvalidOption, u.r, err))
	}
	if st := inst.State(); st != core.StateNew {
		return inst, backoff.Permanent(fmt.Errorf("%w: %s: factory returned %s, which is %s: build a new service each time",
			core.ErrInvalidOption, u.r, inst.Name(), st))
	}
	return inst, nil
}

// setRunning records inst as the Running instance, started under the span
// under.
func (u *supervisor[S]) setRunning(inst S, under trace.SpanContext) {
	u.mu.Lock()
	u.inst, u.running, u.since, u.under = inst, true, time.Now(), under
	u.changeLocked()
	restarts := u.restarts
	u.mu.Unlock()
	u.r.mu.Lock()
	u.r.built = inst
	u.r.mu.Unlock()
	u.host.SetStatus(SupervisorStatus, fmt.Sprintf("running %s (restarts: %d)", inst.Name(), restarts), true)
}

// current waits for a Running instance.
func (u *supervisor[S]) current(ctx context.Context) (S, error) {
	var zero S
	for {
		u.mu.Lock()
		// An instance that failed is Running no more before the supervisor
		// has noticed: wait for it to.
		if u.running && u.inst.State() == core.StateRunning {
			inst := u.inst
			u.mu.Unlock()
			return inst, nil
		}
		if u.changed == nil {
			u.changed = make(chan struct{})
		}
		changed := u.changed
		u.mu.Unlock()
		select {
		case <-changed:
		case <-u.svc.Done():
			if err := u.svc.Err(); err != nil {
				return zero, err
			}
			return zero, fmt.Errorf("%s: the supervisor stopped", u.r)
		case <-ctx.Done():
			return zero, fmt.Errorf("%s: waiting for a running instance: %w", u.r, context.Cause(ctx))
		}
	}
}

// changeLocked wakes the callers of current. u.mu is held.
func (u *supervisor[S]) changeLocked() {
	if u.changed != nil {
		close(u.changed)
		u.changed = nil
	}
}

// watch waits for the Running instance to end and restarts it, until the
// supervisor stops (nil) or gives up (its *GaveUpError, which fails it).
func (u *supervisor[S]) watch(ctx context.Context) error {
	for {
		u.mu.Lock()
		inst, since, under := u.inst, u.since, u.under
		u.mu.Unlock()
		select {
		case <-inst.Done():
		case <-ctx.Done():
			return nil // the stop releases the instance
		}
		if ctx.Err() != nil {
			return nil
		}
		failedAt := time.Now()
		cause := inst.Err()
		if cause == nil {
			cause = fmt.Errorf("%s stopped", inst.Name())
		}
		u.mu.Lock()
		u.running = false
		u.changeLocked()
		u.mu.Unlock()
		// What the supervisor acts on is the failure. The stop errors of a
		// *Base are logged by it; those of another type are logged here.
		if err := u.host.Release(ctx, inst); err != nil {
			if _, ok := any(inst).(interface{ Dependencies() []core.Dependency }); !ok {
				u.host.Log().ErrorContext(ctx, "stop of the failed instance met errors", "instance", inst.Name(), "error", err)
			}
		}
		if failedAt.Sub(since) >= u.r.cfg.sv.healthyAfter {
			u.policy.Reset() // it was healthy long enough: a new streak
			u.mu.Lock()
			u.streak = 0
			u.mu.Unlock()
		}
		if err := u.restart(ctx, inst.Name(), cause, failedAt, under); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// restart runs restarts until one succeeds (nil), the supervisor stops
// (nil) or gives up (its *GaveUpError). failed names the instance that
// failed with cause at failedAt, started under the span under.
func (u *supervisor[S]) restart(ctx context.Context, failed string, cause error, failedAt time.Time, under trace.SpanContext) error {
	for {
		u.mu.Lock()
		u.streak++
		attempt := u.streak
		u.mu.Unlock()
		delay := u.policy.NextBackOff()
		if delay == backoff.Stop {
			return u.giveUp(ctx, attempt-1, cause)
		}
		u.host.Emit(ctx, core.RestartScheduled{Instance: failed, Attempt: attempt, Delay: delay, Err: cause})
		u.host.SetStatus(SupervisorStatus, fmt.Sprintf("restarting (attempt %d in %v)", attempt, roundDelay(delay)), false)
		sctx, span := u.span(ctx, attempt, delay, failed, cause, under)
		if u.timer == nil {
			u.timer = time.NewTimer(delay)
		} else {
			u.timer.Reset(delay)
		}
		select {
		case <-u.timer.C:
		case <-ctx.Done():
			u.timer.Stop()
			span.End()
			return nil
		}
		u.host.SetStatus(SupervisorStatus, fmt.Sprintf("restarting (attempt %d, starting)", attempt), false)
		inst, err := u.build(sctx)
		if err == nil {
			err = u.host.Acquire(sctx, inst.Name(), inst)
		}
		u.count(ctx, err)
		telemetry.End(span, err)
		if err == nil {
			u.mu.Lock()
			u.restarts++
			u.mu.Unlock()
			u.setRunning(inst, span.SpanContext())
			u.host.Emit(ctx, core.Restarted{Instance: inst.Name(), Attempt: attempt, Downtime: time.Since(failedAt)})
			return nil
		}
		if ctx.Err() != nil {
			if errors.Is(err, core.ErrLeftRunning) {
				// A start the stop could not wait for: in its result (not
				// as a cancellation, which a stop drops).
				return fmt.Errorf("%s: restart %d: the start of %s %w when the supervisor stopped (it is stopped once it returns)",
					u.name, attempt, inst.Name(), core.ErrLeftRunning)
			}
			return nil // cut short by the stop
		}
		cause = err
		if !values.IsNil(inst) {
			failed = inst.Name()
		} else {
			failed = ""
		}
		if perm := (*backoff.PermanentError)(nil); errors.As(err, &perm) {
			return u.giveUp(ctx, attempt, perm.Err)
		}
		if errors.Is(err, core.ErrInvalidOption) {
			return u.giveUp(ctx, attempt, err) // bad input is not transient
		}
		under = span.SpanContext()
	}
}

// giveUp raises RestartGaveUp and returns the supervisor's failure.
func (u *supervisor[S]) giveUp(ctx context.Context, attempts int, cause error) error {
	u.host.Emit(ctx, core.RestartGaveUp{Attempts: attempts, Err: cause})
	u.host.SetStatus(SupervisorStatus, fmt.Sprintf("gave up after %d restarts", attempts), false)
	return &GaveUpError{Requirement: u.name, Attempts: attempts, Err: cause}
}

// span starts the span of one restart: a new trace, linked to the span the
// failed instance was started under, which records the failure.
func (u *supervisor[S]) span(ctx context.Context, attempt int, delay time.Duration, failed string, cause error, under trace.SpanContext) (context.Context, trace.Span) {
	if !u.spansOn.On() {
		return ctx, trace.SpanFromContext(context.Background())
	}
	ctx, span := u.host.Tracer().Start(ctx, telemetry.SpanName(telemetry.SpanRestart, u.name),
		trace.WithNewRoot(), trace.WithLinks(trace.Link{SpanContext: under}),
		trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithAttributes(telemetry.AttrService.String(u.name), telemetry.AttrAttempt.Int(attempt),
			telemetry.AttrNextDelay.Float64(delay.Seconds())))
	span.AddEvent("failure", trace.WithAttributes(attribute.String("coreservice.instance", failed),
		semconv.ErrorTypeKey.String(telemetry.ErrorType(cause)), attribute.String("exception.message", cause.Error())))
	return ctx, span
}

// count adds one restart to the counter, with error.type when it failed.
func (u *supervisor[S]) count(ctx context.Context, err error) {
	if u.counter == nil || !u.counters.On() {
		return
	}
	attrs := []attribute.KeyValue{telemetry.AttrService.String(u.name)}
	if err != nil {
		attrs = append(attrs, semconv.ErrorTypeKey.String(telemetry.ErrorType(err)))
	}
	u.counter.Add(ctx, 1, metric.WithAttributes(attrs...))
}

// roundDelay rounds a delay for a status text: to the millisecond, or to
// the microsecond below one.
func roundDelay(d time.Duration) time.Duration {
	if d >= time.Millisecond {
		return d.Round(time.Millisecond)
	}
	return d.Round(time.Microsecond)
}
