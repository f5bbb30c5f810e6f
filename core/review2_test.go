package core_test

// Tests from a second adversarial review (shared starts, waits-for cycles,
// Healthcheck tracking, lateErrs, own-unit Stop, Run). Tests without a
// "coverage:" mark fail because of the bug they describe.

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/coreservice/coreservice/core"
)

// slowNode is a service whose start takes d (fake time) and records it.
func slowNode(name string, rec *recorder, d time.Duration, opts ...core.Option) *core.Base {
	return node(name, rec, append([]core.Option{core.OnStart(func(ctx context.Context) error {
		select {
		case <-time.After(d):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})}, opts...)...)
}

// Regression: Stop called by a unit of a requirement s on its parent p, with the
// unit's context, makes p reach Terminated while s is still stopping, and
// s's stop errors are lost. The unit's context marks it as s's (unitKey);
// p.Stop passes that context on to p's stop sequence (service.go Stop ->
// stopAsync -> shutdown -> releaseRequirements -> release), so release's
// s.Stop(ctx) mistakes p's stop for a call from one of s's own units and
// returns nil at once (service.go:401, `ctx.Value(unitKey{}) == b`).
// Violates DESIGN core/Stop: "stop owned requirements in reverse dependency
// order ... → Terminated" and "Errors met while stopping are joined,
// returned, and logged: never swallowed"; Base.Done: "closed ... after its
// whole stop sequence has finished".
func TestR2ChildUnitStopsParent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		flush := errors.New("s: flush failed")
		var p *core.Base
		s := core.NewService(core.Name("s"), core.Logger(quiet), core.MonitorInterval(time.Hour),
			core.OnStop(func(context.Context) error {
				<-time.After(time.Second) // s's stop takes 1s and fails
				return flush
			}),
			&unit{name: "job", fn: func(ctx context.Context) error {
				<-time.After(time.Second) // the job is finished: shut the application down
				_ = p.Stop(ctx)
				return nil
			}})
		p = node("p", rec, requires(s))
		mustStart(t, p)
		<-p.Done()
		if st := s.State(); st != core.StateTerminated && st != core.StateFailed {
			t.Errorf("p is %v while its requirement s is still %v", p.State(), st)
		}
		if err := p.Stop(context.Background()); !errors.Is(err, flush) {
			t.Errorf("p's Stop: got %v, want s's stop error %q", err, flush)
		}
		<-s.Done()
	})
}

// Regression: a unit failure met while the service is Starting, after another one
// already aborted the start, is dropped: fail() (service.go:428, `if b.cause
// == nil`) keeps the first cause and neither records nor logs the second.
// The same two failures while Running are both reported (the second through
// lateErrs, returned by Stop and logged). Violates DESIGN core/Stop: "Errors
// met while stopping are joined (errors.Join), returned, and logged: never
// swallowed."
func TestR2SecondFailureDuringStartIsKept(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		errA, errB := errors.New("worker a: db unreachable"), errors.New("worker b: queue unreachable")
		var logs bytes.Buffer
		var host *core.Host
		aDone, bDone, bLaunched := make(chan struct{}), make(chan struct{}), make(chan struct{})
		s := core.NewService(core.Name("s"), core.Logger(slog.New(slog.NewTextHandler(&logs, nil))),
			core.MonitorInterval(time.Hour), &hostGrabber{h: &host},
			&unit{name: "a", fn: func(context.Context) error {
				<-bLaunched // both units run before the first failure
				host.Fail(errA)
				close(aDone)
				return nil
			}},
			&unit{name: "b", fn: func(context.Context) error {
				close(bLaunched)
				<-aDone
				host.Fail(errB)
				close(bDone)
				return nil
			}},
			&check{name: "ready", fn: func(context.Context) error {
				<-bDone // the start is still under way when both workers fail
				return nil
			}})
		startErr := s.Start(context.Background())
		if !errors.Is(startErr, errA) {
			t.Fatalf("Start: got %v, want the first failure %v", startErr, errA)
		}
		stopErr := s.Stop(context.Background())
		if !errors.Is(startErr, errB) && !errors.Is(stopErr, errB) && !strings.Contains(logs.String(), errB.Error()) {
			t.Errorf("the second failure was swallowed: Start %v, Stop %v, logs:\n%s", startErr, stopErr, logs.String())
		}
	})
}

// Regression: a Healthcheck still running when the service stops holds the stop
// for the whole StopTimeout without it being reported, and the OnStop hooks
// then get an already expired context. shutdown waits for b.checking with
// hookCtx (service.go:478, waitGroup(hookCtx, &b.checking)) and reuses that
// same, now ended, hookCtx for the hooks; the checks run under the caller's
// context, which the stop does not cancel. A worker stuck the same way is
// named in a *StopTimeoutError. Violates DESIGN core/Stop: "Workers still
// running at StopTimeout are named in a *StopTimeoutError" / "Errors met
// while stopping are ... returned ... never swallowed".
func TestR2StuckHealthcheckDuringStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var hookErr error
		var slow atomic.Bool // the check passes at start, then hangs until its caller gives up
		s := core.NewService(core.Name("s"), core.Logger(quiet), core.MonitorInterval(time.Hour),
			core.StopTimeout(time.Second),
			&check{name: "slow", timeout: func(time.Duration) time.Duration { return time.Hour },
				fn: func(ctx context.Context) error {
					if slow.Load() {
						<-ctx.Done()
					}
					return ctx.Err()
				}},
			core.OnStop(func(ctx context.Context) error { hookErr = ctx.Err(); return nil }))
		mustStart(t, s)
		slow.Store(true)
		probe, cancelProbe := context.WithCancel(context.Background()) // e.g. a readiness probe
		defer cancelProbe()
		go func() { _ = s.Healthcheck(probe) }()
		synctest.Wait() // the Healthcheck is under way
		err := s.Stop(context.Background())
		if hookErr != nil && !errors.Is(err, core.ErrStopTimeout) {
			t.Errorf("Stop: got %v, and the OnStop hook ran with an ended context (%v): "+
				"the stuck Healthcheck used up StopTimeout without being reported", err, hookErr)
		}
	})
}

// coverage: a diamond is not a cycle. p starts x and y concurrently; both
// require the slow service s (not statically known, so the waits-for check
// runs): y waits for s's start begun by x. s starts once, stops after both.
func TestR2DiamondIsNotACycle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		var s *core.Base
		t2 := slowNode("t", rec, time.Second)
		s = slowNode("s", rec, time.Second, requires(t2))
		x := node("x", rec, late(&s))
		y := node("y", rec, late(&s))
		p := node("p", rec, requires(x), requires(y))
		begin := time.Now()
		mustStart(t, p)
		if d := time.Since(begin); d != 2*time.Second {
			t.Fatalf("start took %v, want 2s", d)
		}
		mustStop(t, p)
		got := rec.get()
		if n := strings.Count(strings.Join(got, ","), "s start"); n != 1 {
			t.Fatalf("s started %d times: %q", n, got)
		}
		if got[len(got)-2] != "s stop" || got[len(got)-1] != "t stop" {
			t.Fatalf("s and t must stop last: %q", got)
		}
	})
}

// coverage: unrelated roots sharing a slow service (through a chain) are not
// a cycle, and when one root's start fails and releases its hold, the
// shared service keeps running for the other (holders).
func TestR2UnrelatedParentsShareAStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		s := slowNode("s", rec, 2*time.Second)
		a := node("a", rec, late(&s))
		r1 := node("r1", rec, requires(a), &req{name: "broken", resolve: func(context.Context) (core.Service, error) {
			<-time.After(3 * time.Second)
			return nil, errors.New("broken")
		}})
		r2 := node("r2", rec, late(&s))
		var wg sync.WaitGroup
		var err1, err2 error
		wg.Go(func() { err1 = r1.Start(context.Background()) })
		synctest.Wait() // r1 -> a -> s: s is starting
		wg.Go(func() { err2 = r2.Start(context.Background()) })
		wg.Wait()
		if err1 == nil || errors.Is(err1, core.ErrCycle) {
			t.Fatalf("r1: got %v, want its broken requirement", err1)
		}
		if err2 != nil {
			t.Fatalf("r2: %v", err2)
		}
		if s.State() != core.StateRunning || a.State() != core.StateTerminated {
			t.Fatalf("s %v (want running, r2 holds it), a %v (want terminated)", s.State(), a.State())
		}
		mustStop(t, r2)
		if s.State() != core.StateTerminated {
			t.Fatalf("s %v after its last holder stopped", s.State())
		}
	})
}

// Regression (deadlock): two services whose starts form a cycle, each started by its
// own root, hold each other after the cycle is found, then stop each other
// from their rollbacks and wait forever. Each one's acquire counted a hold on
// the other (require.go:280, b.holders++). The roots, woken as soon as their
// child's start failed (settled is closed before the rollback,
// service.go:266), release their holds first. Then a's rollback drops b's
// last hold and calls b.Stop, which waits for b's Done, while b's rollback
// does the same with a (require.go:336, svc.Stop under the uncancellable
// rollback context of service.go:272). The log gates only fix that
// interleaving; without them it deadlocks in about 1 run in 4. Violates DESIGN
// deps: "Cycles are an ErrCycle" and core/Stop (the stop sequence ends,
// bounded by StopTimeout). The bubble panics with "deadlock", so this test
// is the last of the file.
func TestR2CycleRollbackDeadlock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		ga, gb := requires(slowNode("ga", rec, time.Second)), requires(slowNode("gb", rec, time.Second))
		gateA, gateB := newGate("service stopping"), newGate("service stopping")
		var a, b *core.Base
		a = core.NewService(core.Name("a"), core.Logger(slog.New(gateA)), core.MonitorInterval(time.Hour),
			ga, &req{name: "b", after: []core.Requirement{ga}, resolve: func(context.Context) (core.Service, error) { return b, nil }})
		b = core.NewService(core.Name("b"), core.Logger(slog.New(gateB)), core.MonitorInterval(time.Hour),
			gb, &req{name: "a", after: []core.Requirement{gb}, resolve: func(context.Context) (core.Service, error) { return a, nil }})
		r1, r2 := node("r1", rec, requires(a)), node("r2", rec, requires(b))
		var wg sync.WaitGroup
		var err1, err2 error
		wg.Go(func() { err1 = r1.Start(context.Background()) })
		wg.Go(func() { err2 = r2.Start(context.Background()) })
		// Both roots failed and released their holds; they wait for a and b
		// (a root's rollback ends only once its requirements have stopped),
		// which are about to roll back, releasing each other.
		<-gateA.hit
		<-gateB.hit
		synctest.Wait()
		close(gateA.gate)
		close(gateB.gate)
		select {
		case <-a.Done():
			<-b.Done()
		case <-time.After(time.Hour):
			t.Errorf("a (%v) and b (%v) never finish their rollbacks: each waits in Stop for the other", a.State(), b.State())
		}
		wg.Wait()
		if !errors.Is(err1, core.ErrCycle) || !errors.Is(err2, core.ErrCycle) {
			t.Fatalf("roots: got %v and %v, want ErrCycle", err1, err2)
		}
	})
}
