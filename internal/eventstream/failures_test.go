package eventstream_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/deps"
	"github.com/coreservice/coreservice/internal/coretest"
)

// A failure at the bottom of a chain top -> mid -> low -> leaf reaches every
// level as one RequirementFailed naming that level's own requirement, with
// the leaf's failure as its cause, before that level's move to stopping;
// every level ends Failed with an Err wrapping the failure.
func TestRequirementFailedNamesEachLevelOfAChain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hosts := make(chan *core.Host, 1)
		names := []string{"leaf", "low", "mid", "top"}
		recs := make([]*recorder, len(names))
		svcs := make([]*core.Base, len(names))
		for i, n := range names {
			recs[i] = &recorder{}
			opts := []core.Option{core.Name(n), core.Logger(coretest.Quiet()), core.OnEvent(recs[i].hook)}
			if i == 0 {
				opts = append(opts, hostUnit(hosts))
			} else {
				opts = append(opts, deps.Requires(svcs[i-1]))
			}
			svcs[i] = core.NewService(opts...)
			recs[i].svc = svcs[i]
		}
		top := svcs[len(svcs)-1]
		if err := top.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		(<-hosts).Fail(errBoom)
		<-top.Done()
		synctest.Wait()
		for i, s := range svcs {
			evs := recs[i].events()
			checkOutcome(t, s, checkStream(t, names[i], recs[i].all()))
			if !errors.Is(s.Err(), errBoom) || s.State() != core.StateFailed {
				t.Errorf("%s: got %v, Err %v; want failed with boom", names[i], s.State(), s.Err())
			}
			rf := coretest.Only[core.RequirementFailed](evs)
			if i == 0 {
				if len(rf) != 0 {
					t.Errorf("leaf: got %+v, want no RequirementFailed", rf)
				}
				continue
			}
			if len(rf) != 1 || rf[0].Requirement != names[i-1] || rf[0].Service != names[i] || !errors.Is(rf[0].Err, errBoom) {
				t.Errorf("%s: got %+v, want one RequirementFailed{%s, %s, boom}", names[i], rf, names[i], names[i-1])
				continue
			}
			iRF := slices.IndexFunc(evs, func(e core.Event) bool { _, ok := e.(core.RequirementFailed); return ok })
			iStop := slices.IndexFunc(evs, func(e core.Event) bool {
				c, ok := e.(core.StateChanged)
				return ok && c.To == core.StateStopping
			})
			if iRF > iStop {
				t.Errorf("%s: RequirementFailed (event %d) after the move to stopping (event %d):\n%s", names[i], iRF, iStop, describe(evs))
			}
			stopping := evs[iStop].(core.StateChanged)
			if !errors.Is(stopping.Cause, errBoom) || !strings.Contains(stopping.Cause.Error(), names[i-1]) {
				t.Errorf("%s: cause of the move to stopping: got %v, want boom naming %s", names[i], stopping.Cause, names[i-1])
			}
		}
	})
}

// A requirement that a parent awaits (someone else owns it) and that stops
// cleanly is a RequirementFailed of the parent too, naming it.
func TestAwaitedRequirementStoppingIsARequirementFailed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var rec recorder
		db := core.NewService(core.Name("db"), core.Logger(coretest.Quiet()))
		api := core.NewService(core.Name("api"), core.Logger(coretest.Quiet()), deps.Await(db), core.OnEvent(rec.hook))
		rec.svc = api
		if err := db.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := api.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := db.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		<-api.Done()
		rf := coretest.Only[core.RequirementFailed](rec.events())
		if len(rf) != 1 || rf[0].Requirement != "db" || rf[0].Err == nil {
			t.Fatalf("got %+v, want one RequirementFailed naming db", rf)
		}
		checkOutcome(t, api, checkStream(t, "api", rec.all()))
	})
}

// stuckStop is a service of another type whose Stop ignores its context.
type stuckStop struct {
	release chan struct{}
	done    chan struct{}
	state   core.State
}

func (s *stuckStop) Name() string                      { return "foreign" }
func (s *stuckStop) Start(context.Context) error       { s.state = core.StateRunning; return nil }
func (s *stuckStop) Healthcheck(context.Context) error { return nil }
func (s *stuckStop) State() core.State                 { return s.state }
func (s *stuckStop) Done() <-chan struct{}             { return s.done }
func (s *stuckStop) Err() error                        { return nil }
func (s *stuckStop) Stop(context.Context) error        { <-s.release; return nil }

// StopTimedOut names exactly what the stop left running, as the
// *StopTimeoutError that Stop returns does: a unit's goroutine, an OnStop
// hook by its number, a foreign requirement.
func TestStopTimedOutNamesTheUnitsOfTheStopTimeoutError(t *testing.T) {
	cases := []struct {
		name string
		opts func(release chan struct{}) []core.Option
		want []string
	}{
		{"unit", func(release chan struct{}) []core.Option {
			return []core.Option{goUnit("stuck worker", func(context.Context, *core.Host) error { <-release; return nil })}
		}, []string{"stuck worker"}},
		{"second OnStop hook", func(release chan struct{}) []core.Option {
			return []core.Option{
				core.OnStop(func(context.Context) error { return nil }),
				core.OnStop(func(context.Context) error { <-release; return nil }),
				core.OnStop(func(context.Context) error { return nil })}
		}, []string{"OnStop hook 2"}},
		{"foreign requirement", func(release chan struct{}) []core.Option {
			return []core.Option{deps.Requires(core.Service(&stuckStop{release: release, done: make(chan struct{})}))}
		}, []string{"requirement foreign"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				release := make(chan struct{})
				var rec recorder
				s := core.NewService(append([]core.Option{core.Name("svc"), core.Logger(coretest.Quiet()), core.StopTimeout(time.Second),
					core.OnEvent(rec.hook)}, c.opts(release)...)...)
				rec.svc = s
				if err := s.Start(context.Background()); err != nil {
					t.Fatal(err)
				}
				err := s.Stop(context.Background())
				var ste *core.StopTimeoutError
				if !errors.As(err, &ste) || !slices.Equal(ste.Units, c.want) {
					t.Errorf("Stop: got %v, want a *StopTimeoutError naming %v", err, c.want)
				}
				sto := coretest.Only[core.StopTimedOut](rec.events())
				if len(sto) != 1 || !slices.Equal(sto[0].Units, c.want) || sto[0].Timeout != time.Second || sto[0].Service != "svc" {
					t.Errorf("events: got %+v, want one StopTimedOut{svc, 1s, %v}", sto, c.want)
				}
				checkOutcome(t, s, checkStream(t, "svc", rec.all()))
				close(release)
				synctest.Wait()
			})
		})
	}
}

// A failed start whose rollback leaves a unit running raises StopTimedOut
// between the move to stopping and the move to failed, and Err is the
// *StartupError that Start returned.
func TestRollbackStopTimedOutComesBeforeTheFinalChange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		var rec recorder
		s := core.NewService(core.Name("svc"), core.Logger(coretest.Quiet()), core.StopTimeout(time.Second), core.OnEvent(rec.hook),
			goUnit("stuck", func(context.Context, *core.Host) error { <-release; return nil }),
			&unit{name: "bad", launch: func(context.Context, *core.Host) error { return errBoom }})
		rec.svc = s
		err := s.Start(context.Background())
		if !errors.Is(err, errBoom) || s.Err() != err {
			t.Fatalf("Start: got %v (Err %v), want boom, the same as Err", err, s.Err())
		}
		evs := rec.events()
		var kinds []string
		for _, e := range evs {
			switch e := e.(type) {
			case core.StateChanged:
				kinds = append(kinds, edge(e))
			case core.StopTimedOut:
				kinds = append(kinds, "timeout "+strings.Join(e.Units, ","))
			}
		}
		want := []string{"new->starting", "starting->stopping", "timeout stuck", "stopping->failed"}
		if !slices.Equal(kinds, want) {
			t.Errorf("got %v, want %v", kinds, want)
		}
		checkOutcome(t, s, checkStream(t, "svc", rec.all()))
		close(release)
		synctest.Wait()
	})
}

// Host.Emit raises TaskRunFailed and TaskRetryScheduled only, with the
// service's name: every other kind, a pointer to a unit event, a type
// embedding one, and nil are dropped and logged as errors, and never reach
// the hooks.
func TestHostEmitOfOtherKindsReachesNoHook(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		type wrapped struct{ core.TaskRunFailed }
		hosts := make(chan *core.Host, 1)
		var rec recorder
		logs := newLogs()
		s := core.NewService(core.Name("svc"), core.Logger(logs.logger()), hostUnit(hosts), core.OnEvent(rec.hook))
		rec.svc = s
		if err := s.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		h := <-hosts
		bad := []core.Event{
			core.StateChanged{Service: "svc", From: core.StateRunning, To: core.StateFailed, Cause: errBoom},
			core.CheckFailed{Check: "c", Failures: 1, Threshold: 1},
			core.RequirementFailed{Requirement: "r"},
			core.StopTimedOut{Units: []string{"x"}},
			core.EventsDropped{N: 3},
			&core.TaskRunFailed{Task: "t"},
			wrapped{core.TaskRunFailed{Task: "t"}},
			nil,
		}
		for _, e := range bad {
			h.Emit(context.Background(), e)
		}
		//lint:ignore SA1012 a nil context is bad input Emit must survive
		h.Emit(nil, core.TaskRunFailed{Service: "other", Task: "ok", Err: errBoom})
		if err := s.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		evs := rec.events()
		trf := coretest.Only[core.TaskRunFailed](evs)
		if len(evs) != 5 || len(trf) != 1 || trf[0].Service != "svc" || trf[0].Task != "ok" {
			t.Fatalf("got %d events, want the 4 state changes and the TaskRunFailed of svc:\n%s", len(evs), describe(evs))
		}
		errs := 0
		for _, r := range logs.records() {
			if r.level == "ERROR" && strings.HasPrefix(r.msg, "Host.Emit") {
				errs++
			}
		}
		if errs != len(bad) {
			t.Errorf("got %d Host.Emit errors logged, want %d", errs, len(bad))
		}
		checkOutcome(t, s, checkStream(t, "svc", rec.all()))
	})
}

// OnEvent(nil) is an invalid option reported by Start naming the option and
// the service; the other hooks get the failed start's events.
func TestOnEventNilFailsStartNamingTheOptionAndTheService(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var rec recorder
		s := core.NewService(core.Name("svc"), core.Logger(coretest.Quiet()), core.OnEvent(nil), core.OnEvent(rec.hook))
		rec.svc = s
		err := s.Start(context.Background())
		if !errors.Is(err, core.ErrInvalidOption) || !strings.Contains(err.Error(), "OnEvent") || !strings.Contains(err.Error(), "svc") {
			t.Fatalf("Start: got %v, want ErrInvalidOption naming OnEvent and svc", err)
		}
		final := checkStream(t, "svc", rec.all())
		checkOutcome(t, s, final)
		if final.To != core.StateFailed {
			t.Errorf("final: got %v, want failed", final.To)
		}
	})
}
