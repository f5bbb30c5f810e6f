package leader_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/deps"
	"github.com/coreservice/coreservice/internal/coretest"
	"github.com/coreservice/coreservice/leader"
)

// parentErr starts parent and returns its failure (Start's, or Err once it
// is done).
func parentErr(t *testing.T, parent *core.Base) error {
	t.Helper()
	err := parent.Start(t.Context())
	if err == nil {
		t.Cleanup(func() { _ = parent.Stop(context.Background()) })
		<-parent.Done()
		err = parent.Err()
	}
	return err
}

// What build returns is checked: nil, a service already started, a panic,
// or an error fail the parent naming the requirement, and the term is
// resigned at once so that another replica can lead.
func TestServiceBuildThatCannotGiveANewServiceFailsTheParentAndResigns(t *testing.T) {
	errBuild := errors.New("no smtp config")
	cases := []struct {
		name  string
		build func(ctx context.Context) (*core.Base, error)
		want  string
	}{
		{"nil", func(context.Context) (*core.Base, error) { return nil, nil }, "build returned a nil service"},
		{"error", func(context.Context) (*core.Base, error) { return nil, errBuild }, "build: no smtp config"},
		{"panic", func(context.Context) (*core.Base, error) { panic("build bug") }, "build bug"},
		{"started", func(ctx context.Context) (*core.Base, error) {
			s := core.NewService(core.Name("started"), core.Logger(coretest.Quiet()))
			if err := s.Start(ctx); err != nil {
				return nil, err
			}
			context.AfterFunc(ctx, func() { _ = s.Stop(context.Background()) })
			return s, nil
		}, "build a new service each term"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				el := &coretest.Election{Expiry: time.Hour}
				a, _ := replica("a", el.Elector("a"), tc.build)
				err := parentErr(t, a)
				if err == nil || !strings.Contains(err.Error(), "leader.Service(mailer)") || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("parent's failure: got %v, want one naming leader.Service(mailer) with %q", err, tc.want)
				}
				synctest.Wait()
				if id, _, ok := el.Leader(); ok {
					t.Fatalf("leader once the build failed: got %q, want none (resigned)", id)
				}
			})
		})
	}
}

// A service that fails right after its start fails the parent with its
// error, and the term is resigned.
func TestServiceFailingRightAfterItsStartFailsTheParent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		el := &coretest.Election{Expiry: time.Hour}
		errSMTP := errors.New("smtp: 421 closing")
		build := func(context.Context) (*core.Base, error) {
			return core.NewService(core.Name("mailer-a"), core.Logger(coretest.Quiet()),
				unitOption{failUnit{errSMTP}}), nil
		}
		a, req := replica("a", el.Elector("a"), build)
		if err := parentErr(t, a); !errors.Is(err, errSMTP) {
			t.Fatalf("parent's failure: got %v, want %v", err, errSMTP)
		}
		synctest.Wait()
		if _, _, ok := el.Leader(); ok {
			t.Fatalf("leader after the failure: got one, want none (resigned)")
		}
		if req.Get() != nil {
			t.Fatalf("Get after the failure: got %v, want nil", req.Get())
		}
	})
}

type failUnit struct{ err error }

func (u failUnit) Name() string { return "fail" }
func (u failUnit) Launch(_ context.Context, h *core.Host) error {
	h.Go("fail", func(context.Context) error { return u.err })
	return nil
}

// A term lost while its service is starting does not leave that service
// running: it is stopped before this replica campaigns again, so the next
// leader's service never overlaps it, and the parent does not fail.
func TestServiceLostDuringItsStartIsStoppedBeforeTheNextLeaderStarts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		el := &coretest.Election{}
		m := &mailers{}
		inStart := make(chan struct{}, 1)
		var n atomic.Int32
		slow := func(ctx context.Context) (*core.Base, error) {
			inner := m.build("a")
			s, err := inner(ctx)
			if err != nil || n.Add(1) > 1 {
				return s, err
			}
			// The first term's service takes a while to start.
			return core.NewService(core.Name("slow-a"), core.Logger(coretest.Quiet()), unitOption{slowUnit{inStart, s}}), nil
		}
		a, reqA := replica("a", el.Elector("a"), slow)
		coretest.MustStart(t, a)
		<-inStart
		b, _ := replica("b", el.Elector("b"), m.build("b"))
		coretest.MustStart(t, b)
		synctest.Wait()
		el.Lose(errors.New("session expired"))
		advance(time.Minute)
		if a.State() != core.StateRunning {
			t.Fatalf("a's state after a loss during the start: got %s (%v), want Running", a.State(), a.Err())
		}
		log, maxRunning, _ := m.snapshot()
		if maxRunning > 1 {
			t.Fatalf("log: got %q, at most %d at once, want 1", log, maxRunning)
		}
		if id, _, _ := el.Leader(); id == "a" {
			if reqA.Get() == nil {
				t.Fatalf("a leads but Get is nil")
			}
		} else if reqA.Get() != nil {
			t.Fatalf("Get on a while %q leads: got %v, want nil", id, reqA.Get().Name())
		}
	})
}

// slowUnit starts inner (a requirement would, here a held service) only
// after its Launch waited for its context or 30s.
type slowUnit struct {
	inStart chan struct{}
	inner   *core.Base
}

func (u slowUnit) Name() string { return "slow" }
func (u slowUnit) Launch(ctx context.Context, h *core.Host) error {
	u.inStart <- struct{}{}
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-time.After(30 * time.Second):
	}
	return h.Acquire(ctx, "inner", u.inner)
}

// A term lost while build runs (build ignoring its context) does not start
// what build returns, and does not fail the parent.
func TestServiceLostDuringBuildDoesNotStartIt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		el := &coretest.Election{Expiry: time.Hour}
		m := &mailers{}
		inBuild := make(chan struct{})
		release := make(chan struct{})
		first := true
		build := func(ctx context.Context) (*core.Base, error) {
			if first {
				first = false
				close(inBuild)
				<-release // ignores ctx
			}
			return m.build("a")(ctx)
		}
		a, req := replica("a", el.Elector("a"), build)
		coretest.MustStart(t, a)
		<-inBuild
		el.Lose(errors.New("session expired"))
		synctest.Wait()
		close(release)
		synctest.Wait()
		if a.State() != core.StateRunning {
			t.Fatalf("a after a loss during build: got %s (%v), want Running", a.State(), a.Err())
		}
		// (OnStop hooks run on a rolled-back start: only a start counts.)
		if log, _, _ := m.snapshot(); strings.Contains(strings.Join(log, ","), "start") || req.Get() != nil {
			t.Fatalf("after a loss during build: got log %q and Get %v, want nothing started", log, req.Get())
		}
		if got := role(t, a); got != "standby" {
			t.Fatalf("role: got %q, want standby", got)
		}
	})
}

// The role reads "leader (token N)" with the current term's token while
// leading, and "standby" at once after a loss; Get follows.
func TestServiceRoleAndGetFollowEachTerm(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		el := &coretest.Election{Expiry: time.Minute}
		m := &mailers{}
		a, req := replica("a", el.Elector("a"), m.build("a"))
		coretest.MustStart(t, a)
		synctest.Wait()
		for tok := 1; tok <= 3; tok++ {
			if got, want := role(t, a), "leader (token "+string(rune('0'+tok))+")"; got != want || req.Get() == nil {
				t.Fatalf("term %d: role %q, Get %v, want %q and the service", tok, got, req.Get(), want)
			}
			el.Lose(errors.New("gone"))
			synctest.Wait()
			if got := role(t, a); got != "standby" || req.Get() != nil {
				t.Fatalf("after loss %d: role %q, Get %v, want standby and nil", tok, got, req.Get())
			}
			advance(time.Minute)
		}
	})
}

// The resign's error at the parent's stop is in the parent's Stop result.
func TestServiceResignErrorIsInParentStopResult(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		errResign := errors.New("etcdserver: request timed out")
		e := &oddElector{resignErr: errResign}
		a, _ := replica("a", e, (&mailers{}).build("a"))
		coretest.MustStart(t, a)
		synctest.Wait()
		if err := a.Stop(context.Background()); !errors.Is(err, errResign) {
			t.Fatalf("parent's Stop: got %v, want the resign's error %v", err, errResign)
		}
	})
}

// A parent stopped while its leader's service is starting stops it and
// resigns; nothing is left running.
func TestServiceParentStopDuringTheServiceStartStopsItAndResigns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		el := &coretest.Election{Expiry: time.Hour}
		m := &mailers{}
		inStart := make(chan struct{}, 1)
		build := func(ctx context.Context) (*core.Base, error) {
			s, err := m.build("a")(ctx)
			if err != nil {
				return nil, err
			}
			return core.NewService(core.Name("slow-a"), core.Logger(coretest.Quiet()), unitOption{slowUnit{inStart, s}}), nil
		}
		a, _ := replica("a", el.Elector("a"), build)
		coretest.MustStart(t, a)
		<-inStart
		err := a.Stop(context.Background())
		if err != nil {
			t.Fatalf("Stop during the service's start: got %v, want nil", err)
		}
		if _, _, ok := el.Leader(); ok {
			t.Fatalf("leader after Stop: got one, want none (resigned)")
		}
		if _, running, _ := m.snapshot(); running > 0 {
			log, _, _ := m.snapshot()
			if strings.Count(strings.Join(log, ","), "start") != strings.Count(strings.Join(log, ","), "stop") {
				t.Fatalf("log after Stop: got %q, want every start stopped", log)
			}
		}
	})
}

// A leadership already lost when Campaign returns starts no service: the
// service runs only while this replica leads.
func TestServiceNotStartedOnALeadershipAlreadyLost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := &oddElector{}
		e.campaign = e.firstLostThenWait
		m := &mailers{}
		a, _ := replica("a", e, m.build("a"))
		coretest.MustStart(t, a)
		synctest.Wait()
		coretest.MustStop(t, a)
		if log, _, _ := m.snapshot(); strings.Contains(strings.Join(log, ","), "start") {
			t.Fatalf("log: got %q, want no start on a lost leadership", log)
		}
	})
}

// The stop errors of the leader's service are the term's: at a loss they
// fail the parent; at the parent's stop they are in its Stop result.
func TestServiceStopErrorsFailTheParentAtALossAndReachStop(t *testing.T) {
	errStop := errors.New("flush queue: broken pipe")
	build := func(context.Context) (*core.Base, error) {
		return core.NewService(core.Name("mailer-a"), core.Logger(coretest.Quiet()),
			core.OnStop(func(context.Context) error { return errStop })), nil
	}
	t.Run("loss", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			el := &coretest.Election{}
			a, _ := replica("a", el.Elector("a"), build)
			coretest.MustStart(t, a)
			synctest.Wait()
			el.Lose(errors.New("session expired"))
			synctest.Wait()
			<-a.Done()
			if err := a.Err(); !errors.Is(err, errStop) {
				t.Fatalf("parent's Err after a loss: got %v, want %v", err, errStop)
			}
		})
	})
	t.Run("stop", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			el := &coretest.Election{}
			a, _ := replica("a", el.Elector("a"), build)
			coretest.MustStart(t, a)
			synctest.Wait()
			if err := a.Stop(context.Background()); !errors.Is(err, errStop) {
				t.Fatalf("parent's Stop: got %v, want %v", err, errStop)
			}
			if _, _, ok := el.Leader(); ok {
				t.Fatalf("leader after Stop: got one, want none (resigned)")
			}
		})
	})
}

// A loss while the parent stops (the service is being stopped) is no
// failure of the parent: Stop returns nil, the loss recorded once.
func TestServiceLossDuringTheParentStopIsNoFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		el := &coretest.Election{}
		ev := &coretest.Events{}
		inStop := make(chan struct{})
		release := make(chan struct{})
		build := func(context.Context) (*core.Base, error) {
			return core.NewService(core.Name("mailer-a"), core.Logger(coretest.Quiet()),
				core.OnStop(func(context.Context) error { close(inStop); <-release; return nil })), nil
		}
		a, _ := replica("a", el.Elector("a"), build, leader.OnEvent(ev.Hook))
		coretest.MustStart(t, a)
		synctest.Wait()
		done := make(chan error, 1)
		go func() { done <- a.Stop(context.Background()) }()
		<-inStop
		el.Lose(errors.New("session expired"))
		close(release)
		if err := <-done; err != nil {
			t.Fatalf("Stop with a loss during it: got %v, want nil", err)
		}
		if n := len(coretest.OfType[core.LeadershipLost](ev)); n != 1 {
			t.Fatalf("LeadershipLost: got %d, want 1", n)
		}
	})
}

// A leader.Service next to a deps.Supervise requirement on one parent, the
// leader's service itself restarted in place by a deps.Supervise inside
// build: a failure of the supervised service under the leader's restarts
// it without failing the parent or giving up the term; a loss stops only
// the leader's side; the parent stops clean.
func TestServiceNextToSuperviseAndSupervisedInsideBuild(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		el := &coretest.Election{}
		var fu atomic.Pointer[coretest.HostUnit]
		var made atomic.Int32
		factory := func(context.Context) (*core.Base, error) {
			made.Add(1)
			u := coretest.NewHostUnit("work")
			fu.Store(u)
			return core.NewService(core.Name("worker"), core.Logger(coretest.Quiet()), u), nil
		}
		policy := func() backoff.BackOff { return backoff.NewConstantBackOff(time.Second) }
		build := func(context.Context) (*core.Base, error) {
			return core.NewService(core.Name("mailer"), core.Logger(coretest.Quiet()), deps.Supervise(factory, policy)), nil
		}
		sideFactory := func(context.Context) (*core.Base, error) {
			return core.NewService(core.Name("cache"), core.Logger(coretest.Quiet())), nil
		}
		req := leader.Service(el.Elector("a"), build, leader.Name("mailer"))
		parent := core.NewService(core.Name("api"), core.Logger(coretest.Quiet()), core.MonitorInterval(time.Hour),
			deps.Supervise(sideFactory, policy), req)
		coretest.MustStart(t, parent)
		synctest.Wait()
		fu.Load().Host().Fail(errors.New("transient"))
		advance(2 * time.Second)
		if parent.State() != core.StateRunning || made.Load() != 2 {
			t.Fatalf("after the supervised failure: parent %s (%v), %d made, want Running and 2", parent.State(), parent.Err(), made.Load())
		}
		if _, tok, _ := el.Leader(); tok != 1 {
			t.Fatalf("token: got %d, want 1 (the term goes on)", tok)
		}
		el.Lose(errors.New("session expired"))
		synctest.Wait()
		if parent.State() != core.StateRunning || req.Get() == nil {
			t.Fatalf("after a loss: parent %s (%v), Get %v, want Running and the next term's service", parent.State(), parent.Err(), req.Get())
		}
		coretest.MustStop(t, parent)
	})
}

// stubborn is a core.Service (not a *core.Base) whose Start ignores its
// context until release is closed, then counts as running in m until Stop.
type stubborn struct {
	m       *mailers
	release chan struct{}
	mu      sync.Mutex
	state   core.State
	done    chan struct{}
}

func (s *stubborn) Name() string { return "stubborn" }
func (s *stubborn) Start(context.Context) error {
	<-s.release
	s.m.mu.Lock()
	s.m.running++
	s.m.max = max(s.m.max, s.m.running)
	s.m.log = append(s.m.log, "start a")
	s.m.mu.Unlock()
	s.mu.Lock()
	s.state = core.StateRunning
	s.mu.Unlock()
	return nil
}
func (s *stubborn) Stop(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != core.StateRunning {
		return nil
	}
	s.state = core.StateTerminated
	close(s.done)
	s.m.mu.Lock()
	s.m.running--
	s.m.log = append(s.m.log, "stop a")
	s.m.mu.Unlock()
	return nil
}
func (s *stubborn) Healthcheck(context.Context) error { return nil }
func (s *stubborn) State() core.State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}
func (s *stubborn) Done() <-chan struct{} { return s.done }
func (s *stubborn) Err() error            { return nil }

// A term lost while its service's Start ignores its context: the term
// cannot wait for a Start that does not return (the next leader may be
// elected meanwhile: leader.Service's doc), but the service is stopped as
// soon as its Start returns, and never left running.
func TestServiceLostDuringAStartThatIgnoresItsContextIsStoppedOnceItReturns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		el := &coretest.Election{}
		m := &mailers{}
		s := &stubborn{m: m, release: make(chan struct{}), state: core.StateNew, done: make(chan struct{})}
		first := true
		build := func(ctx context.Context) (core.Service, error) {
			if first {
				first = false
				return s, nil
			}
			<-ctx.Done() // later terms of a build nothing
			return nil, ctx.Err()
		}
		reqA := leader.Service(el.Elector("a"), build, leader.Name("mailer"))
		a := core.NewService(core.Name("api-a"), core.Logger(coretest.Quiet()), core.MonitorInterval(time.Hour), reqA)
		coretest.MustStart(t, a)
		synctest.Wait()
		b, _ := replica("b", el.Elector("b"), m.build("b"))
		coretest.MustStart(t, b)
		synctest.Wait()
		el.Lose(errors.New("session expired"))
		advance(time.Second)
		close(s.release)
		advance(time.Minute)
		if st := s.State(); st != core.StateTerminated {
			t.Fatalf("a's service once its late Start returned: got %v, want it stopped", st)
		}
		if log, _, _ := m.snapshot(); !slices.Contains(log, "stop a") {
			t.Fatalf("log: got %q, want a's service stopped", log)
		}
	})
}
