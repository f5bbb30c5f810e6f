package leader_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/internal/coretest"
	"github.com/coreservice/coreservice/leader"
)

// mailers records which replica's service runs when, to check that at
// most one runs at any moment.
type mailers struct {
	mu      sync.Mutex
	running int
	max     int
	log     []string
	tokens  []uint64
}

// build returns the build function of replica id: a service that records
// its start and stop.
func (m *mailers) build(id string) func(context.Context) (*core.Base, error) {
	n := 0
	return func(ctx context.Context) (*core.Base, error) {
		n++
		tok, ok := leader.Token(ctx)
		if !ok {
			return nil, errors.New("no token in build's context")
		}
		m.mu.Lock()
		m.tokens = append(m.tokens, tok)
		m.mu.Unlock()
		name := fmt.Sprintf("mailer-%s#%d", id, n)
		return core.NewService(core.Name(name), core.Logger(coretest.Quiet()),
			core.OnStart(func(context.Context) error {
				m.mu.Lock()
				defer m.mu.Unlock()
				m.running++
				m.max = max(m.max, m.running)
				m.log = append(m.log, "start "+id)
				return nil
			}),
			core.OnStop(func(context.Context) error {
				m.mu.Lock()
				defer m.mu.Unlock()
				m.running--
				m.log = append(m.log, "stop "+id)
				return nil
			})), nil
	}
}

func (m *mailers) snapshot() (log []string, maxRunning int, tokens []uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.log...), m.max, append([]uint64(nil), m.tokens...)
}

// replica is a parent service with a leader.Service requirement on el.
func replica(id string, el leader.Elector, build func(context.Context) (*core.Base, error), opts ...leader.Option) (*core.Base, *leader.Requirement[*core.Base]) {
	req := leader.Service(el, build, append([]leader.Option{leader.Name("mailer")}, opts...)...)
	return core.NewService(core.Name("api-"+id), core.Logger(coretest.Quiet()), core.MonitorInterval(time.Hour), req), req
}

// role is the status the campaigning service of parent shows.
func role(t *testing.T, parent *core.Base) string {
	t.Helper()
	deps := parent.Dependencies()
	if len(deps) != 1 || deps[0].Service == nil {
		t.Fatalf("Dependencies of %s: got %v, want the campaigning service", parent.Name(), deps)
	}
	for _, s := range deps[0].Service.(*core.Base).Statuses() {
		if s.Name == leader.RoleStatus {
			if !s.Ready {
				t.Fatalf("status %v: want it ready", s)
			}
			return s.Text
		}
	}
	return ""
}

func TestServiceRunsOnOneReplicaAtATimeAcrossTerms(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		el := &coretest.Election{Expiry: 5 * time.Second}
		m := &mailers{}
		var parents []*core.Base
		var reqs []*leader.Requirement[*core.Base]
		for _, id := range []string{"a", "b", "c"} {
			p, r := replica(id, el.Elector(id), m.build(id))
			coretest.MustStart(t, p)
			parents, reqs = append(parents, p), append(reqs, r)
		}
		synctest.Wait()
		for term := range 6 {
			id, tok, ok := el.Leader()
			if !ok {
				t.Fatalf("term %d: no leader", term)
			}
			leading := 0
			for i, p := range parents {
				want := "standby"
				if p.Name() == "api-"+id {
					want = fmt.Sprintf("leader (token %d)", tok)
					leading++
					if reqs[i].Get() == nil || reqs[i].Get().State() != core.StateRunning {
						t.Fatalf("term %d: Get on the leader: got %v, want its Running service", term, reqs[i].Get())
					}
				} else if reqs[i].Get() != nil {
					t.Fatalf("term %d: Get on standby %s: got %v, want nil", term, p.Name(), reqs[i].Get())
				}
				if got := role(t, p); got != want {
					t.Fatalf("term %d: role of %s: got %q, want %q", term, p.Name(), got, want)
				}
			}
			if leading != 1 {
				t.Fatalf("term %d: %d replicas lead, want 1", term, leading)
			}
			el.Lose(errors.New("session expired"))
			synctest.Wait()
			advance(5 * time.Second) // the seat is free again: another term begins
		}
		log, maxRunning, tokens := m.snapshot()
		if maxRunning != 1 {
			t.Fatalf("services running at once: got at most %d, want 1 (%q)", maxRunning, log)
		}
		for i := 1; i < len(tokens); i++ {
			if tokens[i] <= tokens[i-1] {
				t.Fatalf("tokens: got %v, want strictly increasing", tokens)
			}
		}
		for i := 0; i+1 < len(log); i += 2 {
			if !strings.HasPrefix(log[i], "start ") || log[i+1] != "stop "+strings.TrimPrefix(log[i], "start ") {
				t.Fatalf("log: got %q, want each start followed by its stop before the next start", log)
			}
		}
		for _, p := range parents {
			if p.State() != core.StateRunning {
				t.Fatalf("%s: got %v, want Running throughout", p.Name(), p.State())
			}
		}
	})
}

func TestParentStopStopsTheServiceThenResignsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		el := &coretest.Election{Expiry: time.Hour}
		m := &mailers{}
		a, _ := replica("a", el.Elector("a"), m.build("a"))
		coretest.MustStart(t, a)
		synctest.Wait()
		b, _ := replica("b", el.Elector("b"), m.build("b"))
		coretest.MustStart(t, b)
		synctest.Wait()
		if id, _, _ := el.Leader(); id != "a" {
			t.Fatalf("leader: got %q, want a", id)
		}
		start := time.Now()
		coretest.MustStop(t, a)
		synctest.Wait()
		if id, _, _ := el.Leader(); id != "b" || time.Since(start) != 0 {
			t.Fatalf("leader after a's stop: got %q after %v, want b at once", id, time.Since(start))
		}
		log, maxRunning, _ := m.snapshot()
		if maxRunning != 1 || strings.Join(log, ",") != "start a,stop a,start b" {
			t.Fatalf("log: got %q (at most %d at once), want a stopped before b started", log, maxRunning)
		}
	})
}

func TestParentStartsAndStandsByWhileTheStoreIsDown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		el := &coretest.Election{}
		el.Fail(errors.New("connection refused"))
		m := &mailers{}
		a, req := replica("a", el.Elector("a"), m.build("a"))
		coretest.MustStart(t, a) // does not wait for an election
		synctest.Wait()
		if got := role(t, a); got != "standby" || req.Get() != nil {
			t.Fatalf("with the store down: role %q, Get %v, want standby and nil", got, req.Get())
		}
		if err := a.Healthcheck(t.Context()); err != nil {
			t.Fatalf("Healthcheck of a standby replica: got %v, want nil (ready)", err)
		}
		el.Recover()
		advance(time.Minute)
		if got := role(t, a); !strings.HasPrefix(got, "leader (token ") || req.Get() == nil {
			t.Fatalf("once the store is back: role %q, Get %v, want leader", got, req.Get())
		}
	})
}

func TestServiceFailureFailsTheParentAndAnotherReplicaLeads(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		el := &coretest.Election{Expiry: time.Hour}
		fu := coretest.NewHostUnit("fail")
		smtp := errors.New("smtp: 554 rejected")
		build := func(context.Context) (*core.Base, error) {
			return core.NewService(core.Name("mailer-a"), core.Logger(coretest.Quiet()), fu), nil
		}
		a, _ := replica("a", el.Elector("a"), build)
		coretest.MustStart(t, a)
		synctest.Wait()
		b, _ := replica("b", el.Elector("b"), (&mailers{}).build("b"))
		coretest.MustStart(t, b)
		synctest.Wait()
		fu.Host().Fail(smtp)
		<-a.Done()
		if err := a.Err(); !errors.Is(err, smtp) || !strings.Contains(err.Error(), "requirement mailer failed") {
			t.Fatalf("a's Err: got %v, want the failure of its leader's service, named", err)
		}
		synctest.Wait()
		if id, _, _ := el.Leader(); id != "b" {
			t.Fatalf("leader once a failed: got %q, want b at once (a resigned)", id)
		}
	})
}

func TestServiceBadInput(t *testing.T) {
	build := func(context.Context) (*core.Base, error) { return core.NewService(core.Logger(coretest.Quiet())), nil }
	var typedNil *coretest.Elector
	invalid := (&coretest.Election{}).Elector("x")
	invalid.Invalid = errors.New("TTL 0s: must be at least 2s")
	cases := []struct {
		name string
		opt  core.Option
		want string
	}{
		{"nil elector", leader.Service(nil, build, leader.Name("m")), "leader.Service(m): nil leader.Elector"},
		{"typed nil elector", leader.Service(typedNil, build, leader.Name("m")), "leader.Service(m): nil leader.Elector"},
		{"nil build", leader.Service[*core.Base]((&coretest.Election{}).Elector("x"), nil, leader.Name("m")), "leader.Service(m): nil build function"},
		{"invalid elector", leader.Service(invalid, build, leader.Name("m")), "TTL 0s: must be at least 2s"},
		{"empty name", leader.Service((&coretest.Election{}).Elector("x"), build, leader.Name("")), `leader.Name(""): `},
		{"nil OnEvent", leader.Service((&coretest.Election{}).Elector("x"), build, leader.OnEvent(nil)), "leader.OnEvent: nil function"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			api := core.NewService(core.Name("api"), core.Logger(coretest.Quiet()), tc.opt)
			err := api.Start(t.Context())
			if !errors.Is(err, core.ErrInvalidOption) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Start: got %v, want ErrInvalidOption with %q", err, tc.want)
			}
		})
	}
}

func TestServiceEventsAreGivenToOnEventInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		el := &coretest.Election{}
		ev := &coretest.Events{}
		a, _ := replica("a", el.Elector("a"), (&mailers{}).build("a"), leader.OnEvent(ev.Hook))
		coretest.MustStart(t, a)
		synctest.Wait()
		el.Lose(errors.New("session expired"))
		synctest.Wait()
		coretest.MustStop(t, a)
		var got []string
		for _, e := range ev.All() {
			switch e := e.(type) {
			case core.LeadershipWon:
				got = append(got, fmt.Sprintf("won %d", e.Token))
			case core.LeadershipLost:
				got = append(got, fmt.Sprintf("lost %d: %v", e.Token, e.Err))
			}
		}
		want := []string{"won 1", "lost 1: session expired", "won 2", "lost 2: <nil>"}
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Fatalf("events: got %q, want %q", got, want)
		}
	})
}
