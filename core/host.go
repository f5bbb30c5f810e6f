package core

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// Unit is work a service hosts, such as a task (package task). Register one
// with Config.AddUnit. Start launches the units in the order they were
// registered, after the OnStart hooks.
type Unit interface {
	// Name names the unit in errors, such as "task fetch". It must be
	// non-empty and unique among the service's units.
	Name() string
	// Launch is called once per start with Start's context. It validates
	// the unit's settings (those it can check before anything starts
	// belong in UnitValidator's Validate) and calls h.Go for every goroutine the unit
	// needs. It must not block but for the unit's own start, such as a
	// first service it acquires (h.Acquire), bounded by ctx: work that runs
	// while the service does belongs in h.Go. An error aborts and rolls
	// back the start.
	Launch(ctx context.Context, h *Host) error
}

// UnitValidator is a Unit with settings that can be checked only at Start:
// settings changed after NewService applied the unit's option, or checked
// by calling user code (package task calls its policy factories here).
// Start calls Validate on every unit that implements it before it starts
// anything (requirements, OnStart hooks, units), in the order the units were
// registered; an error or a panic fails the start as an invalid option
// does: with a *StartupError matching ErrInvalidOption that names the unit.
// Validate is called once per Start, and must not block.
type UnitValidator interface {
	Unit
	// Validate reports the unit's invalid settings, or nil.
	Validate() error
}

// validateUnits reports units with an empty or repeated name (their
// errors, spans and stop timeouts could not be told apart) and what the
// units that are UnitValidators report.
func (b *Base) validateUnits() error {
	var errs []error
	seen := make(map[string]bool, len(b.cfg.units))
	for _, u := range b.cfg.units {
		switch name := u.Name(); {
		case name == "":
			errs = append(errs, errors.New("unit with an empty name"))
		case seen[name]:
			errs = append(errs, fmt.Errorf("two units named %q", name))
		default:
			seen[name] = true
		}
		if v, ok := u.(UnitValidator); ok {
			if err := validateUnit(v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", u.Name(), err))
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrInvalidOption, errors.Join(errs...))
	}
	return nil
}

// validateUnit calls v.Validate, turning a panic into a *PanicError.
func validateUnit(v UnitValidator) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &PanicError{Value: r, Stack: debug.Stack()}
		}
	}()
	return v.Validate()
}

// Host is a started service as its units see it: its name, logger and
// telemetry, and the goroutines it owns. Its methods are safe for
// concurrent use.
type Host struct {
	b *Base
}

// Name returns the service's name.
func (h *Host) Name() string { return h.b.name }

// Log returns the service's logger (with service=<name>): its Logger's,
// or the one it inherited from the parent that started it, or
// slog.Default()'s (see Logger).
func (h *Host) Log() *slog.Logger { return h.b.logger() }

// Tracer returns the service's tracer, with the module path as
// instrumentation scope: from its TracerProvider, or the one it inherited
// from the parent that started it, or from the global provider (see
// TracerProvider).
func (h *Host) Tracer() trace.Tracer { return h.b.tracer }

// Meter returns the service's meter, with the module path as
// instrumentation scope: from its MeterProvider, or the one it inherited
// from the parent that started it, or from the global provider (see
// MeterProvider).
func (h *Host) Meter() metric.Meter { return h.b.meter }

// StopTimeout returns the service's StopTimeout: how long its stop waits
// for the goroutines started with Go, from the moment it cancels their
// context. A unit that drains work when the service stops (package serve
// drains a server's requests) bounds the drain with it, so that the drain
// ends, and reports what it left, before the stop gives up on the unit.
func (h *Host) StopTimeout() time.Duration { return h.b.cfg.stopTimeout }

// StartSpanContext returns the span context of the service's current
// "start <name>" span, for spans that link to it.
func (h *Host) StartSpanContext() trace.SpanContext {
	h.b.mu.Lock()
	defer h.b.mu.Unlock()
	return h.b.startSpan
}

// Go runs fn in a goroutine the service owns. fn's context is the service's
// lifetime context, cancelled when the service begins to stop; Stop waits
// for fn to return, for at most StopTimeout, and names it (by name) in a
// *StopTimeoutError if it does not.
//
// If fn returns a non-nil error, or panics (the panic is recovered into a
// *PanicError), the service fails with that error at once. An error that
// matches context.Canceled, returned while the service stops, is not a
// failure. Returning nil ends fn quietly: the service keeps running.
//
// Go called once the service has begun to stop does not run fn.
func (h *Host) Go(name string, fn func(ctx context.Context) error) {
	h.b.workers.start(h.b, name, fn)
}

// Fail makes the service fail with err, as a unit returning err from a Go
// function does. It does not wait for the stop.
func (h *Host) Fail(err error) {
	if err == nil {
		err = errors.New("Host.Fail called with a nil error")
	}
	h.b.fail(err)
}

// Stop begins the service's stop and returns at once, without waiting for
// it: for a unit whose work is done and that ends the service ("job done").
// It is Base.Stop without the wait: the stop sequence runs as after any
// Stop (it cancels the units' context and waits for their goroutines, the
// caller's included, so they must return), the service ends Terminated
// unless a failure comes first, and Stop's callers get its result. Called
// while the service starts, it aborts the start, which rolls back; once the
// service is stopping or stopped, it does nothing. Like Base.Stop, it stops
// a shared service even while other parents hold it; they then fail.
//
// Base.Stop called with the context of one of the service's units or
// hooks also returns at once, for the same reason; Host.Stop is the explicit
// form, which needs no such context.
func (h *Host) Stop() {
	b := h.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state == StateNew {
		return // not started: Stop is a no-op, as Base.Stop is
	}
	b.stopLocked(withStopReason(context.Background(), "Host.Stop"))
}

// Emit raises an event of one of the service's units: TaskRunFailed and
// TaskRetryScheduled (package task raises them), RestartScheduled,
// Restarted and RestartGaveUp (deps.Supervise), LeadershipWon and
// LeadershipLost (package leader). Its Service field is set to
// the service's name. The event is logged by the service's logger, with
// ctx, so that the record carries ctx's span, and queued for the OnEvent
// hooks in order with the service's other events; Emit does not wait for
// the hooks. The other kinds are raised by the service itself: Emit drops
// them, and a nil event, and logs an error naming the kind.
func (h *Host) Emit(ctx context.Context, e Event) {
	if ctx == nil {
		ctx = context.Background()
	}
	switch e.(type) { // these types exactly: not a pointer to one, nor a type embedding one
	case TaskRunFailed, TaskRetryScheduled, RestartScheduled, Restarted, RestartGaveUp, LeadershipWon, LeadershipLost:
		e = e.(unitEvent).withService(h.b.name)
	case nil:
		h.b.logger().ErrorContext(ctx, "Host.Emit: nil event: dropped")
		return
	default:
		h.b.logger().ErrorContext(ctx, fmt.Sprintf("Host.Emit: %T is raised by the service, not by its units: dropped", e))
		return
	}
	emit(h.b, ctx, e)
}

// unitEvent is an event that a unit raises with Host.Emit, which sets its
// Service field.
type unitEvent interface {
	Event
	withService(name string) Event
}

func (e TaskRunFailed) withService(n string) Event      { e.Service = n; return e }
func (e TaskRetryScheduled) withService(n string) Event { e.Service = n; return e }
func (e RestartScheduled) withService(n string) Event   { e.Service = n; return e }
func (e Restarted) withService(n string) Event          { e.Service = n; return e }
func (e RestartGaveUp) withService(n string) Event      { e.Service = n; return e }
func (e LeadershipWon) withService(n string) Event      { e.Service = n; return e }
func (e LeadershipLost) withService(n string) Event     { e.Service = n; return e }

// workerSet is the goroutines a service owns: launched by units, and the
// monitor's ticks while one runs, waited for by the stop sequence. It counts
// them under its lock rather than in a WaitGroup, so that the stop waits on
// a channel closed by the last one to end, with no goroutine of its own.
type workerSet struct {
	mu     sync.Mutex
	ctx    context.Context // the service's lifetime; nil until open
	closed bool
	next   int
	// running is what runs now, named for a StopTimeoutError, in the order
	// it began: ids only grow, so it is sorted by id. An entry that ended
	// is marked (its name cleared) and dropped once ended ones are the
	// majority, so that enter and exit take constant time on average.
	running []workerEntry
	live    int           // entries of running not ended
	idle    chan struct{} // closed when live drops to 0; nil while nobody waits
	timer   *time.Timer   // the monitor's next tick, if it has one; stopped by close
	// closers are called by close: they end the contexts of check runs
	// (Healthcheck calls, monitor ticks), which are not derived from the
	// service's lifetime context so that they leave nothing behind in it.
	closers  []closer
	closerID int
}

// closer is a function close calls, by id.
type closer struct {
	id int
	fn func()
}

// workerEntry is one goroutine of a workerSet.
type workerEntry struct {
	id    int
	name  string
	ended bool
}

// unitKey marks the contexts of a service's own goroutines with the
// service, so that Stop knows not to wait for its caller.
type unitKey struct{}

// open sets the context the goroutines of b get. Its Done channel is made
// here, by the start, rather than by the first goroutine to wait on it,
// whose stack would have to grow for the allocation.
func (w *workerSet) open(ctx context.Context, b *Base) {
	ctx.Done()
	w.mu.Lock()
	w.ctx = context.WithValue(ctx, unitKey{}, b)
	w.mu.Unlock()
}

// lifetime returns the context of the service's goroutines, which the
// stop cancels first; nil before the start opened it.
func (w *workerSet) lifetime() context.Context {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ctx
}

// close makes Go a no-op from now on, and disarms the monitor's next
// tick: the service has begun to stop.
func (w *workerSet) close() {
	w.mu.Lock()
	w.closeLocked()
	w.mu.Unlock()
}

// closeLocked is close with w.mu held.
func (w *workerSet) closeLocked() {
	if w.closed {
		return
	}
	w.closed = true
	if w.timer != nil {
		w.timer.Stop()
		w.timer = nil
	}
	for _, c := range w.closers {
		c.fn()
	}
	w.closers = nil
}

// onClose makes close call fn, or calls it now if the set is closed, and
// returns the id that dropCloser takes once fn is no longer needed.
func (w *workerSet) onClose(fn func()) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		fn()
		return -1
	}
	w.closerID++
	w.closers = append(w.closers, closer{id: w.closerID, fn: fn})
	return w.closerID
}

// dropCloser forgets the function onClose numbered id.
func (w *workerSet) dropCloser(id int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i, c := range w.closers {
		if c.id == id {
			w.closers = slices.Delete(w.closers, i, i+1)
			return
		}
	}
}

// isClosed reports whether the service has begun to stop.
func (w *workerSet) isClosed() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.closed
}

// enter records work named name as running and returns its id and the
// service's lifetime context, unless the set is closed (or not open yet):
// then ok is false and the work must not run.
func (w *workerSet) enter(name string) (id int, ctx context.Context, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed || w.ctx == nil {
		return 0, nil, false
	}
	id = w.next
	w.next++
	w.running = append(w.running, workerEntry{id: id, name: name})
	w.live++
	return id, w.ctx, true
}

// exit records that the work enter numbered id has ended, and wakes the
// stop waiting for the set once nothing runs.
func (w *workerSet) exit(id int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	i, _ := slices.BinarySearchFunc(w.running, id, func(e workerEntry, id int) int { return e.id - id })
	w.running[i] = workerEntry{id: id, ended: true}
	w.live--
	switch {
	case w.live == 0:
		w.running = w.running[:0]
	case 2*w.live < len(w.running):
		w.running = slices.DeleteFunc(w.running, func(e workerEntry) bool { return e.ended })
	}
	if w.live == 0 && w.idle != nil {
		close(w.idle)
		w.idle = nil
	}
}

func (w *workerSet) start(b *Base, name string, fn func(context.Context) error) {
	id, ctx, ok := w.enter(name)
	if !ok {
		return
	}
	go w.run(b, id, ctx, name, fn)
}

// run is the goroutine start launches: it calls fn, fails b with fn's error
// or panic (as a *PanicError), and ends the work enter numbered id. A
// context.Canceled error once ctx has ended is no failure. It is one frame
// (recover is in its deferred function), so that a shallow fn runs within
// the goroutine's first stack.
func (w *workerSet) run(b *Base, id int, ctx context.Context, name string, fn func(context.Context) error) {
	defer func() {
		if v := recover(); v != nil {
			failWorker(b, ctx, fmt.Errorf("%s: %w", name, &PanicError{Value: v, Stack: debug.Stack()}))
		}
		w.exit(id)
	}()
	if err := fn(ctx); err != nil {
		failWorker(b, ctx, err)
	}
}

// failWorker fails b with err, the error of one of its goroutines, unless
// err is the cancellation of ctx, which has ended.
func failWorker(b *Base, ctx context.Context, err error) {
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return
	}
	b.fail(err)
}

// callRecover calls fn, turning a panic into a *PanicError.
func callRecover(ctx context.Context, name string, fn func(context.Context) error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("%s: %w", name, &PanicError{Value: v, Stack: debug.Stack()})
		}
	}()
	return fn(ctx)
}

// unitsIdle reports whether the stop has nothing left to wait for before
// its OnStop hooks: no goroutine of the service and no Healthcheck call
// begun while Running is under way. Once the stop has begun, neither can
// begin again, so the answer stays true.
func (b *Base) unitsIdle() bool {
	w := &b.workers
	w.mu.Lock()
	idle := w.closed && w.live == 0
	w.mu.Unlock()
	if !idle {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.checking == 0
}

// wait closes the set to new goroutines and waits for the running ones
// until ctx ends or bound expires; then it names those still running.
func (w *workerSet) wait(ctx context.Context, bound *stopBound, service string, timeout time.Duration) error {
	w.mu.Lock()
	w.closeLocked()
	if w.live == 0 {
		w.mu.Unlock()
		return nil
	}
	if w.idle == nil {
		w.idle = make(chan struct{})
	}
	idle := w.idle
	w.mu.Unlock()
	if !bound.expired {
		select {
		case <-idle:
			return nil
		case <-bound.expire():
			bound.expired = true
		case <-ctx.Done():
		}
	}
	return w.stuck(service, timeout)
}

// stuck is the *StopTimeoutError naming the goroutines still running once
// wait gave up, or nil if none is. It is kept out of wait, whose frame is
// on the stack of every stop.
//
//go:noinline
func (w *workerSet) stuck(service string, timeout time.Duration) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.live == 0 {
		return nil
	}
	// Each name once, in the order the first of its goroutines began: a
	// unit may run several goroutines of one name (the calls of a check).
	units := make([]string, 0, w.live)
	named := make(map[string]bool, w.live)
	for _, e := range w.running {
		if !e.ended && !named[e.name] {
			named[e.name] = true
			units = append(units, e.name)
		}
	}
	return &StopTimeoutError{Service: service, Timeout: timeout, Units: units}
}
