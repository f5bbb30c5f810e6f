package health

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/internal/inline"
	"github.com/coreservice/coreservice/internal/names"
	"github.com/coreservice/coreservice/internal/telemetry"
)

// ErrStillRunning is the failure of a check run that was not started
// because an earlier run of the same check was cut off at its deadline and
// its function has not returned yet. The check keeps failing with it, at
// once, until that function returns.
var ErrStillRunning = errors.New("earlier run still running past its deadline")

// Check returns a health check named name that calls fn: a core.Option, so
// it is passed to core.NewService with the service's other options.
//
//	svc := core.NewService(core.Name("api"),
//		health.Check("db", db.PingContext, health.Timeout(time.Second), health.Threshold(3)))
//
// fn reports the check's health: nil when healthy. It is called with a
// context that carries the run's deadline (see Timeout) and the span
// "check <name>" (see the package documentation). The service calls it once
// during Start, where a failure fails the start (unless the check is in its
// StartupGrace); on every monitor tick,
// where Threshold consecutive failures fail the service; and on every
// Healthcheck. Each run's result is recorded for Handler, Ready and
// WaitReady.
//
// fn may be called concurrently, by the monitor and by Healthcheck callers,
// and must be safe for that. A run that does not return by its deadline
// fails; fn keeps running in its goroutine, and until it returns the check
// fails at once with ErrStillRunning instead of calling fn again, so that
// calls of an fn that ignores its context never pile up. A panic in fn is
// recovered and fails the run with a *core.PanicError.
//
// The name identifies the check in errors, logs, spans and probe paths; it
// must be non-empty and unique among the service's checks, and a path
// segment: no '/' (api/b/c would be ambiguous) and no character that is
// not graphic, such as a newline (it would forge lines of the probes'
// text). An invalid name, a nil fn, a duplicate name or an invalid option
// is reported by Start as an error matching core.ErrInvalidOption, naming
// the check.
func Check(name string, fn func(ctx context.Context) error, opts ...Option) *CheckSpec {
	return &CheckSpec{name: name, fn: fn, opts: slices.Clone(opts)}
}

// CheckSpec is a health check as Check describes it: a name, a function
// and options. It is a core.Option: each service it is given to registers a
// check of its own, with its own recorded results, so the same CheckSpec
// can be given to several services. Build it with Check; the zero
// CheckSpec is reported as invalid by Start. Check returns a pointer, so
// options compare by identity.
type CheckSpec struct {
	name string
	fn   func(context.Context) error
	opts []Option
}

// Name returns the check's name.
func (s CheckSpec) Name() string { return s.name }

// ApplyTo registers the check with the service being built, or records why
// it is invalid. It implements core.Option and is called by
// core.NewService.
func (s CheckSpec) ApplyTo(c *core.Config) {
	cfg := newConfig(s.opts)
	var errs []error
	if s.name == "" {
		errs = append(errs, errors.New("empty name"))
	} else if err := names.Check(s.name); err != nil {
		errs = append(errs, err)
	}
	if s.fn == nil {
		errs = append(errs, errors.New("nil function"))
	}
	errs = append(errs, cfg.errs...)
	for _, err := range errs {
		c.AddError(fmt.Errorf("health.Check %q: %w", s.name, err))
	}
	if len(errs) > 0 {
		return
	}
	chk := &check{name: s.name, unit: "check " + s.name, fn: s.fn, cfg: cfg}
	c.AddCheck(chk)
	c.AddUnit(waiter{chk})
}

// String returns the call that built s, such as
// `health.Check("db", ..., health.Timeout(1s))`.
func (s CheckSpec) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "health.Check(%q, ...", s.name)
	for _, o := range s.opts {
		if o == nil {
			b.WriteString(", <nil>")
			continue
		}
		b.WriteString(", " + o.String())
	}
	b.WriteString(")")
	return b.String()
}

// check is one service's instance of a CheckSpec: the core.Check the
// service runs, and the record of its results.
type check struct {
	name string
	unit string // "check <name>": its waiter's name, and its calls' in the service
	fn   func(context.Context) error
	cfg  config

	mu     sync.Mutex
	last   result
	host   *core.Host // the service's, once it launched the check's waiter
	cutOff int        // calls of fn cut off at their deadline that have not returned
	// watchers are told (without blocking) of every recorded result.
	watchers map[chan<- struct{}]struct{}
}

// result is the outcome of a check's latest recorded run.
type result struct {
	at       time.Time // when the run ended; zero: never run
	err      error     // nil: passed
	failures int       // failed runs in a row, this one included
}

// call is one call of fn: a single allocation besides done, which its
// waiter selects on with the run's context.
type call struct {
	c   *check
	ctx context.Context

	// Guarded by c.mu.
	returned bool  // fn returned
	cutOff   bool  // the run gave up waiting for fn at its deadline
	err      error // fn's error, once returned

	done chan struct{} // closed once fn returned
}

// Name implements core.Check.
func (c *check) Name() string { return c.name }

// Timeout implements core.Check: the Timeout option, or half interval.
func (c *check) Timeout(interval time.Duration) time.Duration { return c.cfg.timeoutFor(interval) }

// Threshold implements core.Check.
func (c *check) Threshold() int { return c.cfg.threshold }

// StartupGrace implements core.StartupGraceCheck.
func (c *check) StartupGrace() time.Duration { return c.cfg.grace }

// Check implements core.Check: one run of the check under ctx's deadline,
// as a child span "check <name>" of the span in ctx, recorded for the
// probes.
//
// With no span in ctx (the caller traces nothing), the child span could
// record nothing either: no span, name or attribute is built.
func (c *check) Check(ctx context.Context) error {
	parent := trace.SpanFromContext(ctx)
	if !parent.IsRecording() && !parent.SpanContext().IsValid() {
		return c.run(ctx)
	}
	tracer := parent.TracerProvider().Tracer(telemetry.ScopeName)
	ctx, span := tracer.Start(ctx, telemetry.SpanName(telemetry.SpanCheck, c.name),
		trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithAttributes(telemetry.AttrCheck.String(c.name)))
	err := c.run(ctx)
	telemetry.End(span, err)
	return err
}

// run runs the check once and records the result, unless the caller
// ended ctx (cancelled it, or its own deadline came before the check's
// Timeout): such a run says nothing about the check.
func (c *check) run(ctx context.Context) error {
	err := c.invoke(ctx)
	if err != nil && callerEnded(ctx) {
		return err
	}
	c.mu.Lock()
	c.recordLocked(err)
	c.mu.Unlock()
	return err
}

// invoke calls fn in a goroutine of the service (Host.Go, named "check
// <name>": its Stop waits for the call, for at most StopTimeout, and names
// it if it outlasts that) and waits for it until ctx ends. It does not call
// fn when ctx has already ended, or while an earlier call cut off at its
// deadline has not returned. Once the stop has begun, Host.Go runs nothing;
// ctx then ends with the stop, so the call is abandoned, not cut off.
func (c *check) invoke(ctx context.Context) error {
	begin := time.Now()
	if ctx.Err() != nil {
		return fmt.Errorf("not run: %w", context.Cause(ctx))
	}
	c.mu.Lock()
	if c.cutOff > 0 {
		c.mu.Unlock()
		return ErrStillRunning
	}
	h := c.host
	c.mu.Unlock()

	cl := &call{c: c, ctx: ctx, done: make(chan struct{})}
	if h != nil {
		h.Go(c.unit, cl.run)
	} else {
		go cl.run(ctx) // a Check called before its service launched it
	}
	select {
	case <-cl.done:
		return cl.err // written before done was closed
	case <-ctx.Done():
	}
	c.mu.Lock()
	if cl.returned { // just now
		err := cl.err
		c.mu.Unlock()
		return err
	}
	if callerEnded(ctx) {
		// Not the check's fault: its call goes on, and later runs may
		// overlap it, but it is not cut off.
		c.mu.Unlock()
		return fmt.Errorf("abandoned after %v: %w", time.Since(begin).Round(time.Microsecond), context.Cause(ctx))
	}
	cl.cutOff = true
	c.cutOff++
	c.mu.Unlock()
	return fmt.Errorf("cut off after %v: %w", time.Since(begin).Round(time.Microsecond), context.Cause(ctx))
}

// callerEnded reports whether ctx ended for a reason other than the
// check's own Timeout (core.ErrCheckTimeout): its caller cancelled it, or
// the caller's own deadline came first.
func callerEnded(ctx context.Context) bool {
	return ctx.Err() != nil && !errors.Is(context.Cause(ctx), core.ErrCheckTimeout)
}

// run runs fn with the run's context (not the goroutine's: Host.Go's
// argument is the service's lifetime context), turning a panic into a
// *core.PanicError, and hands its error to the waiter. It returns nil: fn's
// error is the run's result, not a failure of the service's goroutine.
func (cl *call) run(context.Context) error {
	c := cl.c
	err := callRecover(cl.ctx, c.fn)
	c.mu.Lock()
	cl.returned = true
	cl.err = err
	if cl.cutOff {
		c.cutOff--
	}
	c.mu.Unlock()
	close(cl.done)
	return nil
}

func callRecover(ctx context.Context, fn func(context.Context) error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &core.PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	return fn(ctx)
}

// recordLocked records the result of a run that has just ended. c.mu is
// held.
func (c *check) recordLocked(err error) {
	c.last.at = time.Now()
	c.last.err = err
	if err != nil {
		c.last.failures++
	} else {
		c.last.failures = 0
	}
	for w := range c.watchers {
		select {
		case w <- struct{}{}:
		default: // a wake-up is already pending
		}
	}
}

// watch makes every recorded result send to w, without blocking, until
// unwatch.
func (c *check) watch(w chan<- struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.watchers == nil {
		c.watchers = make(map[chan<- struct{}]struct{})
	}
	c.watchers[w] = struct{}{}
}

// unwatch undoes watch.
func (c *check) unwatch(w chan<- struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.watchers, w)
}

// lastResult returns the latest recorded result.
func (c *check) lastResult() result {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}

// waiter is the core.Unit that makes the service own the calls of a
// check's fn: Launch gives the check the service's Host, whose goroutines
// the calls run in (invoke), so that its Stop waits for calls still under
// way (a call cut off at its deadline included) before the OnStop hooks
// run, for at most StopTimeout, and names the check in its
// *core.StopTimeoutError if they do not return by then. Between calls it
// runs nothing.
type waiter struct{ c *check }

// Name implements core.Unit.
func (w waiter) Name() string { return w.c.unit }

// Launch implements core.Unit.
func (w waiter) Launch(_ context.Context, h *core.Host) error {
	w.c.mu.Lock()
	w.c.host = h
	w.c.mu.Unlock()
	return nil
}

// LaunchInline implements inline.Launcher: Launch runs no user code.
func (w waiter) LaunchInline(inline.Token) bool { return true }

// ValidateInline implements inline.Launcher: there is no Validate.
func (w waiter) ValidateInline(inline.Token) bool { return true }
