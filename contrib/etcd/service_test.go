package etcd_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/coreservice/coreservice/contrib/etcd"
	"github.com/coreservice/coreservice/contrib/etcd/internal/etcdtest"
	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/health"
	"github.com/coreservice/coreservice/internal/coretest"
	"github.com/coreservice/coreservice/leader"
)

// mailerEvent is a start or a stop of a service built by leader.Service.
type mailerEvent struct {
	op      string // "start" or "stop"
	replica string
	token   uint64
	at      time.Time
}

func (e mailerEvent) String() string { return fmt.Sprintf("%s %s#%d", e.op, e.replica, e.token) }

// mailers records the starts and stops of the services that leader.Service
// builds on every replica. It is safe for concurrent use.
type mailers struct {
	mu      sync.Mutex
	running int
	max     int
	events  []mailerEvent
	notify  chan struct{} // closed and replaced at every event
}

func (m *mailers) add(op, replica string, tok uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch op {
	case "start":
		m.running++
		m.max = max(m.max, m.running)
	case "stop":
		m.running--
	}
	m.events = append(m.events, mailerEvent{op: op, replica: replica, token: tok, at: time.Now()})
	close(m.notify)
	m.notify = make(chan struct{})
}

// build is the build function of replica: a service that records its start
// and stop with the term's token.
func (m *mailers) build(replica string) func(context.Context) (*core.Base, error) {
	return func(ctx context.Context) (*core.Base, error) {
		tok, ok := leader.Token(ctx)
		if !ok {
			return nil, fmt.Errorf("%s: no token in build's context", replica)
		}
		return core.NewService(core.Name("mailer-"+replica), core.Logger(coretest.Quiet()),
			core.OnStart(func(context.Context) error { m.add("start", replica, tok); return nil }),
			core.OnStop(func(context.Context) error { m.add("stop", replica, tok); return nil })), nil
	}
}

// waitStarts waits until n services started, bounded by ctx, and returns
// the events so far.
func (m *mailers) waitStarts(t *testing.T, ctx context.Context, n int) []mailerEvent {
	t.Helper()
	for {
		m.mu.Lock()
		evs, ch := slices.Clone(m.events), m.notify
		m.mu.Unlock()
		starts := slices.DeleteFunc(slices.Clone(evs), func(e mailerEvent) bool { return e.op != "start" })
		if len(starts) >= n {
			return evs
		}
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatalf("starts: got %v, want %d", evs, n)
		}
	}
}

// parent is a replica of a service with a leader.Service requirement.
type parent struct {
	name   string
	client *clientv3.Client
	svc    *core.Base
}

func startParent(t *testing.T, srv *etcdtest.Server, name string, m *mailers) *parent {
	t.Helper()
	c := etcdtest.NewClient(t, srv.Endpoints())
	e := etcd.NewElector(c, key, etcd.TTL(ttl), etcd.Value(name))
	p := &parent{name: name, client: c, svc: core.NewService(core.Name(name), core.Logger(coretest.Quiet()),
		leader.Service(e, m.build(name), leader.Name("mailer")))}
	startBounded(t, p.svc)
	t.Cleanup(func() { p.stop(t) })
	return p
}

func (p *parent) stop(t *testing.T) {
	t.Helper()
	stopBounded(t, p.svc)
}

// role is the status leader.RoleStatus of p's requirement's service, as
// the probes show it.
func (p *parent) role() string {
	for _, d := range p.svc.Dependencies() {
		b, ok := d.Service.(*core.Base)
		if !ok || d.Requirement.Name() != "mailer" {
			continue
		}
		for _, s := range b.Statuses() {
			if s.Name == leader.RoleStatus {
				return s.Text
			}
		}
	}
	return ""
}

// waitRoles waits, bounded by ctx, until the leader's role is "leader
// (token tok)" and every other replica's "standby". The role is set just
// after the service started, with no event to wait for: this polls.
func waitRoles(t *testing.T, ctx context.Context, ps []*parent, lead string, tok uint64) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		var wrong []string
		for _, p := range ps {
			want := "standby"
			if p.name == lead {
				want = fmt.Sprintf("leader (token %d)", tok)
			}
			if got := p.role(); got != want {
				wrong = append(wrong, fmt.Sprintf("%s: got %q, want %q", p.name, got, want))
			}
		}
		if len(wrong) == 0 {
			return
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("roles: %s", strings.Join(wrong, "; "))
		}
	}
}

// leader.Service on three replicas: the built service runs on one replica
// only; when the leader's client closes, and when the leader's parent
// stops, the old leader's instance is stopped before the new leader's
// starts; the role shows "leader (token N)" on the leader and "standby"
// on the others.
func TestLeaderServiceRunsOnOneReplicaAndShowsTheRole(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	m := &mailers{notify: make(chan struct{})}
	var ps []*parent
	byName := map[string]*parent{}
	for i := range 3 {
		p := startParent(t, srv, fmt.Sprintf("r%d", i), m)
		ps = append(ps, p)
		byName[p.name] = p
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	evs := m.waitStarts(t, ctx, 1)
	first := evs[len(evs)-1]
	waitRoles(t, ctx, ps, first.replica, first.token)

	closed := time.Now()
	if err := byName[first.replica].client.Close(); err != nil {
		t.Fatalf("Close %s's client: %v", first.replica, err)
	}
	evs = m.waitStarts(t, ctx, 2)
	second := evs[len(evs)-1]
	t.Logf("leader.Service, client closed: %s started %v after the loss", second.replica,
		second.at.Sub(closed).Round(time.Millisecond))
	if d := second.at.Sub(closed); d > ttl+time.Second {
		t.Errorf("failover: got %v, want within TTL + 1s", d)
	}
	waitRoles(t, ctx, ps, second.replica, second.token)

	third := byName[second.replica]
	third.stop(t)
	stopped := time.Now()
	evs = m.waitStarts(t, ctx, 3)
	last := evs[len(evs)-1]
	t.Logf("leader.Service, parent stopped: %s started %v after Stop returned", last.replica,
		last.at.Sub(stopped).Round(time.Millisecond))
	var rest []*parent
	for _, p := range ps {
		if p != third {
			rest = append(rest, p)
		}
	}
	waitRoles(t, ctx, rest, last.replica, last.token)
	for _, p := range rest { // as the probes show it
		want := fmt.Sprintf("[+]%s/mailer/leader ok: standby", p.name)
		if p.name == last.replica {
			want = fmt.Sprintf("[+]%s/mailer/leader ok: leader (token %d)", p.name, last.token)
		}
		w := httptest.NewRecorder()
		health.Handler(p.svc).ServeHTTP(w, httptest.NewRequest("GET", "/readyz?verbose", nil))
		if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), want+"\n") {
			t.Errorf("GET /readyz?verbose of %s: got %d\n%s\nwant 200 with the line %q", p.name, w.Code, w.Body, want)
		}
	}

	m.mu.Lock()
	maxRunning, got := m.max, slices.Clone(m.events)
	m.mu.Unlock()
	want := []string{"start " + first.replica, "stop " + first.replica, "start " + second.replica,
		"stop " + second.replica, "start " + last.replica}
	var ops []string
	for _, e := range got {
		ops = append(ops, e.op+" "+e.replica)
	}
	if !slices.Equal(ops, want) {
		t.Errorf("starts and stops: got %v, want %v (each stopped before the next started)", got, want)
	}
	if maxRunning != 1 {
		t.Errorf("services running at once: got at most %d, want 1 (%v)", maxRunning, got)
	}
	if !(first.token < second.token && second.token < last.token) {
		t.Errorf("tokens: got %d, %d, %d; want strictly increasing", first.token, second.token, last.token)
	}
	if len(got) == 5 && !got[1].at.Before(got[2].at) {
		t.Errorf("old leader's stop at %v, new leader's start at %v: want the stop first", got[1].at, got[2].at)
	}
}
