package etcd_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/coreservice/coreservice/contrib/etcd"
	"github.com/coreservice/coreservice/contrib/etcd/internal/etcdtest"
	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/internal/coretest"
	"github.com/coreservice/coreservice/leader"
	"github.com/coreservice/coreservice/task"
)

// The end-to-end tests of this file run three replicas, each a core
// service with its own etcd client and Elector on one key, against the
// embedded etcd, with a periodic task under task.Leader.

// taskRun is one run of the leader task: who ran it, with which token, and
// from when to when (end is zero while it runs).
type taskRun struct {
	replica    string
	token      uint64
	hasToken   bool
	begin, end time.Time
	cause      error // context.Cause of the run's context, if it ended the run
}

// runLog records the runs of the leader task of every replica. It is safe
// for concurrent use.
type runLog struct {
	mu     sync.Mutex
	runs   []taskRun
	notify chan struct{} // closed and replaced at every change
}

func newRunLog() *runLog { return &runLog{notify: make(chan struct{})} }

// fn is the task function of replica: a run lasts d, unless its context
// ends first.
func (l *runLog) fn(replica string, d time.Duration) func(context.Context) error {
	return func(ctx context.Context) error {
		tok, ok := leader.Token(ctx)
		l.mu.Lock()
		i := len(l.runs)
		l.runs = append(l.runs, taskRun{replica: replica, token: tok, hasToken: ok, begin: time.Now()})
		l.changedLocked()
		l.mu.Unlock()
		timer := time.NewTimer(d)
		defer timer.Stop()
		var cause error
		select {
		case <-timer.C:
		case <-ctx.Done():
			cause = context.Cause(ctx)
		}
		l.mu.Lock()
		l.runs[i].end, l.runs[i].cause = time.Now(), cause
		l.changedLocked()
		l.mu.Unlock()
		if cause != nil {
			return ctx.Err()
		}
		return nil
	}
}

func (l *runLog) changedLocked() {
	close(l.notify)
	l.notify = make(chan struct{})
}

func (l *runLog) snapshot() []taskRun {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.runs)
}

// wait returns the first run recorded that matches match, waiting for one
// until ctx ends (then it fails t, naming what).
func (l *runLog) wait(t *testing.T, ctx context.Context, what string, match func(taskRun) bool) taskRun {
	t.Helper()
	for {
		l.mu.Lock()
		ch := l.notify
		i := slices.IndexFunc(l.runs, match)
		var r taskRun
		if i >= 0 {
			r = l.runs[i]
		}
		l.mu.Unlock()
		if i >= 0 {
			return r
		}
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatalf("%s: none within the test's bound (runs: %v)", what, l.snapshot())
		}
	}
}

// waitN waits until n runs that match match are recorded, bounded by ctx.
func (l *runLog) waitN(t *testing.T, ctx context.Context, what string, n int, match func(taskRun) bool) {
	t.Helper()
	for {
		l.mu.Lock()
		ch := l.notify
		got := 0
		for _, r := range l.runs {
			if match(r) {
				got++
			}
		}
		l.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatalf("%s: got %d runs, want %d (runs: %v)", what, got, n, l.snapshot())
		}
	}
}

func (r taskRun) String() string {
	end := "running"
	if !r.end.IsZero() {
		end = r.end.Format("15:04:05.000")
	}
	return fmt.Sprintf("%s#%d[%s..%s]", r.replica, r.token, r.begin.Format("15:04:05.000"), end)
}

// node is one replica: a service with its own client and elector.
type node struct {
	name    string
	client  *clientv3.Client
	elector *etcd.Elector
	svc     *core.Base
	logs    *coretest.Logs
}

// taskCadence is the delay between two runs of a replica's leader task.
const taskCadence = 20 * time.Millisecond

// startTaskNode starts replica name: a service with a leader task whose
// runs, recorded in runs, last runFor, with a client of endpoints; elect
// wraps its elector (nil: none).
// t.Cleanup stops it (if the test has not) and closes its client.
func startTaskNode(t *testing.T, endpoints []string, name string, runs *runLog, lease, runFor time.Duration,
	elect func(*etcd.Elector) leader.Elector) *node {
	t.Helper()
	c := etcdtest.NewClient(t, endpoints)
	e := etcd.NewElector(c, key, etcd.TTL(lease), etcd.Value(name))
	var el leader.Elector = e
	if elect != nil {
		el = elect(e)
	}
	n := &node{name: name, client: c, elector: e, logs: coretest.NewLogs()}
	n.svc = core.NewService(core.Name(name), core.Logger(n.logs.Logger()),
		task.Func("tick", runs.fn(name, runFor), task.Every(taskCadence), task.Leader(el)))
	startBounded(t, n.svc)
	t.Cleanup(func() { n.stop(t) })
	return n
}

// stop stops n's service, bounded, and fails t on an error.
func (n *node) stop(t *testing.T) {
	t.Helper()
	stopBounded(t, n.svc)
}

// status returns the text of n's status name, or "".
func (n *node) status(name string) string {
	for _, s := range n.svc.Statuses() {
		if s.Name == name {
			return s.Text
		}
	}
	return ""
}

// revokeLeader revokes, from the client admin, the lease of the election's
// leader key, as an operator would.
func revokeLeader(t *testing.T, admin *clientv3.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	resp, err := admin.Get(ctx, key+"/", append(clientv3.WithFirstCreate(), clientv3.WithPrefix())...)
	if err != nil || len(resp.Kvs) == 0 {
		t.Fatalf("Get leader key: got %v, %v; want the key", resp, err)
	}
	if _, err := admin.Revoke(ctx, clientv3.LeaseID(resp.Kvs[0].Lease)); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
}

// checkOneAtATime fails t if two runs overlap, a run has no token, or the
// tokens do not strictly increase from term to term; it returns the terms'
// tokens in order.
func checkOneAtATime(t *testing.T, runs []taskRun) []uint64 {
	t.Helper()
	slices.SortFunc(runs, func(a, b taskRun) int { return a.begin.Compare(b.begin) })
	var tokens []uint64
	var last taskRun // the run that ends last among those before
	for i, r := range runs {
		if !r.hasToken {
			t.Errorf("run %v: leader.Token: got none, want the term's token", r)
		}
		if r.end.IsZero() {
			t.Errorf("run %v: still running after every replica stopped", r)
		}
		if i > 0 && r.begin.Before(last.end) {
			t.Errorf("run %v began %v before run %v ended: got two runs at once, want one",
				r, last.end.Sub(r.begin), last)
		}
		if r.end.After(last.end) {
			last = r
		}
		switch {
		case len(tokens) == 0 || r.token > tokens[len(tokens)-1]:
			tokens = append(tokens, r.token)
		case r.token < tokens[len(tokens)-1]:
			t.Errorf("run %v: token %d after a term with token %d: want tokens strictly increasing across terms",
				r, r.token, tokens[len(tokens)-1])
		}
	}
	return tokens
}

// Exactly one replica runs the task at any moment, over many terms forced
// by the leader's client closing or its service stopping, and the fencing
// tokens strictly increase from term to term. (A lease revoked by someone
// else: TestLeaderTaskFailsOverWhenTheLeaderSessionIsRevoked.)
func TestLeaderTaskRunsOnOneReplicaAtATimeWithIncreasingTokens(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	runs := newRunLog()
	nodes := map[string]*node{}
	for i := range 3 {
		n := startTaskNode(t, srv.Endpoints(), fmt.Sprintf("r%d", i), runs, ttl, 100*time.Millisecond, nil)
		nodes[n.name] = n
	}
	ctx, cancel := context.WithTimeout(t.Context(), 40*time.Second)
	defer cancel()
	cur := runs.wait(t, ctx, "first run", func(taskRun) bool { return true })
	forces := []string{"stop", "close", "stop", "stop", "close", "stop"}
	spare := 0
	for i, force := range forces {
		// Let the term run a few times before it is forced to end.
		runs.waitN(t, ctx, fmt.Sprintf("term %d's third run", i), 3, func(r taskRun) bool { return r.token == cur.token })
		old := nodes[cur.replica]
		forced := time.Now()
		switch force {
		case "close":
			if err := old.client.Close(); err != nil {
				t.Fatalf("Close %s's client: %v", old.name, err)
			}
		case "stop":
			old.stop(t)
		}
		next := runs.wait(t, ctx, fmt.Sprintf("term %d (after %s of %s)", i+1, force, old.name),
			func(r taskRun) bool { return r.token > cur.token })
		t.Logf("%s of %s's term %d: %s leads with token %d after %v", force, old.name, cur.token,
			next.replica, next.token, next.begin.Sub(forced).Round(time.Millisecond))
		if force == "close" {
			old.stop(t)
		}
		delete(nodes, old.name) // replace the dead replica
		spare++
		n := startTaskNode(t, srv.Endpoints(), fmt.Sprintf("s%d", spare), runs, ttl, 100*time.Millisecond, nil)
		nodes[n.name] = n
		cur = next
	}
	// The standbys first, then the leader: no term begins after the last
	// forced one.
	for _, n := range nodes {
		if n.name != cur.replica {
			n.stop(t)
		}
	}
	nodes[cur.replica].stop(t)
	all := runs.snapshot()
	tokens := checkOneAtATime(t, all)
	if len(tokens) != len(forces)+1 {
		t.Errorf("terms: got %d (tokens %v), want %d", len(tokens), tokens, len(forces)+1)
	}
	who := map[string]bool{}
	for _, r := range all {
		who[r.replica] = true
	}
	t.Logf("%d runs by %d replicas over %d terms", len(all), len(who), len(tokens))
}

// failover starts three replicas whose runs last until cancelled, kills
// the leader with kill, and checks that another replica leads within TTL +
// 1 s, after the old leader's run was cancelled by the loss.
// ordered says whether the design orders the two: when it does not (a
// lease revoked by someone else, see the package doc's Limits), the order
// seen is logged, not checked.
func failover(t *testing.T, how string, ordered bool, kill func(old *node, admin *clientv3.Client)) {
	srv := etcdtest.Start(t)
	admin := srv.Client(t)
	runs := newRunLog()
	nodes := map[string]*node{}
	for i := range 3 {
		n := startTaskNode(t, srv.Endpoints(), fmt.Sprintf("r%d", i), runs, ttl, time.Hour, nil)
		nodes[n.name] = n
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	first := runs.wait(t, ctx, "first run", func(taskRun) bool { return true })
	old := nodes[first.replica]
	killed := time.Now()
	kill(old, admin)
	next := runs.wait(t, ctx, "the new leader's first run", func(r taskRun) bool { return r.token > first.token })
	took := next.begin.Sub(killed)
	t.Logf("failover (%s): %s's first run began %v after the loss (TTL %v)", how, next.replica, took.Round(time.Millisecond), ttl)
	if took > ttl+time.Second {
		t.Errorf("failover (%s): got %v, want within TTL + 1s = %v", how, took, ttl+time.Second)
	}
	if next.replica == old.name {
		t.Errorf("new leader: got %s, the old one; want another replica", next.replica)
	}
	for _, n := range nodes {
		n.stop(t)
	}
	all := runs.snapshot()
	i := slices.IndexFunc(all, func(r taskRun) bool { return r.replica == first.replica && r.token == first.token })
	oldRun := all[i]
	if !errors.Is(oldRun.cause, leader.ErrLost) {
		t.Errorf("old leader's run ended by: got %v, want a cause matching leader.ErrLost", oldRun.cause)
	}
	if oldRun.end.IsZero() {
		t.Fatalf("old leader's run %v: not ended after every replica stopped", oldRun)
	}
	t.Logf("failover (%s): old run cancelled %v after the loss, %v before the new run began",
		how, oldRun.end.Sub(killed).Round(time.Millisecond), next.begin.Sub(oldRun.end).Round(time.Millisecond))
	if !ordered {
		return
	}
	if !oldRun.end.Before(next.begin) {
		t.Errorf("old leader's run %v, new leader's first run %v: want the old one cancelled before the new one began",
			oldRun, next)
	}
	checkOneAtATime(t, all)
}

// The leader's client is closed: another replica leads within TTL + 1 s,
// once the old leader's run was cancelled.
func TestLeaderTaskFailsOverWhenTheLeaderClientCloses(t *testing.T) {
	t.Parallel()
	failover(t, "client closed", true, func(old *node, _ *clientv3.Client) {
		if err := old.client.Close(); err != nil {
			t.Fatalf("Close %s's client: %v", old.name, err)
		}
	})
}

// The leader's session (its lease) is revoked by someone else: another
// replica leads within TTL + 1 s, and the old leader's run was cancelled
// with leader.ErrLost before the new leader's first run began. The two see
// the revocation through independent watches; the successor of a leader
// that did not resign waits TTL/8 before it leads (the package doc's
// Limits), which orders them.
func TestLeaderTaskFailsOverWhenTheLeaderSessionIsRevoked(t *testing.T) {
	t.Parallel()
	failover(t, "session revoked", true, func(_ *node, admin *clientv3.Client) { revokeLeader(t, admin) })
}

// The parent's Stop resigns at once: with a TTL of 10 s, the next
// replica's first run begins well under the TTL after Stop returned.
func TestLeaderTaskStopResignsAtOnce(t *testing.T) {
	t.Parallel()
	const lease = 10 * time.Second
	srv := etcdtest.Start(t)
	runs := newRunLog()
	nodes := map[string]*node{}
	for i := range 3 {
		n := startTaskNode(t, srv.Endpoints(), fmt.Sprintf("r%d", i), runs, lease, time.Hour, nil)
		nodes[n.name] = n
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	first := runs.wait(t, ctx, "first run", func(taskRun) bool { return true })
	old := nodes[first.replica]
	old.stop(t)
	stopped := time.Now()
	next := runs.wait(t, ctx, "the next leader's first run", func(r taskRun) bool { return r.token > first.token })
	took := next.begin.Sub(stopped)
	t.Logf("stop/resign: %s's first run began %v after %s's Stop returned (TTL %v)",
		next.replica, took.Round(time.Millisecond), old.name, lease)
	if took >= lease/2 {
		t.Errorf("next leader's first run after Stop: got %v, want well under the TTL %v (< %v): Stop did not resign",
			took, lease, lease/2)
	}
	all := runs.snapshot()
	i := slices.IndexFunc(all, func(r taskRun) bool { return r.replica == first.replica && r.token == first.token })
	if all[i].end.IsZero() || all[i].end.After(stopped) {
		t.Errorf("stopped leader's run %v: want it ended before Stop returned", all[i])
	}
}

// countingElector counts the failed campaigns of the real elector it wraps.
type countingElector struct {
	*etcd.Elector
	mu       sync.Mutex
	failures int
	notify   chan struct{} // closed and replaced at every failure
}

func (c *countingElector) Campaign(ctx context.Context) (leader.Leadership, error) {
	l, err := c.Elector.Campaign(ctx)
	if err != nil {
		c.mu.Lock()
		c.failures++
		close(c.notify)
		c.notify = make(chan struct{})
		c.mu.Unlock()
	}
	return l, err
}

// waitFailures waits until n campaigns failed, bounded by ctx.
func (c *countingElector) waitFailures(t *testing.T, ctx context.Context, n int) {
	t.Helper()
	for {
		c.mu.Lock()
		got, ch := c.failures, c.notify
		c.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatalf("failed campaigns: got %d, want %d", got, n)
		}
	}
}

// etcd is unreachable when the service starts: Start returns nil at once,
// the replica stands by (status "standby", no run) with one WARN "campaign
// failed; standing by" for several failed campaigns, and it leads once
// etcd is back.
func TestLeaderTaskStandsByWhileEtcdIsDownThenLeads(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	srv.Stop()
	runs := newRunLog()
	counter := &countingElector{notify: make(chan struct{})}
	began := time.Now()
	n := startTaskNode(t, srv.Endpoints(), "r0", runs, ttl, 100*time.Millisecond, func(e *etcd.Elector) leader.Elector {
		counter.Elector = e
		return counter
	})
	started := time.Since(began)
	t.Logf("etcd down: Start returned nil after %v", started.Round(time.Millisecond))
	if started > ttl {
		t.Errorf("Start with etcd down: took %v, want it not to wait for etcd (< TTL %v)", started, ttl)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	counter.waitFailures(t, ctx, 2)
	if got := n.svc.State(); got != core.StateRunning {
		t.Errorf("state with etcd down: got %v, want Running", got)
	}
	if got := n.status("leader tick"); got != "standby" {
		t.Errorf(`status "leader tick" with etcd down: got %q, want "standby"`, got)
	}
	if got := runs.snapshot(); len(got) != 0 {
		t.Errorf("runs with etcd down: got %v, want none", got)
	}
	warns := n.logs.Find("campaign failed; standing by")
	if len(warns) != 1 {
		t.Errorf(`"campaign failed; standing by" records after 2 failed campaigns: got %d, want 1 (rate-limited)`, len(warns))
	}
	for _, w := range warns {
		if w.Level != slog.LevelWarn || w.Attrs["error"] == "" {
			t.Errorf("standby record: got %v %v, want WARN with the error", w.Level, w.Attrs)
		}
		t.Logf("standby record: %s %q %v", w.Level, w.Message, w.Attrs)
	}

	srv.Restart()
	back := time.Now()
	r := runs.wait(t, ctx, "first run once etcd is back", func(taskRun) bool { return true })
	t.Logf("etcd back: first run %v after the restart", r.begin.Sub(back).Round(time.Millisecond))
	if got := n.status("leader tick"); !strings.HasPrefix(got, "leader (token ") {
		t.Errorf(`status "leader tick" once leading: got %q, want "leader (token N)"`, got)
	}
	if recs := n.logs.Find("campaign succeeded after failures"); len(recs) != 1 {
		t.Errorf(`"campaign succeeded after failures" records: got %d, want 1`, len(recs))
	}
}

// The leader is cut off from etcd (its connection stays open but carries
// nothing), the case the elector's timing argument is for: its run is
// cancelled (leader.ErrLost, etcd.ErrNotRenewed) before another replica's
// first run begins, and that one begins within TTL + 1 s of the cut.
func TestLeaderTaskPartitionedLeaderStopsBeforeAnotherRuns(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	px := srv.Proxy(t)
	runs := newRunLog()
	old := startTaskNode(t, px.Endpoints(), "r0", runs, ttl, time.Hour, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	first := runs.wait(t, ctx, "r0's first run", func(taskRun) bool { return true })
	nodes := []*node{old}
	for i := 1; i < 3; i++ {
		nodes = append(nodes, startTaskNode(t, srv.Endpoints(), fmt.Sprintf("r%d", i), runs, ttl, time.Hour, nil))
	}
	cut := time.Now()
	px.Partition()
	next := runs.wait(t, ctx, "the new leader's first run", func(r taskRun) bool { return r.token > first.token })
	took := next.begin.Sub(cut)
	if took > ttl+time.Second {
		t.Errorf("failover (partition): got %v, want within TTL + 1s = %v", took, ttl+time.Second)
	}
	px.Heal()
	for _, n := range nodes {
		n.stop(t)
	}
	all := runs.snapshot()
	oldRun := all[slices.IndexFunc(all, func(r taskRun) bool { return r.token == first.token })]
	if oldRun.end.IsZero() {
		t.Fatalf("partitioned leader's run %v: not ended after every replica stopped", oldRun)
	}
	t.Logf("failover (partition): old run cancelled %v after the cut; %s's first run began %v after the cut",
		oldRun.end.Sub(cut).Round(time.Millisecond), next.replica, took.Round(time.Millisecond))
	if !oldRun.end.Before(next.begin) {
		t.Errorf("partitioned leader's run %v, new leader's first run %v: want the old one cancelled first", oldRun, next)
	}
	if !errors.Is(oldRun.cause, leader.ErrLost) || !errors.Is(oldRun.cause, etcd.ErrNotRenewed) {
		t.Errorf("partitioned leader's run ended by: got %v, want leader.ErrLost and etcd.ErrNotRenewed", oldRun.cause)
	}
	checkOneAtATime(t, all)
}

// boundedCtx is the bound of a test's waits on etcd: 10 s.
func boundedCtx(t *testing.T) (context.Context, context.CancelFunc) {
	return context.WithTimeout(t.Context(), 10*time.Second)
}

// startBounded starts svc, bounded, and fails t on an error.
func startBounded(t *testing.T, svc *core.Base) {
	t.Helper()
	ctx, cancel := boundedCtx(t)
	defer cancel()
	if err := svc.Start(ctx); err != nil {
		t.Fatalf("%s: Start: got %v, want nil", svc.Name(), err)
	}
}

// stopBounded stops svc, bounded (also once the test's context is done),
// and fails t on an error.
func stopBounded(t *testing.T, svc *core.Base) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := svc.Stop(ctx); err != nil {
		t.Errorf("%s: Stop: got %v, want nil", svc.Name(), err)
	}
}
