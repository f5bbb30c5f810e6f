package etcd_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/coreservice/coreservice/contrib/etcd"
	"github.com/coreservice/coreservice/contrib/etcd/internal/etcdtest"
	"github.com/coreservice/coreservice/leader"
)

// ttl is the lease TTL of the tests: etcd's minimum, to keep them short.
const ttl = 2 * time.Second

const key = "/coreservice/test/election"

// replica is one elector with its own client.
type replica struct {
	name    string
	client  *clientv3.Client
	elector *etcd.Elector
}

func newReplica(t *testing.T, name string, endpoints []string) *replica {
	t.Helper()
	c := etcdtest.NewClient(t, endpoints)
	e := etcd.NewElector(c, key, etcd.TTL(ttl), etcd.Value(name))
	if err := e.Validate(); err != nil {
		t.Fatalf("Validate: got %v, want nil", err)
	}
	return &replica{name: name, client: c, elector: e}
}

// won is the outcome of a Campaign, and when it returned.
type won struct {
	r   *replica
	l   leader.Leadership
	err error
	at  time.Time
}

// campaign runs r's Campaign in a goroutine that the test waits for
// (t.Cleanup cancels ctx and waits), and sends its outcome on the result.
func campaign(t *testing.T, ctx context.Context, r *replica, out chan<- won) {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		l, err := r.elector.Campaign(ctx)
		out <- won{r: r, l: l, err: err, at: time.Now()}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
}

// mustLead campaigns with r alone and returns its Leadership, resigned by
// t.Cleanup.
func mustLead(t *testing.T, r *replica) leader.Leadership {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	l, err := r.elector.Campaign(ctx)
	if err != nil {
		t.Fatalf("%s: Campaign: got %v, want nil", r.name, err)
	}
	t.Cleanup(func() { resign(t, l) })
	return l
}

func resign(t *testing.T, l leader.Leadership) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := l.Resign(ctx); err != nil {
		t.Errorf("Resign: got %v, want nil", err)
	}
}

// next waits up to within for the first Campaign outcome on ch, which must
// be a win; it is resigned by t.Cleanup.
func next(t *testing.T, ch <-chan won, within time.Duration) won {
	t.Helper()
	select {
	case w := <-ch:
		if w.err != nil {
			t.Fatalf("%s: Campaign: got %v, want a Leadership", w.r.name, w.err)
		}
		t.Cleanup(func() { resign(t, w.l) })
		return w
	case <-time.After(within):
		t.Fatalf("no replica won within %v", within)
		return won{}
	}
}

// lostWithin waits up to within for l's Lost, and returns when it was seen.
func lostWithin(t *testing.T, l leader.Leadership, within time.Duration) time.Time {
	t.Helper()
	select {
	case <-l.Lost():
		return time.Now()
	case <-time.After(within):
		t.Fatalf("Lost: not closed within %v", within)
		return time.Time{}
	}
}

// interval is one term as its replica saw it.
type interval struct {
	replica    string
	token      uint64
	start, end time.Time
}

// Three replicas campaign in turn over many terms; each works for a while
// then resigns. No two terms overlap, and tokens strictly increase.
func TestAtMostOneLeadsAtAnyMomentAndTokensIncrease(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	const terms = 12
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()

	var (
		mu        sync.Mutex
		intervals []interval
		count     atomic.Int32
		wg        sync.WaitGroup
		allDone   = make(chan struct{})
	)
	for i := range 3 {
		r := newReplica(t, fmt.Sprintf("r%d", i), srv.Endpoints())
		wg.Go(func() {
			for ctx.Err() == nil {
				l, err := r.elector.Campaign(ctx)
				if err != nil {
					if ctx.Err() == nil {
						t.Errorf("%s: Campaign: got %v, want nil", r.name, err)
					}
					return
				}
				iv := interval{replica: r.name, token: l.Token(), start: time.Now()}
				select { // the term's work
				case <-time.After(30 * time.Millisecond):
				case <-l.Lost():
					t.Errorf("%s: lost during its work: %v", r.name, l.Err())
				}
				iv.end = time.Now()
				mu.Lock()
				intervals = append(intervals, iv)
				mu.Unlock()
				rctx, rcancel := context.WithTimeout(context.Background(), 5*time.Second)
				if err := l.Resign(rctx); err != nil {
					t.Errorf("%s: Resign: got %v, want nil", r.name, err)
				}
				rcancel()
				if err := l.Err(); err != nil {
					t.Errorf("%s: Err after Resign: got %v, want nil", r.name, err)
				}
				if count.Add(1) == terms {
					close(allDone)
				}
			}
		})
	}
	select {
	case <-allDone:
	case <-time.After(20 * time.Second):
		t.Errorf("got %d terms in 20s, want %d", count.Load(), terms)
	}
	cancel()
	wg.Wait()

	slices.SortFunc(intervals, func(a, b interval) int { return a.start.Compare(b.start) })
	who := map[string]bool{}
	for i, iv := range intervals {
		who[iv.replica] = true
		if i == 0 {
			continue
		}
		prev := intervals[i-1]
		if iv.start.Before(prev.end) {
			t.Errorf("term %d (%s) started %v before term %d (%s) ended: overlap",
				i, iv.replica, prev.end.Sub(iv.start), i-1, prev.replica)
		}
		if iv.token <= prev.token {
			t.Errorf("term %d token: got %d, want > %d (term %d's)", i, iv.token, prev.token, i-1)
		}
	}
	if len(intervals) < terms || len(who) < 2 {
		t.Errorf("got %d terms by %d replicas, want >= %d terms by >= 2 replicas", len(intervals), len(who), terms)
	}
}

// The leader is cut off from etcd (its connection stays open but carries
// nothing), while the other replicas still reach it: the leader gives up
// (Lost, ErrNotRenewed) before its lease expires, so before another replica
// wins; the winner's token is greater.
func TestPartitionedLeaderGivesUpBeforeAnotherWins(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	px := srv.Proxy(t)
	old := newReplica(t, "r0", px.Endpoints())
	l := mustLead(t, old)

	wins := make(chan won, 2)
	for i := 1; i < 3; i++ {
		campaign(t, t.Context(), newReplica(t, fmt.Sprintf("r%d", i), srv.Endpoints()), wins)
	}
	cut := time.Now()
	px.Partition()
	lostAt := lostWithin(t, l, ttl)
	if err := l.Err(); !errors.Is(err, etcd.ErrNotRenewed) {
		t.Errorf("Err: got %v, want ErrNotRenewed", err)
	}
	w := next(t, wins, ttl+time.Second)
	t.Logf("partitioned leader: Lost %v after the cut; %s won %v after the cut (TTL %v)",
		lostAt.Sub(cut).Round(time.Millisecond), w.r.name, w.at.Sub(cut).Round(time.Millisecond), ttl)
	if !lostAt.Before(w.at) {
		t.Errorf("old leader's Lost at +%v, %s won at +%v: want Lost first", lostAt.Sub(cut), w.r.name, w.at.Sub(cut))
	}
	if w.l.Token() <= l.Token() {
		t.Errorf("new token: got %d, want > %d", w.l.Token(), l.Token())
	}
	px.Heal()
}

// Someone revokes the leader's lease: its Lost closes with the reason, and
// another replica leads within TTL + 1 s.
func TestRevokedLeaseEndsTheTermAndAnotherLeads(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	l := mustLead(t, newReplica(t, "r0", srv.Endpoints()))
	wins := make(chan won, 2)
	for i := 1; i < 3; i++ {
		campaign(t, t.Context(), newReplica(t, fmt.Sprintf("r%d", i), srv.Endpoints()), wins)
	}

	admin := srv.Client(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	resp, err := admin.Get(ctx, key+"/", append(clientv3.WithFirstCreate(), clientv3.WithPrefix())...)
	if err != nil || len(resp.Kvs) == 0 {
		t.Fatalf("Get leader key: got %v, %v; want the key", resp, err)
	}
	if got, want := string(resp.Kvs[0].Value), "r0"; got != want {
		t.Errorf("leader key's value: got %q, want %q (etcd.Value)", got, want)
	}
	if got, want := resp.Kvs[0].CreateRevision, int64(l.Token()); got != want {
		t.Fatalf("leader key's create revision: got %d, want the token %d", got, want)
	}
	revoked := time.Now()
	if _, err := admin.Revoke(ctx, clientv3.LeaseID(resp.Kvs[0].Lease)); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	lostAt := lostWithin(t, l, ttl+time.Second)
	if err := l.Err(); !errors.Is(err, etcd.ErrKeyDeleted) && !errors.Is(err, etcd.ErrSessionEnded) {
		t.Errorf("Err: got %v, want ErrKeyDeleted or ErrSessionEnded", err)
	}
	w := next(t, wins, ttl+time.Second)
	t.Logf("revoked: Lost after %v (%v); %s won after %v",
		lostAt.Sub(revoked).Round(time.Millisecond), l.Err(), w.r.name, w.at.Sub(revoked).Round(time.Millisecond))
	if w.l.Token() <= l.Token() {
		t.Errorf("new token: got %d, want > %d", w.l.Token(), l.Token())
	}
}

// The leader's client is closed: its Lost closes at once (well before the
// TTL), and another replica leads within TTL + 1 s, after the old Lost.
func TestClosedClientLosesLocallyBeforeAnotherLeads(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	old := newReplica(t, "r0", srv.Endpoints())
	l := mustLead(t, old)
	wins := make(chan won, 2)
	for i := 1; i < 3; i++ {
		campaign(t, t.Context(), newReplica(t, fmt.Sprintf("r%d", i), srv.Endpoints()), wins)
	}
	closed := time.Now()
	if err := old.client.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	lostAt := lostWithin(t, l, ttl)
	if err := l.Err(); !errors.Is(err, etcd.ErrSessionEnded) {
		t.Errorf("Err: got %v, want ErrSessionEnded", err)
	}
	w := next(t, wins, ttl+time.Second)
	t.Logf("closed client: Lost after %v; %s won after %v",
		lostAt.Sub(closed).Round(time.Millisecond), w.r.name, w.at.Sub(closed).Round(time.Millisecond))
	if !lostAt.Before(w.at) {
		t.Errorf("old leader's Lost at +%v, %s won at +%v: want Lost first", lostAt.Sub(closed), w.r.name, w.at.Sub(closed))
	}
}

// etcd stops: the leader gives up locally (ErrNotRenewed) before the TTL.
func TestStoppedEtcdLosesLocallyBeforeTTL(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	l := mustLead(t, newReplica(t, "r0", srv.Endpoints()))
	stopped := time.Now()
	srv.Stop()
	lostAt := lostWithin(t, l, ttl)
	if err := l.Err(); !errors.Is(err, etcd.ErrNotRenewed) && !errors.Is(err, etcd.ErrSessionEnded) {
		t.Errorf("Err: got %v, want ErrNotRenewed or ErrSessionEnded", err)
	}
	t.Logf("etcd stopped: Lost after %v: %v", lostAt.Sub(stopped).Round(time.Millisecond), l.Err())
}

// Resign lets the next replica lead at once, well under the TTL.
func TestResignLetsTheNextLeadAtOnce(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	l := mustLead(t, newReplica(t, "r0", srv.Endpoints()))
	wins := make(chan won, 2)
	for i := 1; i < 3; i++ {
		campaign(t, t.Context(), newReplica(t, fmt.Sprintf("r%d", i), srv.Endpoints()), wins)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	resigned := time.Now()
	if err := l.Resign(ctx); err != nil {
		t.Fatalf("Resign: got %v, want nil", err)
	}
	select {
	case <-l.Lost():
	default:
		t.Errorf("Lost: open after Resign returned, want closed")
	}
	if err := l.Err(); err != nil {
		t.Errorf("Err after Resign: got %v, want nil", err)
	}
	if err := l.Resign(ctx); err != nil {
		t.Errorf("second Resign: got %v, want nil", err)
	}
	// The resign is recorded, so that the successor leads without the
	// settling wait of a takeover (TTL/8).
	rec, err := srv.Client(t).Get(ctx, key+"!resigned")
	if err != nil || len(rec.Kvs) != 1 || string(rec.Kvs[0].Value) != strconv.FormatUint(l.Token(), 10) {
		t.Errorf("resign record: got %v, %v, want the resigned term's token %d", rec, err, l.Token())
	}
	w := next(t, wins, ttl/2)
	t.Logf("resign: %s won after %v", w.r.name, w.at.Sub(resigned).Round(time.Millisecond))
	if w.l.Token() <= l.Token() {
		t.Errorf("new token: got %d, want > %d", w.l.Token(), l.Token())
	}
}

// With etcd down, Campaign (whose ctx has no deadline) fails within the
// documented bound (about one TTL); once etcd is back, it succeeds.
func TestCampaignWithEtcdDownFailsInBoundThenSucceeds(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	r := newReplica(t, "r0", srv.Endpoints())
	srv.Stop()

	start := time.Now()
	errc := make(chan error, 1)
	go func() {
		l, err := r.elector.Campaign(context.Background())
		if l != nil {
			resign(t, l)
		}
		errc <- err
	}()
	select {
	case err := <-errc:
		t.Logf("etcd down: Campaign failed after %v: %v", time.Since(start).Round(time.Millisecond), err)
		if err == nil {
			t.Fatalf("Campaign with etcd down: got nil, want an error")
		}
	case <-time.After(ttl + time.Second):
		t.Errorf("Campaign with etcd down: no return within TTL + 1s")
		<-errc
		return
	}

	srv.Restart()
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	for attempt := 1; ; attempt++ {
		l, err := r.elector.Campaign(ctx)
		if err == nil {
			t.Logf("etcd back: Campaign won at attempt %d", attempt)
			resign(t, l)
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("Campaign after etcd is back: got %v, want a Leadership", err)
		}
	}
}

// A replica waiting in Campaign behind the leader is cut off from etcd: its
// Campaign (whose ctx has no deadline) fails with ErrNotRenewed within the
// documented bound (about one TTL), and the leader keeps leading.
func TestWaitingCampaignCutOffFromEtcdFailsInBound(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	l := mustLead(t, newReplica(t, "r0", srv.Endpoints()))
	px := srv.Proxy(t)
	r := newReplica(t, "r1", px.Endpoints())
	// Watch for r1's candidate key: once it is put, r1 waits behind r0.
	admin := srv.Client(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	now, err := admin.Get(ctx, key+"/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatalf("Get candidates: %v", err)
	}
	puts := admin.Watch(ctx, key+"/", clientv3.WithPrefix(), clientv3.WithRev(now.Header.Revision+1))
	wins := make(chan won, 1)
	campaign(t, context.Background(), r, wins)
	select {
	case wr := <-puts:
		if err := wr.Err(); err != nil || len(wr.Events) == 0 {
			t.Fatalf("watch candidates: got %v, %d events; want r1's put", err, len(wr.Events))
		}
	case <-ctx.Done():
		t.Fatalf("r1's candidate key: not put within 5s")
	}
	cut := time.Now()
	px.Partition()
	select {
	case w := <-wins:
		t.Logf("waiting campaign cut off: failed after %v: %v", time.Since(cut).Round(time.Millisecond), w.err)
		if !errors.Is(w.err, etcd.ErrNotRenewed) {
			t.Errorf("Campaign: got %v, want ErrNotRenewed", w.err)
		}
	case <-time.After(ttl + time.Second):
		t.Fatalf("Campaign cut off from etcd: no return within TTL + 1s")
	}
	select {
	case <-l.Lost():
		t.Errorf("leader lost (%v), want it still leading", l.Err())
	default:
	}
}

// A waiting candidate whose key someone deletes does not win when the
// leader resigns: its Campaign fails with ErrKeyDeleted.
func TestCandidateWhoseKeyIsDeletedDoesNotWin(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	l := mustLead(t, newReplica(t, "r0", srv.Endpoints()))
	admin := srv.Client(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	now, err := admin.Get(ctx, key+"/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatalf("Get candidates: %v", err)
	}
	puts := admin.Watch(ctx, key+"/", clientv3.WithPrefix(), clientv3.WithRev(now.Header.Revision+1))
	wins := make(chan won, 1)
	campaign(t, t.Context(), newReplica(t, "r1", srv.Endpoints()), wins)
	var candidate string
	select {
	case wr := <-puts:
		if err := wr.Err(); err != nil || len(wr.Events) == 0 {
			t.Fatalf("watch candidates: got %v, %d events; want r1's put", err, len(wr.Events))
		}
		candidate = string(wr.Events[0].Kv.Key)
	case <-ctx.Done():
		t.Fatalf("r1's candidate key: not put within 5s")
	}
	if _, err := admin.Delete(ctx, candidate); err != nil {
		t.Fatalf("Delete %s: %v", candidate, err)
	}
	resign(t, l)
	select {
	case w := <-wins:
		if !errors.Is(w.err, etcd.ErrKeyDeleted) {
			t.Errorf("Campaign: got %v, want ErrKeyDeleted", w.err)
		}
		if w.l != nil {
			resign(t, w.l)
		}
	case <-ctx.Done():
		t.Fatalf("Campaign: no return within 5s of the leader's resignation")
	}
}

// A Campaign whose ctx ends while it waits returns ctx's error, and leaves
// no candidate key behind (its lease is revoked before it returns).
func TestCancelledCampaignReturnsCtxErrAndLeavesNoKey(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	mustLead(t, newReplica(t, "r0", srv.Endpoints()))
	admin := srv.Client(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	now, err := admin.Get(ctx, key+"/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatalf("Get candidates: %v", err)
	}
	puts := admin.Watch(ctx, key+"/", clientv3.WithPrefix(), clientv3.WithRev(now.Header.Revision+1))
	cctx, ccancel := context.WithCancel(t.Context())
	wins := make(chan won, 1)
	campaign(t, cctx, newReplica(t, "r1", srv.Endpoints()), wins)
	select {
	case <-puts:
	case <-ctx.Done():
		t.Fatalf("r1's candidate key: not put within 5s")
	}
	ccancel()
	select {
	case w := <-wins:
		if !errors.Is(w.err, context.Canceled) {
			t.Errorf("Campaign: got %v, want context.Canceled", w.err)
		}
	case <-ctx.Done():
		t.Fatalf("Campaign: no return within 5s of its ctx's end")
	}
	resp, err := admin.Get(ctx, key+"/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatalf("Get candidates: %v", err)
	}
	if resp.Count != 1 {
		t.Errorf("candidate keys after the cancelled campaign: got %d, want 1 (the leader's)", resp.Count)
	}
}
