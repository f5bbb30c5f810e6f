package core

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/coreservice/coreservice/internal/inline"
)

// AbandonGrace is how long the service still waits for user code (a hook,
// a lazy builder, a foreign requirement's Start or Stop) once the context it
// was called with has ended, before it abandons the call and reports it as
// left running: the moment a function that honours its context needs to
// return. So Start returns within StartTimeout + AbandonGrace (plus the
// rollback), and each step of a stop within StopTimeout + AbandonGrace.
const AbandonGrace = 100 * time.Millisecond

// callBounded calls fn(ctx) in a goroutine of its own and waits until fn
// returns or ctx ends (and AbandonGrace passed), whichever is first; a panic in fn is a *PanicError.
// It is how the service calls user code that could ignore its context (hooks,
// lazy builders, services that are not a *Base), so that no Start or Stop
// waits longer than its timeout.
//
// If ctx ends first, fn is abandoned: a goroutine stuck in user code cannot
// be stopped, so, as http.Server.Shutdown does with its handlers, the
// service stops waiting, callBounded reports false with an error wrapping
// ctx's cause (the caller names what in its own error), and fn finishes in the background; its result, whenever it
// comes, is logged.
func (b *Base) callBounded(ctx context.Context, what string, fn func(context.Context) error) (err error, returned bool) {
	return b.callBoundedLate(ctx, what, fn, nil)
}

// callBoundedLate is callBounded, which also calls late, if not nil, with
// fn's error in fn's goroutine when fn returns after it was abandoned: to
// undo what it did for a caller that gave up (the Start of a requirement
// of another type is followed by its Stop).
func (b *Base) callBoundedLate(ctx context.Context, what string, fn func(context.Context) error, late func(error)) (err error, returned bool) {
	c := &boundedCall{done: make(chan struct{})}
	begin := time.Now()
	go func() {
		err := protect(func() error { return fn(ctx) })
		c.mu.Lock()
		abandoned := c.abandoned
		if !abandoned {
			c.err = err
			close(c.done)
		}
		c.mu.Unlock()
		if abandoned {
			b.logger().Warn("abandoned call returned", "call", what,
				"after", time.Since(begin).Round(time.Millisecond), "error", err)
			if late != nil {
				late(err)
			}
		}
	}()
	select {
	case <-c.done:
		return c.err, true
	case <-ctx.Done():
	}
	// Told to stop, a call that honours its context returns at once: give
	// it that moment, so that its own result is not mistaken for a hang.
	grace := time.NewTimer(AbandonGrace)
	defer grace.Stop()
	select {
	case <-c.done:
		return c.err, true
	case <-grace.C:
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.done: // it returned just now
		return c.err, true
	default:
	}
	c.abandoned = true
	err = fmt.Errorf("%w: %w", ErrLeftRunning, context.Cause(ctx))
	b.mu.Lock()
	if b.state == StateStarting {
		// Left running by the start: its stop names it (see startup).
		b.abandoned = append(b.abandoned, abandonedCall{what: what, err: err})
	}
	b.mu.Unlock()
	return err, false
}

// abandonedCall is user code that a start stopped waiting for.
type abandonedCall struct {
	what string // the part, such as "OnStart hook 2"
	err  error  // what callBounded returned for it
}

// boundedCall is one call of callBounded.
type boundedCall struct {
	mu        sync.Mutex
	abandoned bool          // the caller stopped waiting
	err       error         // fn's result, once done is closed
	done      chan struct{} // closed when fn returned in time
}

// launchUnit calls u.Launch with the start's context: on the caller's
// goroutine when u is one of the module's units and says its Launch runs no
// user code (package inline), else bounded by callBounded. A panic is a
// *PanicError either way.
func (b *Base) launchUnit(ctx context.Context, u Unit) error {
	if il, ok := u.(inline.Launcher); ok && il.LaunchInline(inline.Token{}) {
		return protect(func() error { return u.Launch(ctx, b.host) })
	}
	err, _ := b.callBounded(ctx, u.Name(), func(ctx context.Context) error { return u.Launch(ctx, b.host) })
	return err
}

// resolve calls r.Resolve: on the caller's goroutine when r is one of the
// module's requirements and says its Resolve runs no user code (package
// inline), else bounded by callBounded. A panic is a *PanicError either way.
func (b *Base) resolve(ctx context.Context, name string, r Requirement) (svc Service, err error) {
	if ir, ok := r.(inline.Resolver); ok && ir.ResolveInline(inline.Token{}) {
		err = protect(func() (err error) {
			svc, err = r.Resolve(ctx)
			return err
		})
		return svc, err
	}
	// svc is read only when the call returned in time: an abandoned
	// Resolve writes it for nobody.
	var got Service
	err, returned := b.callBounded(ctx, "requirement "+name+" Resolve", func(ctx context.Context) (err error) {
		got, err = r.Resolve(ctx)
		return err
	})
	if !returned {
		return nil, err
	}
	return got, err
}

// healthcheck calls svc.Healthcheck, the one check of a requirement once it
// is Running: on the caller's goroutine when svc is a *Base (not a type
// embedding one, whose Healthcheck may be its own) with no checks and no
// requirement of another type (whose State it would call), so that its
// Healthcheck runs no user code; else bounded by callBounded.
//
// For a *Base (or a type embedding one) it is the check of its start
// (startCheck): the statuses of its units and the services they hold say
// whether it is ready, not whether it started, so that a parent starts
// while a supervised requirement restarts, and is not ready meanwhile.
func (b *Base) healthcheck(ctx context.Context, name string, svc Service) error {
	if child, ok := svc.(*Base); ok && !child.needsMonitor() {
		return protect(func() error { return child.startCheck(ctx) })
	}
	check := svc.Healthcheck
	if bb, ok := svc.(baser); ok {
		check = bb.coreBase().startCheck
	}
	err, _ := b.callBounded(ctx, "requirement "+name+" Healthcheck", check)
	return err
}

// waitEnded is the error of a wait for the service named name to start,
// ended by ctx while the service was in state st: it says when the service
// was never started (still New), the usual mistake behind an Await on a
// service nobody starts, and wraps ctx's cause.
func waitEnded(ctx context.Context, name string, st State) error {
	if st == StateNew {
		return fmt.Errorf("waiting for %s to start: %s was never started (still new when the wait ended: %w)",
			name, name, context.Cause(ctx))
	}
	return fmt.Errorf("waiting for %s to start: %w", name, context.Cause(ctx))
}

// timeoutExceeded is the cause of a context ended by a timeout option, such
// as "context deadline exceeded: StartTimeout 1s exceeded": it matches
// context.DeadlineExceeded. It is formatted only when read, so a start
// that does not time out builds no message.
type timeoutExceeded struct {
	option string
	d      time.Duration
}

// Error names the option and its value.
func (e *timeoutExceeded) Error() string {
	return fmt.Sprintf("%v: %s %v exceeded", context.DeadlineExceeded, e.option, e.d)
}

// Unwrap returns context.DeadlineExceeded.
func (e *timeoutExceeded) Unwrap() error { return context.DeadlineExceeded }
