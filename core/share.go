package core

// Sharing: a parent starts a required *Base or joins the parents already
// holding it, and releases it, stopping it when the last holder lets go.

import (
	"context"
	"fmt"
	"time"

	"github.com/coreservice/coreservice/internal/inline"
	"github.com/coreservice/coreservice/internal/telemetry"
)

// require starts svc for b, or joins the parents already holding it.
func (b *Base) require(ctx context.Context, svc Service) error {
	if bb, ok := svc.(baser); ok {
		return bb.coreBase().acquire(ctx, b)
	}
	ctx, span := b.span(ctx, telemetry.SpanStart, svc.Name())
	// A Start that returns once b gave up on it (after its context ended)
	// may have started the service for nobody: it is stopped then, bounded
	// by b's StopTimeout, and what that stop returns is logged.
	late := func(err error) {
		if err != nil {
			return
		}
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.cfg.stopTimeout)
		defer cancel()
		err, returned := b.callBounded(sctx, "requirement "+svc.Name()+" Stop", svc.Stop)
		switch {
		case !returned:
			b.logger().Error("the Stop of a requirement started after its start was abandoned did not return",
				"requirement", svc.Name(), "timeout", b.cfg.stopTimeout)
		case err != nil:
			b.logger().Error("the Stop of a requirement started after its start was abandoned failed",
				"requirement", svc.Name(), "error", err)
		}
	}
	err, _ := b.callBoundedLate(ctx, "requirement "+svc.Name()+" Start", svc.Start, late)
	telemetry.End(span, err)
	return err
}

// acquire makes b held by one more parent, starts it if it is New, and
// waits until it is Running. The parent that starts it hands it its logger,
// tracer and meter, where b's options set none (inherit). The start belongs
// to b, not to the parent that happened to come first: it runs in its own
// goroutine, keeps the parent's
// context values (trace, start chain) but not its cancellation, and is
// bounded by b's StartTimeout. A parent that gives up waiting releases b
// in its rollback; when no parent holds b any more, that Stop aborts b's
// start.
//
// The caller, startRequirement, has checked that b is not in ctx's start
// chain.
//
// A start that runs no user code (startsInline) runs on the caller's
// goroutine, which it would only wait for: it ends at once, or, if a unit
// fails during it or Stop aborts it, once its rollback has waited for the
// units, for at most StopTimeout, as the caller's rollback would have.
func (b *Base) acquire(ctx context.Context, parent *Base) error {
	var startCtx context.Context
	b.mu.Lock()
	b.holders++
	if b.state == StateNew {
		b.byParent = true
		b.inherit(parent)
		startCtx = b.begin(context.WithoutCancel(ctx))
	}
	b.mu.Unlock()
	if startCtx != nil {
		// The result is b's state and Err.
		if b.startsInline() {
			_ = b.startup(startCtx)
		} else {
			go func() { _ = b.startup(startCtx) }()
		}
	}
	return b.awaitRunning(ctx)
}

// startsInline reports whether b's start sequence runs no user code: no
// OnStart hook, requirement or check, and only units that say their
// Validate and Launch run none (package inline).
func (b *Base) startsInline() bool {
	c := b.cfg
	if len(c.onStart) > 0 || len(c.requirements) > 0 || len(c.checks) > 0 {
		return false
	}
	for _, u := range c.units {
		if il, ok := u.(inline.Launcher); !ok || !il.LaunchInline(inline.Token{}) || !il.ValidateInline(inline.Token{}) {
			return false
		}
	}
	return true
}

// awaitRunning waits until b's start has finished and reports whether b is
// Running. While it waits, the parent at the end of ctx's start chain is
// recorded as waiting for b, so that two chains waiting for each other are
// a cycle, not a deadlock.
func (b *Base) awaitRunning(ctx context.Context) error {
	b.mu.Lock()
	if !b.settled.isOpen() {
		settled := b.settled.wait()
		b.mu.Unlock()
		if parent := lastInPath(ctx); parent != nil {
			parent.addWait(b, 1)
			defer parent.addWait(b, -1)
			if err := waitCycle(ctx, b); err != nil {
				return err
			}
		}
		select {
		case <-settled:
		case <-b.done:
		case <-ctx.Done():
			return waitEnded(ctx, b.name, b.State())
		}
		b.mu.Lock()
	}
	defer b.mu.Unlock()
	return b.notRunningLocked()
}

// release drops b's hold on svc, a requirement named name (owned: started
// by b, not awaited), and stops svc when no parent holds it any more. It
// returns once svc is stopped, when it is stopping: b's stop never ends while something below b still runs.
//
// For a *Base, dropping the hold and deciding to stop are one step under
// svc's lock (stopLocked), so a parent acquiring svc meanwhile either holds
// it (and svc is not stopped) or sees it stopping. A stopping *Base, whoever
// stopped it, is waited for (its stop is bounded by its own StopTimeout
// steps) and its stop errors are returned, except when its stop waits, in
// turn, for b's (two services rolling back a cycle release each other): then
// neither waits for the other. The Stop of another type of service is
// bounded by b's StopTimeout.
func (b *Base) release(ctx context.Context, name string, owned bool, svc Service) error {
	if bb, ok := svc.(baser); ok {
		child := bb.coreBase()
		wait, launch := b.dropHold(ctx, child, owned)
		if launch {
			go child.stopAsync(ctx)
		}
		if !wait {
			return nil
		}
		return b.awaitRelease(child)
	}
	if !owned {
		return nil
	}
	// A service of another type is bounded by the parent's StopTimeout.
	what := "requirement " + name
	ctx, cancel := context.WithTimeout(ctx, b.cfg.stopTimeout)
	defer cancel()
	err, returned := b.callBounded(ctx, what, svc.Stop)
	if !returned {
		return &StopTimeoutError{Service: b.name, Timeout: b.cfg.stopTimeout, Units: []string{what}}
	}
	return err
}

// dropHold is the first step of release for a *Base child, which does not
// wait: it drops b's hold on child and stops child when no parent holds it
// any more. It reports whether release must wait for child (awaitRelease):
// child is stopping; and whether it began child's stop sequence, which the
// caller must then run (child.stopAsync), on a goroutine of its choice.
func (b *Base) dropHold(ctx context.Context, child *Base, owned bool) (wait, launch bool) {
	child.mu.Lock()
	defer child.mu.Unlock()
	child.dependents.remove(b) // b no longer needs to hear of child's stop
	if !owned {
		return false, false
	}
	child.holders = max(child.holders-1, 0)
	last := child.holders == 0
	if last {
		launch = child.stopHoldsLocked(ctx)
	}
	return last || child.state == StateStopping, launch
}

// awaitRelease is the second step of release for a *Base child that
// dropHold said is stopping: it waits for child's stop (waitStopped) and
// returns its stop errors.
func (b *Base) awaitRelease(child *Base) error {
	if !b.waitStopped(child) {
		return nil
	}
	child.mu.Lock()
	defer child.mu.Unlock()
	return child.stopErr
}

// waitStopped waits for child's Done while b's stop is recorded as waiting
// for it, unless child's stop waits, directly or not, for b's: then it
// returns false at once.
func (b *Base) waitStopped(child *Base) bool {
	b.mu.Lock()
	if b.stopWaits == nil {
		b.stopWaits = make(map[*Base]int)
	}
	b.stopWaits[child]++
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		if b.stopWaits[child]--; b.stopWaits[child] <= 0 {
			delete(b.stopWaits, child)
		}
		b.mu.Unlock()
	}()
	child.mu.Lock()
	alone := len(child.stopWaits) == 0 // its stop waits for nothing, so not for b's
	child.mu.Unlock()
	if !alone && stopWaitsFor(child, b) {
		return false
	}
	<-child.done
	return true
}

// stopWaitsFor reports whether the stop of child waits, directly or not,
// for the stop of b.
func stopWaitsFor(child, b *Base) bool {
	seen := map[*Base]bool{}
	next := []*Base{child}
	for len(next) > 0 {
		n := next[len(next)-1]
		next = next[:len(next)-1]
		if n == b {
			return true
		}
		if seen[n] {
			continue
		}
		seen[n] = true
		n.mu.Lock()
		for m := range n.stopWaits {
			next = append(next, m)
		}
		n.mu.Unlock()
	}
	return false
}

// awaitPoll is how often await looks at the state of a service that is not
// a *Base (which has no channel to wait on).
const awaitPoll = 10 * time.Millisecond

// await waits, bounded by ctx, for a service that someone else starts.
func await(ctx context.Context, svc Service) error {
	if bb, ok := svc.(baser); ok {
		return bb.coreBase().awaitRunning(ctx) // startRequirement checked the chain
	}
	t := time.NewTicker(awaitPoll)
	defer t.Stop()
	for {
		switch st := svc.State(); {
		case st == StateRunning:
			return nil
		case st.final():
			if err := svc.Err(); err != nil {
				return fmt.Errorf("%s is %s: %w", svc.Name(), st, err)
			}
			return fmt.Errorf("%s is %s", svc.Name(), st)
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return waitEnded(ctx, svc.Name(), svc.State())
		}
	}
}
