package etcd

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/leader"
)

// Elector is a leader.Elector and leader.Validator on etcd: the replicas
// whose Electors share a client's cluster and a key campaign in one
// election. Build it with NewElector. It serves one campaign at a time, as
// leader.Elector says.
type Elector struct {
	client *clientv3.Client
	key    string
	cfg    config

	mu   sync.Mutex
	prev *term // the last term Campaign started; nil before the first
}

var (
	_ leader.Elector   = (*Elector)(nil)
	_ leader.Validator = (*Elector)(nil)
)

// NewElector returns an Elector for the election named key, on client's
// cluster. Candidates put their keys under key + "/" (one per campaign,
// named after its lease, as concurrency.Election does). The client stays the
// caller's: the Elector never closes it; closing it ends the current term
// (ErrSessionEnded). NewElector does not fail: bad arguments are reported by
// Validate, and by Campaign.
func NewElector(client *clientv3.Client, key string, opts ...Option) *Elector {
	return &Elector{client: client, key: key, cfg: newConfig(opts)}
}

// Validate reports the elector's invalid settings (a nil client, an empty
// key, a nil option, a TTL that is not a whole number of seconds or is below
// MinTTL), each naming its option, joined in one error matching
// core.ErrInvalidOption; or nil.
func (e *Elector) Validate() error {
	var errs []error
	if e.client == nil {
		errs = append(errs, errors.New("client is nil"))
	}
	if e.key == "" {
		errs = append(errs, errors.New("election key is empty"))
	}
	errs = append(errs, e.cfg.errs...)
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("etcd elector %q: %w: %w", e.key, core.ErrInvalidOption, errors.Join(errs...))
}

// Campaign blocks until this replica leads the election, and returns its
// Leadership; or until ctx ends, returning ctx's error wrapped; or until
// etcd cannot be reached, returning that error. It returns the error of
// Validate if the settings are invalid.
//
// Campaign grants a lease with the TTL, keeps it alive (see the package
// doc), puts its candidate key, and waits until every older candidate key
// is deleted. It gives up on etcd, with an error, at most about one TTL
// after etcd stops answering, even if ctx has no deadline: the grant is
// bounded by the TTL; while waiting, the campaign ends as a term would
// (ErrNotRenewed, TTL/2 after the last keepalive that reached etcd), and
// its lease is then revoked, bounded by TTL/2. Whenever a campaign fails
// after its lease was granted, Campaign revokes the lease before it
// returns (bounded by TTL/2), so that it leaves no candidate key behind.
//
// Campaign must not be called again before the Leadership it returned is
// lost or resigned; it first waits (bounded by ctx) for the previous term's
// clean-up, which takes at most TTL/2 after the loss.
func (e *Elector) Campaign(ctx context.Context) (leader.Leadership, error) {
	if err := e.Validate(); err != nil {
		return nil, err
	}
	e.mu.Lock()
	prev := e.prev
	e.mu.Unlock()
	if prev != nil {
		select {
		case <-prev.done:
		case <-ctx.Done():
			return nil, e.errorf("campaign: waiting for the previous term's clean-up: %w", ctx.Err())
		}
	}

	// Grant the lease, bounded by the TTL. The time of the request's send
	// is the first "successful send" of the term: etcd expires the lease
	// no earlier than TTL after it.
	gctx, cancel := context.WithTimeout(ctx, e.cfg.ttl)
	sent := time.Now()
	grant, err := e.client.Grant(gctx, int64(e.cfg.ttl/time.Second))
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, e.errorf("campaign: grant lease: %w", err)
	}
	t := newTerm(e, grant.ID, time.Duration(grant.TTL)*time.Second, sent)
	e.mu.Lock()
	e.prev = t
	e.mu.Unlock()

	cctx, ccancel := context.WithCancelCause(ctx)
	defer ccancel(nil)
	if err := t.start(ccancel); err != nil {
		t.lose(err)
		rctx, rcancel := context.WithTimeout(e.client.Ctx(), t.ttl/2)
		_, _ = e.client.Revoke(rctx, t.lease) // best effort: otherwise it expires
		rcancel()
		return nil, e.errorf("campaign: %w", err)
	}
	if err := t.campaign(cctx); err != nil {
		cause := context.Cause(cctx)
		switch {
		case ctx.Err() != nil:
			err = ctx.Err()
		case cause != nil && !errors.Is(cause, context.Canceled):
			err = cause // the term ended while campaigning: its reason
		}
		t.lose(err)
		<-t.done // bounded: the lease's revoke is bounded by TTL/2
		return nil, e.errorf("campaign: %w", err)
	}
	t.elected()
	select {
	case <-t.lost:
		// Lost between the win and now: report it as a failed campaign.
		<-t.done
		return nil, t.Err() // names the elector already
	default:
	}
	return t, nil
}

// errorf returns an error naming the elector's key.
func (e *Elector) errorf(format string, args ...any) error {
	return fmt.Errorf("etcd elector %q: "+format, append([]any{e.key}, args...)...)
}

// prefix is the prefix of the candidates' keys.
func (e *Elector) prefix() string { return e.key + "/" }

// campaign puts the term's candidate key and waits, bounded by ctx, until
// every candidate key created before it is deleted: the algorithm of
// concurrency.Election.Campaign, written here because that one, when its
// context ends, resigns with the client's context, which does not end while
// etcd is unreachable (a Campaign that would not be bounded).
func (t *term) campaign(ctx context.Context) error {
	e := t.elector
	key := fmt.Sprintf("%s%x", e.prefix(), t.lease)
	resp, err := e.client.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, e.cfg.value, clientv3.WithLease(t.lease))).
		Else(clientv3.OpGet(key)).
		Commit()
	if err != nil {
		return fmt.Errorf("put candidate key: %w", err)
	}
	rev := resp.Header.Revision
	if !resp.Succeeded { // cannot happen with a fresh lease; stay correct anyway
		kvs := resp.Responses[0].GetResponseRange().Kvs
		if len(kvs) == 0 {
			return fmt.Errorf("put candidate key %s: key vanished", key)
		}
		rev = kvs[0].CreateRevision
	}
	t.key, t.rev = key, rev

	// Wait until no key under the prefix was created before ours. The last
	// key waited for is the one that led before us, if any.
	var before int64 // its create revision; 0: we waited for no one
	for {
		getOpts := append(clientv3.WithLastCreate(), clientv3.WithMaxCreateRev(rev-1))
		gr, err := e.client.Get(ctx, e.prefix(), getOpts...)
		if err != nil {
			return fmt.Errorf("wait for the leader: %w", err)
		}
		if len(gr.Kvs) == 0 {
			break
		}
		before = gr.Kvs[0].CreateRevision
		if err := waitDelete(ctx, e.client, string(gr.Kvs[0].Key), gr.Header.Revision); err != nil {
			return fmt.Errorf("wait for the leader: %w", err)
		}
	}
	if before != 0 {
		if err := t.settle(ctx, before); err != nil {
			return err
		}
	}
	// Our own key may have been deleted by someone else while we waited:
	// then we do not lead.
	own, err := e.client.Get(ctx, key)
	if err != nil {
		return fmt.Errorf("check the leader key: %w", err)
	}
	if len(own.Kvs) == 0 || own.Kvs[0].CreateRevision != rev {
		return fmt.Errorf("%w: %s, while waiting for the leader", ErrKeyDeleted, key)
	}
	return nil
}

// waitDelete waits, bounded by ctx, until key is deleted at a revision
// after rev.
func waitDelete(ctx context.Context, client *clientv3.Client, key string, rev int64) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for wr := range client.Watch(wctx, key, clientv3.WithRev(rev)) {
		if err := wr.Err(); err != nil {
			return err
		}
		for _, ev := range wr.Events {
			if ev.Type == mvccpb.DELETE {
				return nil
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return errors.New("watch ended")
}

// resignedKey is the key where Resign records the create revision of the
// leader key it deletes, so that the successor knows the old leader
// stopped before it resigned. It is beside the candidates' prefix, not
// under it.
func (e *Elector) resignedKey() string { return e.key + "!resigned" }

// settle is how long a successor waits, after the key before it was
// deleted without a resign (its lease revoked or expired, the key deleted
// by someone else), before it leads: time for the old leader, which sees
// the same deletion through a watch of its own, to close Lost and for its
// work to notice. An eighth of the TTL, at most Settle.
func (t *term) settleDelay() time.Duration { return min(t.ttl/8, Settle) }

// Settle bounds the wait of a successor whose predecessor did not resign
// (see the package doc's Limits).
const Settle = time.Second

// settle waits before leading unless the leader key created at revision
// before was resigned; bounded by ctx, and ended by the loss of the term.
func (t *term) settle(ctx context.Context, before int64) error {
	e := t.elector
	gr, err := e.client.Get(ctx, e.resignedKey())
	if err != nil {
		return fmt.Errorf("read the resign record: %w", err)
	}
	if len(gr.Kvs) == 1 && string(gr.Kvs[0].Value) == strconv.FormatInt(before, 10) {
		return nil // the old leader stopped, then resigned
	}
	timer := time.NewTimer(t.settleDelay())
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
