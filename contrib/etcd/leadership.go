package etcd

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// term is one campaign of an Elector and, once it won, its leader.Leadership.
// Its goroutines (the renewer, the monitor and, once elected, the watcher)
// end when ctx is cancelled; done is closed once they have all returned and
// the lease was revoked (bounded by TTL/2) if the term was lost.
type term struct {
	elector *Elector
	lease   clientv3.LeaseID
	ttl     time.Duration // as granted by etcd
	granted time.Time     // send time of the grant: the first successful send

	// ctx is the term's own lifetime (derived from the client's, so
	// closing the client ends it): the session's keepalive, the renewals
	// and the watch run under it.
	ctx    context.Context
	cancel context.CancelFunc

	session *concurrency.Session
	key     string // the candidate (then leader) key
	rev     int64  // its create revision: the token

	renewals chan renewal
	wg       sync.WaitGroup // renewer, watcher
	done     chan struct{}  // closed when the monitor has returned

	mu       sync.Mutex
	ended    bool
	resigned bool
	err      error
	onLoss   context.CancelCauseFunc // cancels Campaign's wait; nil once elected
	lost     chan struct{}
}

// renewal is the result of one KeepAliveOnce.
type renewal struct {
	sent time.Time
	ttl  int64
	err  error
}

func newTerm(e *Elector, lease clientv3.LeaseID, ttl time.Duration, granted time.Time) *term {
	ctx, cancel := context.WithCancel(e.client.Ctx())
	return &term{
		elector: e, lease: lease, ttl: ttl, granted: granted,
		ctx: ctx, cancel: cancel,
		renewals: make(chan renewal),
		done:     make(chan struct{}),
		lost:     make(chan struct{}),
	}
}

// start opens the session on the term's lease and starts the renewer and
// the monitor. onLoss is called with the reason if the term is lost before
// elected is called.
func (t *term) start(onLoss context.CancelCauseFunc) error {
	t.onLoss = onLoss
	s, err := concurrency.NewSession(t.elector.client,
		concurrency.WithLease(t.lease),
		concurrency.WithTTL(int(t.ttl/time.Second)),
		concurrency.WithContext(t.ctx))
	if err != nil {
		close(t.done)
		return fmt.Errorf("open session: %w", err)
	}
	t.session = s
	t.wg.Add(1)
	go t.renew()
	go t.monitor()
	return nil
}

// renew sends a KeepAliveOnce every TTL/3 and hands the outcome, with the
// time the request was sent, to the monitor.
func (t *term) renew() {
	defer t.wg.Done()
	tick := time.NewTicker(t.ttl / 3)
	defer tick.Stop()
	for {
		select {
		case <-t.ctx.Done():
			return
		case <-tick.C:
		}
		sent := time.Now()
		rctx, cancel := context.WithTimeout(t.ctx, t.ttl/3)
		resp, err := t.elector.client.KeepAliveOnce(rctx, t.lease)
		cancel()
		r := renewal{sent: sent, err: err}
		if resp != nil {
			r.ttl = resp.TTL
		}
		select {
		case t.renewals <- r:
		case <-t.ctx.Done():
			return
		}
	}
}

// monitor ends the term: when no renewal sent in the last TTL/2 succeeded
// (ErrNotRenewed), when etcd says the lease is gone or the session ends
// (ErrSessionEnded), or when ctx is cancelled (by lose, from the watcher or
// Campaign; by Resign; or by closing the client: ErrSessionEnded). Unless the term was resigned, it then revokes
// the lease, bounded by TTL/2, so that a replica that gave up does not keep
// the election blocked until the lease expires. It closes done last.
func (t *term) monitor() {
	defer close(t.done)
	lastSent := t.granted
	deadline := time.NewTimer(time.Until(lastSent.Add(t.ttl / 2)))
	defer deadline.Stop()
loop:
	for {
		select {
		case <-t.ctx.Done():
			// Cancelled by lose or Resign (then this is a no-op), or
			// the client was closed.
			t.lose(fmt.Errorf("%w: the client was closed", ErrSessionEnded))
			break loop
		case r := <-t.renewals:
			switch {
			case r.err == nil && r.ttl > 0:
				lastSent = r.sent
				deadline.Reset(time.Until(lastSent.Add(t.ttl / 2)))
			case r.err == nil || errors.Is(r.err, rpctypes.ErrLeaseNotFound):
				t.lose(fmt.Errorf("%w: lease %x not found by etcd (revoked or expired)", ErrSessionEnded, t.lease))
			}
		case <-deadline.C:
			t.lose(fmt.Errorf("%w: no keepalive reached etcd since %v (lease TTL %v): gave up at TTL/2",
				ErrNotRenewed, time.Since(lastSent).Round(time.Millisecond), t.ttl))
		case <-t.session.Done():
			t.lose(fmt.Errorf("%w: the session's keepalive ended (lease revoked or expired, or client closed)", ErrSessionEnded))
		}
	}
	t.session.Orphan() // waits for the session's goroutine
	t.wg.Wait()
	t.mu.Lock()
	resigned := t.resigned
	t.mu.Unlock()
	if !resigned {
		rctx, cancel := context.WithTimeout(t.elector.client.Ctx(), t.ttl/2)
		_, _ = t.elector.client.Revoke(rctx, t.lease) // best effort: otherwise it expires
		cancel()
	}
}

// elected starts the watch of the leader key: its deletion ends the term.
func (t *term) elected() {
	t.mu.Lock()
	t.onLoss = nil
	t.mu.Unlock()
	wch := t.elector.client.Watch(t.ctx, t.key, clientv3.WithRev(t.rev+1))
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		for wr := range wch {
			if err := wr.Err(); err != nil {
				t.lose(fmt.Errorf("%w: watching the leader key: %w", ErrSessionEnded, err))
				return
			}
			for _, ev := range wr.Events {
				if ev.Type == mvccpb.DELETE {
					t.lose(fmt.Errorf("%w: %s", ErrKeyDeleted, t.key))
					return
				}
			}
		}
		// The watch ends when ctx is cancelled: the term is over already.
	}()
}

// lose ends the term with err as its reason, if it is not over yet: it
// closes Lost at once, then stops the term's goroutines.
func (t *term) lose(err error) {
	t.mu.Lock()
	if t.ended {
		t.mu.Unlock()
		return
	}
	t.ended, t.err = true, t.elector.errorf("%w", err)
	close(t.lost)
	onLoss := t.onLoss
	t.mu.Unlock()
	t.cancel()
	if onLoss != nil {
		onLoss(err)
	}
}

// Token returns the leader key's create revision. It is strictly greater
// than the token of every term won before, by any replica of the election:
// etcd's revision grows with every write to the cluster, each campaign
// creates a new key (named after its new lease) at a new revision, and a
// campaign wins only once every key created before its own is deleted. If
// a term B were won after a term A with rev(B) < rev(A), B's key would have
// existed, created before A's, when A won; yet A wins only once every older
// key is deleted, and a deleted key is never B's again (B would have to
// campaign anew, at a new revision).
func (t *term) Token() uint64 { return uint64(t.rev) }

// Lost returns a channel closed once the term is over (see Err).
func (t *term) Lost() <-chan struct{} { return t.lost }

// Err returns nil while the term lasts and after Resign; otherwise, once
// Lost is closed, why the term was lost, matching ErrNotRenewed,
// ErrSessionEnded or ErrKeyDeleted.
func (t *term) Err() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.err
}

// Resign closes Lost, then deletes the leader key and revokes the lease,
// bounded by ctx, so that the next candidate is elected at once; then waits
// (bounded by ctx) for the term's goroutines. Lost is closed when it
// returns, whatever its error. Repeated calls, and calls after a loss,
// return nil (after a loss, once the clean-up is done or ctx ends).
func (t *term) Resign(ctx context.Context) error {
	t.mu.Lock()
	if t.ended {
		t.mu.Unlock()
		select {
		case <-t.done:
		case <-ctx.Done():
		}
		return nil
	}
	t.ended, t.resigned = true, true
	close(t.lost)
	t.mu.Unlock()
	t.cancel()
	// A resign that etcd cannot take within TTL/2 would find the term
	// lost anyway (see monitor): the lease expires by itself then.
	ctx, cancel := context.WithTimeout(ctx, t.ttl/2)
	defer cancel()

	var errs []error
	// Delete the leader key and record that it was resigned, in one
	// transaction: the successor need not wait for this replica to settle.
	_, err := t.elector.client.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(t.key), "=", t.rev)).
		Then(clientv3.OpDelete(t.key), clientv3.OpPut(t.elector.resignedKey(), strconv.FormatInt(t.rev, 10))).
		Commit()
	if err != nil {
		errs = append(errs, fmt.Errorf("delete leader key: %w", err))
	}
	if _, err := t.elector.client.Revoke(ctx, t.lease); err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		errs = append(errs, fmt.Errorf("revoke lease: %w", err))
	}
	select {
	case <-t.done:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("wait for the term's goroutines: %w", ctx.Err()))
	}
	if len(errs) > 0 {
		return t.elector.errorf("resign: %w", errors.Join(errs...))
	}
	return nil
}
