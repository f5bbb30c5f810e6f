package deps_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/deps"
	"github.com/coreservice/coreservice/internal/coretest"
)

// supervised returns a Supervise requirement named db on f's instances
// under pol, recording the supervisor's events in ev, and its parent api.
func supervised(f *coretest.Flaky, pol backoff.BackOff, ev *coretest.Events, opts ...deps.Option) (*deps.Requirement[*coretest.Instance], *core.Base) {
	db := deps.Supervise(f.Factory, func() backoff.BackOff { return pol },
		append([]deps.Option{deps.Name("db"), deps.OnEvent(ev.Hook)}, opts...)...)
	api := core.NewService(core.Name("api"), core.Logger(coretest.Quiet()), core.MonitorInterval(time.Hour), db)
	return db, api
}

// advance moves the bubble's clock by d and lets everything settle.
func advance(d time.Duration) {
	coretest.Advance(d)
	synctest.Wait()
}

// restartEvents are the supervision events in ev, as text.
func restartEvents(ev *coretest.Events) []string {
	var out []string
	for _, e := range ev.All() {
		switch e := e.(type) {
		case core.RestartScheduled:
			out = append(out, fmt.Sprintf("scheduled %s attempt %d in %v: %v", e.Instance, e.Attempt, e.Delay, e.Err))
		case core.Restarted:
			out = append(out, fmt.Sprintf("restarted %s attempt %d after %v", e.Instance, e.Attempt, e.Downtime))
		case core.RestartGaveUp:
			out = append(out, fmt.Sprintf("gave up after %d: %v", e.Attempts, e.Err))
		}
	}
	return out
}

func TestSupervisedInstanceIsRestartedAfterExactlyThePolicysDelays(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &coretest.Flaky{Name: "db", StartErr: func(n int) error {
			if n == 2 {
				return errors.New("connection refused")
			}
			return nil
		}}
		pol := coretest.NewPolicy(time.Second, 2*time.Second, 4*time.Second)
		ev := &coretest.Events{}
		db, api := supervised(f, pol, ev)
		coretest.MustStart(t, api)
		first := f.Last()
		if db.Get() != first || first.State() != core.StateRunning {
			t.Fatalf("after start: got Get %v (%v), want the first instance Running", db.Get().Name(), first.State())
		}

		first.Fail(errors.New("disk full"))
		synctest.Wait()
		advance(time.Second - time.Nanosecond)
		if n := len(f.Built()); n != 1 {
			t.Fatalf("instances before the first delay ran out: got %d, want 1", n)
		}
		advance(time.Nanosecond) // instance 2 is built and fails to start
		if n := len(f.Built()); n != 2 {
			t.Fatalf("instances once the first delay ran out: got %d, want 2", n)
		}
		advance(2*time.Second - time.Nanosecond)
		if n := len(f.Built()); n != 2 {
			t.Fatalf("instances before the second delay ran out: got %d, want 2", n)
		}
		advance(time.Nanosecond)
		third := f.Last()
		if third.N != 3 || third.State() != core.StateRunning || db.Get() != third {
			t.Fatalf("after the second delay: got instance %d %v, want instance 3 Running and returned by Get", third.N, third.State())
		}
		if api.State() != core.StateRunning {
			t.Fatalf("parent: got %v, want Running throughout", api.State())
		}
		if got, want := pol.Calls(), []string{"reset", "1s", "2s"}; !slices.Equal(got, want) {
			t.Fatalf("policy calls: got %q, want %q", got, want)
		}
		got := restartEvents(ev)
		if len(got) != 3 || got[0] != "scheduled db#1 attempt 1 in 1s: disk full" ||
			!strings.HasPrefix(got[1], "scheduled db#2 attempt 2 in 2s: ") || !strings.Contains(got[1], "connection refused") ||
			got[2] != "restarted db#3 attempt 2 after 3s" {
			t.Fatalf("events: got %q, want db#1's failure scheduled in 1s, db#2's failed start in 2s, then db#3 restarted after 3s", got)
		}
		if n := db.Restarts(); n != 1 {
			t.Fatalf("Restarts: got %d, want 1", n)
		}
		wantAllStopped(t, f.Built()[:2], "at the end")
	})
}

func TestPolicyIsResetOnceAnInstanceWasRunningForHealthyAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &coretest.Flaky{Name: "db"}
		pol := coretest.NewPolicy(time.Second, 2*time.Second, 4*time.Second)
		ev := &coretest.Events{}
		_, api := supervised(f, pol, ev, deps.HealthyAfter(10*time.Second))
		coretest.MustStart(t, api)

		f.Last().Fail(errors.New("one"))
		advance(time.Second) // instance 2 runs
		advance(10*time.Second - time.Nanosecond)
		f.Last().Fail(errors.New("two")) // ran 1ns short of HealthyAfter: same streak
		advance(2 * time.Second)         // instance 3 runs
		advance(10 * time.Second)
		f.Last().Fail(errors.New("three")) // ran HealthyAfter: a new streak
		advance(time.Second)
		if got, want := pol.Calls(), []string{"reset", "1s", "2s", "reset", "1s"}; !slices.Equal(got, want) {
			t.Fatalf("policy calls: got %q, want %q", got, want)
		}
		if got := f.Last(); got.N != 4 || got.State() != core.StateRunning {
			t.Fatalf("last instance: got %d %v, want 4 Running", got.N, got.State())
		}
		got := restartEvents(ev)
		want := []string{
			"scheduled db#1 attempt 1 in 1s: one", "restarted db#2 attempt 1 after 1s",
			"scheduled db#2 attempt 2 in 2s: two", "restarted db#3 attempt 2 after 2s",
			"scheduled db#3 attempt 1 in 1s: three", "restarted db#4 attempt 1 after 1s",
		}
		if !slices.Equal(got, want) {
			t.Fatalf("events:\n got %q\nwant %q", got, want)
		}
	})
}

func TestGivingUpFailsTheParentWithTheLastCause(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		refused := errors.New("connection refused")
		f := &coretest.Flaky{Name: "db", StartErr: func(n int) error {
			if n > 1 {
				return refused
			}
			return nil
		}}
		ev := &coretest.Events{}
		_, api := supervised(f, coretest.NewPolicy(time.Second, time.Second), ev)
		coretest.MustStart(t, api)
		f.Last().Fail(errors.New("disk full"))
		advance(2 * time.Second)
		<-api.Done()
		err := api.Err()
		var gu *deps.GaveUpError
		if !errors.As(err, &gu) || gu.Attempts != 2 || gu.Requirement != "db" || !errors.Is(err, refused) {
			t.Fatalf("parent's Err: got %v, want a *GaveUpError after 2 restarts wrapping the last cause", err)
		}
		if !strings.Contains(err.Error(), "requirement db failed: db: gave up after 2 restarts: ") {
			t.Fatalf("parent's Err: got %q, want it to name the requirement and the attempts", err)
		}
		got := restartEvents(ev)
		if len(got) != 3 || !strings.HasPrefix(got[2], "gave up after 2: ") || !strings.Contains(got[2], "connection refused") {
			t.Fatalf("events: got %q, want two scheduled restarts then gave up after 2", got)
		}
		wantAllStopped(t, f.Built(), "at the end")
	})
}

func TestPermanentFactoryErrorGivesUpAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &coretest.Flaky{Name: "db"}
		gone := errors.New("database dropped")
		calls := 0
		factory := func(ctx context.Context) (*coretest.Instance, error) {
			if calls++; calls > 1 {
				return nil, backoff.Permanent(gone)
			}
			return f.Factory(ctx)
		}
		pol := coretest.NewPolicy(time.Second, time.Second, time.Second)
		db := deps.Supervise(factory, func() backoff.BackOff { return pol }, deps.Name("db"))
		api := core.NewService(core.Name("api"), core.Logger(coretest.Quiet()), db)
		coretest.MustStart(t, api)
		f.Last().Fail(errors.New("disk full"))
		advance(time.Second)
		<-api.Done()
		var gu *deps.GaveUpError
		if err := api.Err(); !errors.As(err, &gu) || gu.Attempts != 1 || !errors.Is(err, gone) {
			t.Fatalf("parent's Err: got %v, want a *GaveUpError after 1 restart wrapping the permanent error", err)
		}
		if got, want := pol.Calls(), []string{"reset", "1s"}; !slices.Equal(got, want) {
			t.Fatalf("policy calls: got %q, want %q", got, want)
		}
	})
}

func TestParentStopDuringARestartLeavesNoInstanceRunning(t *testing.T) {
	for _, when := range []string{"during the delay", "during the new instance's start"} {
		t.Run(when, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := &coretest.Flaky{Name: "db", Opts: []core.Option{core.StartTimeout(time.Hour)}}
				starting := make(chan struct{})
				factory := func(ctx context.Context) (*coretest.Instance, error) {
					inst, err := f.Factory(ctx)
					if inst.N == 2 {
						// A start that lasts until it is aborted.
						inst.Base = core.NewService(core.Name("db#2"), core.Logger(coretest.Quiet()),
							core.OnStart(func(ctx context.Context) error {
								close(starting)
								<-ctx.Done()
								return ctx.Err()
							}))
					}
					return inst, err
				}
				db := deps.Supervise(factory, func() backoff.BackOff { return coretest.NewPolicy(time.Second) }, deps.Name("db"))
				api := core.NewService(core.Name("api"), core.Logger(coretest.Quiet()), db)
				coretest.MustStart(t, api)
				f.Last().Fail(errors.New("disk full"))
				synctest.Wait()
				if when != "during the delay" {
					advance(time.Second)
					<-starting
				}
				if err := api.Stop(context.Background()); err != nil {
					t.Fatalf("Stop: got %v, want nil", err)
				}
				wantNoneRunning(t, f.Built(), "once the parent stopped")
				if api.Err() != nil {
					t.Fatalf("parent's Err: got %v, want nil (a clean stop)", api.Err())
				}
			})
		})
	}
}

func TestCurrentWaitsForTheRestartedInstance(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &coretest.Flaky{Name: "db"}
		db, api := supervised(f, coretest.NewPolicy(5*time.Second), &coretest.Events{})
		if _, err := db.Current(t.Context()); err == nil || !strings.Contains(err.Error(), "not started") {
			t.Fatalf("Current before the parent's start: got %v, want an error saying it is not started", err)
		}
		coretest.MustStart(t, api)
		first := f.Last()
		if got, err := db.Current(t.Context()); got != first || err != nil {
			t.Fatalf("Current while Running: got %v, %v, want the first instance", got, err)
		}
		first.Fail(errors.New("disk full"))
		synctest.Wait()
		if db.Get() != first {
			t.Fatal("Get during the restart: want the instance that failed")
		}
		short, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		if _, err := db.Current(short); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Current with a context shorter than the delay: got %v, want DeadlineExceeded", err)
		}
		start := time.Now()
		got, err := db.Current(t.Context())
		if err != nil || got.N != 2 || got.State() != core.StateRunning {
			t.Fatalf("Current during the restart: got %v, %v, want instance 2 Running", got, err)
		}
		if waited := time.Since(start); waited != 4*time.Second {
			t.Fatalf("Current waited %v, want the 4s left of the delay", waited)
		}
	})
}

func TestParentIsRunningButNotReadyDuringARestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &coretest.Flaky{Name: "db"}
		_, api := supervised(f, coretest.NewPolicy(2*time.Second), &coretest.Events{})
		coretest.MustStart(t, api)
		if err := api.Healthcheck(t.Context()); err != nil {
			t.Fatalf("Healthcheck while Running: got %v, want nil", err)
		}
		f.Last().Fail(errors.New("disk full"))
		synctest.Wait()
		err := api.Healthcheck(t.Context())
		if !errors.Is(err, core.ErrUnhealthy) || !strings.Contains(err.Error(), "supervisor: restarting (attempt 1 in 2s)") {
			t.Fatalf("Healthcheck during the restart: got %v, want not ready, restarting (attempt 1 in 2s)", err)
		}
		if api.State() != core.StateRunning {
			t.Fatalf("parent: got %v, want Running", api.State())
		}
		advance(2 * time.Second)
		if err := api.Healthcheck(t.Context()); err != nil {
			t.Fatalf("Healthcheck once restarted: got %v, want nil", err)
		}
		st := api.Dependencies()[0].Service.(*core.Base).Statuses()
		if len(st) != 1 || st[0].Text != "running db#2 (restarts: 1)" || !st[0].Ready {
			t.Fatalf("supervisor's status: got %v, want running db#2 (restarts: 1)", st)
		}
	})
}

func TestSuperviseBadInput(t *testing.T) {
	policy := func() backoff.BackOff { return coretest.NewPolicy(time.Second) }
	f := &coretest.Flaky{Name: "db"}
	var typedNil *coretest.Instance
	running := &coretest.Flaky{Name: "running"}
	started, _ := running.Factory(context.Background())
	coretest.MustStart(t, started)
	cases := []struct {
		name string
		req  core.Option
		want string
	}{
		{"nil factory", deps.Supervise[*coretest.Instance](nil, policy, deps.Name("db")), "deps.Supervise(db): nil factory"},
		{"nil policy", deps.Supervise(f.Factory, nil, deps.Name("db")), "deps.Supervise(db): nil policy"},
		{"policy returns nil", deps.Supervise(f.Factory, func() backoff.BackOff { return nil }, deps.Name("db")),
			"the policy function returned a nil BackOff"},
		{"factory returns nil", deps.Supervise(func(context.Context) (core.Service, error) { return nil, nil }, policy, deps.Name("db")),
			"factory returned a nil service"},
		{"factory returns a typed nil", deps.Supervise(func(context.Context) (*coretest.Instance, error) { return typedNil, nil }, policy, deps.Name("db")),
			"factory returned a nil service"},
		{"factory returns a started service", deps.Supervise(func(context.Context) (*coretest.Instance, error) { return started, nil }, policy, deps.Name("db")),
			"factory returned running#1, which is running: build a new service each time"},
		{"factory panics", deps.Supervise(func(context.Context) (*coretest.Instance, error) { panic("boom") }, policy, deps.Name("db")),
			"factory: panic: boom"},
		{"HealthyAfter 0", deps.Supervise(f.Factory, policy, deps.Name("db"), deps.HealthyAfter(0)), "deps.HealthyAfter(0s): must be positive"},
		{"nil OnEvent", deps.Supervise(f.Factory, policy, deps.Name("db"), deps.OnEvent(nil)), "deps.OnEvent: nil function"},
		{"HealthyAfter on Requires", deps.Requires(coretest.Node("x", nil), deps.HealthyAfter(time.Second)),
			"deps.Requires(x): deps.HealthyAfter(1s): only for deps.Supervise"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			api := core.NewService(core.Name("api"), core.Logger(coretest.Quiet()), tc.req)
			err := api.Start(t.Context())
			var se *core.StartupError
			if !errors.As(err, &se) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Start: got %v, want a *StartupError with %q", err, tc.want)
			}
		})
	}
}

func TestPanickingFactoryDuringARestartIsAFailedRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &coretest.Flaky{Name: "db"}
		calls := 0
		factory := func(ctx context.Context) (*coretest.Instance, error) {
			if calls++; calls == 2 {
				panic("boom")
			}
			return f.Factory(ctx)
		}
		ev := &coretest.Events{}
		db := deps.Supervise(factory, func() backoff.BackOff { return coretest.NewPolicy(time.Second, time.Second) },
			deps.Name("db"), deps.OnEvent(ev.Hook))
		api := core.NewService(core.Name("api"), core.Logger(coretest.Quiet()), db)
		coretest.MustStart(t, api)
		f.Last().Fail(errors.New("disk full"))
		advance(2 * time.Second)
		got := restartEvents(ev)
		if len(got) != 3 || !strings.HasPrefix(got[1], "scheduled  attempt 2 in 1s: ") || !strings.Contains(got[1], "panic: boom") ||
			got[2] != "restarted db#2 attempt 2 after 2s" {
			t.Fatalf("events: got %q, want the panic as a failed restart, then restarted db#2", got)
		}
		if api.State() != core.StateRunning {
			t.Fatalf("parent: got %v, want Running", api.State())
		}
	})
}

func TestSupervisionIsLoggedByTheParentsLoggerAsTheSupervisor(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		logs := coretest.NewLogs()
		f := &coretest.Flaky{Name: "db"}
		db := deps.Supervise(f.Factory, func() backoff.BackOff { return coretest.NewPolicy(time.Second) }, deps.Name("db"))
		api := core.NewService(core.Name("api"), core.Logger(logs.Logger()), db)
		coretest.MustStart(t, api)
		f.Last().Fail(errors.New("disk full"))
		advance(time.Second)
		sched, restarted := logs.Find("restart scheduled"), logs.Find("restarted")
		if len(sched) != 1 || sched[0].Level != slog.LevelWarn || sched[0].Attrs["service"] != "db" ||
			sched[0].Attrs["instance"] != "db#1" || sched[0].Attrs["restart_in"] != "1s" || sched[0].Attrs["error"] != "disk full" {
			t.Fatalf("restart scheduled records: got %v, want one WARN of service db, instance db#1, restart_in 1s, error disk full", sched)
		}
		if len(restarted) != 1 || restarted[0].Level != slog.LevelInfo || restarted[0].Attrs["instance"] != "db#2" {
			t.Fatalf("restarted records: got %v, want one INFO for db#2", restarted)
		}
	})
}

func TestRestartedInstanceResolvesItsRequirementsAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &coretest.Recorder{}
		shared := coretest.Node("shared", rec) // also required by the parent: held by two
		lazyBuilds := 0
		var fails []*coretest.HostUnit
		factory := func(context.Context) (*core.Base, error) {
			fu := coretest.NewHostUnit("fail")
			fails = append(fails, fu)
			return core.NewService(core.Name(fmt.Sprintf("db#%d", len(fails))), core.Logger(coretest.Quiet()), fu,
				deps.Requires(shared),
				deps.Lazy(func(context.Context) (*core.Base, error) {
					lazyBuilds++
					return coretest.Node(fmt.Sprintf("pool#%d", lazyBuilds), rec), nil
				}, deps.Name("pool"))), nil
		}
		db := deps.Supervise(factory, func() backoff.BackOff { return coretest.NewPolicy(time.Second) }, deps.Name("db"))
		api := core.NewService(core.Name("api"), core.Logger(coretest.Quiet()), deps.Requires(shared), db)
		coretest.MustStart(t, api)
		fails[0].Host().Fail(errors.New("disk full"))
		advance(time.Second)
		if lazyBuilds != 2 {
			t.Fatalf("Lazy builds: got %d, want 2 (built again for the new instance)", lazyBuilds)
		}
		if shared.State() != core.StateRunning {
			t.Fatalf("shared: got %v, want Running", shared.State())
		}
		coretest.WantEvents(t, rec.Events(), []string{"shared start", "pool#1 start", "pool#1 stop", "pool#2 start"})
	})
}

func TestSupervisorHasItsParentsStopTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &coretest.Flaky{Name: "db"}
		release := make(chan struct{})
		calls := 0
		factory := func(ctx context.Context) (*coretest.Instance, error) {
			if calls++; calls == 2 {
				<-release // a factory that ignores its context
			}
			return f.Factory(ctx)
		}
		db := deps.Supervise(factory, func() backoff.BackOff { return coretest.NewPolicy(time.Second) }, deps.Name("db"))
		api := core.NewService(core.Name("api"), core.Logger(coretest.Quiet()), core.StopTimeout(3*time.Second), db)
		coretest.MustStart(t, api)
		f.Last().Fail(errors.New("disk full"))
		advance(time.Second) // the restart's factory hangs
		start := time.Now()
		err := api.Stop(context.Background())
		var ste *core.StopTimeoutError
		if !errors.As(err, &ste) || ste.Service != "db" || ste.Timeout != 3*time.Second {
			t.Fatalf("Stop: got %v, want the supervisor's *StopTimeoutError with the parent's 3s", err)
		}
		if took := time.Since(start); took != 3*time.Second {
			t.Fatalf("Stop took %v, want the parent's StopTimeout, 3s", took)
		}
		close(release)
		synctest.Wait()
	})
}
