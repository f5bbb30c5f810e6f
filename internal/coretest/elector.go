package coretest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/coreservice/coreservice/leader"
)

// Election is an in-memory election for tests of package leader and of
// task.Leader: many Electors (one per replica, made with Elector) campaign
// on it, at most one leads at a time, and every term won gets a token
// strictly greater than the one before. Tests steer it: Lose ends the
// current term as a store would (its session ended), Fail makes campaigns
// fail as an unreachable store does, Recover undoes Fail, and Leader and
// WaitLeader observe who leads.
//
// Its zero value is ready to use; set Expiry before the first campaign. It
// is safe for concurrent use and starts no goroutine: a Campaign waits in
// its caller's goroutine, on timers it stops before it returns.
type Election struct {
	// Expiry is how long the seat of a term ended by Lose stays taken
	// before another elector can win: the lease TTL of a real store, which
	// the old leader outlives by giving up locally at once. Resign frees
	// the seat at once. Zero frees it at once in both cases.
	Expiry time.Duration

	mu       sync.Mutex
	token    uint64
	term     *term     // the current term; nil when no one leads
	freeAt   time.Time // once no one leads: when the seat can be won
	down     error     // campaigns fail with it while set (Fail)
	failures int       // campaigns that returned down
	changed  chan struct{}
}

// Elector returns the elector of the replica id on e. Every call returns
// a new elector; id names it in Leader.
func (e *Election) Elector(id string) *Elector { return &Elector{e: e, id: id} }

// Elector is one replica's leader.Elector on an Election. It is a
// leader.Validator: Validate reports Invalid.
type Elector struct {
	// Invalid, when not nil, is what Validate reports: an elector with
	// invalid settings, for tests of the check at Start.
	Invalid error

	e  *Election
	id string
}

// ID returns the replica id the elector was made with.
func (el *Elector) ID() string { return el.id }

// Validate returns Invalid.
func (el *Elector) Validate() error { return el.Invalid }

// Campaign blocks until el leads, and returns the term; or until ctx ends,
// returning an error that wraps ctx's; or returns the Fail error at once
// while the election is failing (also to a campaign already waiting when
// Fail is called). A Campaign by an elector that already leads is a misuse
// (leader.Elector serves one campaign at a time), reported as an error.
func (el *Elector) Campaign(ctx context.Context) (leader.Leadership, error) {
	e := el.e
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		e.mu.Lock()
		if e.down != nil {
			err := e.down
			e.failures++
			e.mu.Unlock()
			return nil, fmt.Errorf("campaign %s: %w", el.id, err)
		}
		if e.term != nil && e.term.id == el.id {
			e.mu.Unlock()
			return nil, fmt.Errorf("campaign %s: already leading (token %d)", el.id, e.term.token)
		}
		var wait time.Duration
		if e.term == nil {
			wait = time.Until(e.freeAt)
			if wait <= 0 {
				e.token++
				t := &term{e: e, id: el.id, token: e.token, lost: make(chan struct{})}
				e.term = t
				e.notifyLocked()
				e.mu.Unlock()
				return t, nil
			}
		}
		ch := e.changedLocked()
		e.mu.Unlock()
		var expired <-chan time.Time
		if wait > 0 {
			if timer == nil {
				timer = time.NewTimer(wait)
			} else {
				timer.Reset(wait)
			}
			expired = timer.C
		}
		select {
		case <-ch:
			if timer != nil {
				timer.Stop()
			}
		case <-expired:
		case <-ctx.Done():
			return nil, fmt.Errorf("campaign %s: %w", el.id, ctx.Err())
		}
	}
}

// Lose ends the current term with reason (its Err), as a store whose session
// ended does: its Lost closes at once, and the seat stays taken for Expiry.
// It reports whether a term was ended.
func (e *Election) Lose(reason error) bool {
	if reason == nil {
		reason = errors.New("coretest.Election.Lose: nil reason")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	t := e.term
	if t == nil {
		return false
	}
	e.endLocked(t, reason, time.Now().Add(e.Expiry))
	return true
}

// Fail makes every campaign fail with err (wrapped), as when the store is
// unreachable, until Recover; campaigns waiting are woken to fail too. The
// current term, if any, goes on: call Lose to end it as well.
func (e *Election) Fail(err error) {
	if err == nil {
		err = errors.New("coretest.Election.Fail: nil error")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.down = err
	e.notifyLocked()
}

// Recover undoes Fail: campaigns can win again.
func (e *Election) Recover() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.down = nil
	e.notifyLocked()
}

// Failures returns how many campaigns have failed because of Fail.
func (e *Election) Failures() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.failures
}

// Leader returns the id of the elector that leads and its term's token, or
// ok false when no one leads.
func (e *Election) Leader() (id string, token uint64, ok bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.term == nil {
		return "", 0, false
	}
	return e.term.id, e.term.token, true
}

// WaitLeader blocks until the elector id leads (no one, for id ""), or ctx
// ends; it reports whether it did.
func (e *Election) WaitLeader(ctx context.Context, id string) bool {
	for {
		e.mu.Lock()
		got := ""
		if e.term != nil {
			got = e.term.id
		}
		ch := e.changedLocked()
		e.mu.Unlock()
		if got == id {
			return true
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return false
		}
	}
}

func (e *Election) changedLocked() chan struct{} {
	if e.changed == nil {
		e.changed = make(chan struct{})
	}
	return e.changed
}

func (e *Election) notifyLocked() {
	if e.changed != nil {
		close(e.changed)
		e.changed = nil
	}
}

// endLocked ends t, the current term, with err (nil: resigned), the seat
// free from freeAt.
func (e *Election) endLocked(t *term, err error, freeAt time.Time) {
	t.err = err
	close(t.lost)
	e.term = nil
	e.freeAt = freeAt
	e.notifyLocked()
}

// term is a leader.Leadership on an Election.
type term struct {
	e     *Election
	id    string
	token uint64
	lost  chan struct{}
	err   error // guarded by e.mu; set before lost is closed
}

func (t *term) Token() uint64         { return t.token }
func (t *term) Lost() <-chan struct{} { return t.lost }

func (t *term) Err() error {
	t.e.mu.Lock()
	defer t.e.mu.Unlock()
	return t.err
}

// Resign ends the term at once, freeing the seat at once; repeated calls,
// and calls once the term was lost, return nil.
func (t *term) Resign(context.Context) error {
	e := t.e
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.term == t {
		e.endLocked(t, nil, time.Time{})
	}
	return nil
}
