package leader

import (
	"context"
)

// Elector campaigns for the leadership of one election, shared by every
// replica of a service: at most one replica's Campaign has returned a
// Leadership that is not lost at any moment. contrib/etcd implements it on
// etcd; tests use an in-memory one.
//
// An Elector serves one campaign at a time: Campaign is called again only
// once the Leadership it returned before is lost or resigned.
type Elector interface {
	// Campaign blocks until this replica leads, and returns its
	// Leadership; or until ctx ends, returning ctx's error (wrapped); or
	// until it cannot reach the store, returning that error, after which the
	// caller campaigns again (package leader does, with a backoff).
	Campaign(ctx context.Context) (Leadership, error)
}

// Leadership is one term of this replica as leader.
type Leadership interface {
	// Token is the term's fencing token: strictly greater than the token of
	// every term that was won before it, by any replica of the election.
	// Writes guarded by it (a store that rejects a token lower than the
	// last one it saw) cannot come from a leader that was replaced.
	Token() uint64
	// Lost is closed once the term is over: leadership was lost (the
	// store's session ended, or could not be kept alive), or resigned.
	Lost() <-chan struct{}
	// Err says why the term ended, once Lost is closed: nil after
	// Resign, the loss's reason otherwise.
	Err() error
	// Resign ends the term, so that another replica can be elected at
	// once rather than after the store's session times out. It waits,
	// bounded by ctx, until the store has taken it. Lost is closed when
	// it returns, whatever its error. Repeated calls return nil.
	Resign(ctx context.Context) error
}

// Validator is an Elector whose settings can be checked before it
// campaigns; task.Leader and Service call Validate at Start, and an error
// fails the start as an invalid option.
type Validator interface {
	// Validate reports the elector's invalid settings, or nil.
	Validate() error
}
