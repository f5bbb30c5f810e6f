package etcd

import "errors"

// Reasons for the loss of a term, matched with errors.Is on Leadership.Err
// (and on Campaign's error when the loss came while campaigning). The errors
// wrap them together with the details.
var (
	// ErrNotRenewed: no keepalive of the term's lease reached etcd for
	// TTL/2 (etcd unreachable, or too slow), so the elector gave the
	// leadership up locally, before etcd could expire the lease. See the
	// package doc's timing argument.
	ErrNotRenewed = errors.New("lease not renewed in time")
	// ErrSessionEnded: the term's lease is gone (revoked by someone else,
	// or expired), or the session's keepalive ended (the client was
	// closed).
	ErrSessionEnded = errors.New("session ended")
	// ErrKeyDeleted: the term's leader key was deleted by someone else.
	ErrKeyDeleted = errors.New("leader key deleted")
)
