// Package etcd is a leader.Elector on etcd, built on
// go.etcd.io/etcd/client/v3/concurrency (a Session on a lease with a TTL,
// and an Election): at most one replica leads an election at any moment,
// and a leader that is cut off from etcd gives its leadership up locally,
// before etcd can expire its lease and elect another replica.
//
//	e := etcd.NewElector(client, "/myservice/leader", etcd.TTL(10*time.Second))
//
// and pass e to task.Leader or leader.Service, or campaign with it directly
// (see the example).
//
// It lives in its own module so that the coreservice library never
// downloads etcd.
//
// # Lifecycle
//
// Each Campaign grants a new lease with the TTL, opens a Session on it
// (concurrency.WithLease), puts a candidate key named after the lease under
// the election key and waits until every older candidate key is gone, as
// concurrency.Election does (the same layout: a replica campaigning with
// concurrency.Election on the same key takes part in the same election, and
// Election.Leader and Observe see the leader). The Leadership it returns lasts until:
//   - no keepalive of the lease has reached etcd for TTL/2 (ErrNotRenewed:
//     etcd unreachable, or too slow; see Timing);
//   - etcd says the lease is gone, the Session's keepalive ends, or the
//     client is closed (ErrSessionEnded);
//   - the leader key is deleted (ErrKeyDeleted);
//   - or Resign, which deletes the key and revokes the lease, so that the
//     next candidate is elected at once (Err is then nil); bounded by its
//     ctx and by TTL/2, after which the lease, no longer renewed, expires
//     by itself (a stop during an etcd outage does not wait longer).
//
// Lost is closed first, then the lease's keepalives stop and, after a loss,
// the lease is revoked (best effort, bounded by TTL/2), so that a replica
// that gave up does not keep the election blocked until its lease expires.
//
// The Token of a term is its leader key's create revision (see Token's
// comment in leadership.go for why it strictly increases across the terms
// of every replica).
//
// # Timing
//
// Package concurrency's Session keeps its lease alive with a keepalive
// stream, and Session.Done is closed only once the client's own copy of the
// TTL has run out without an answer: at about the moment etcd expires the
// lease and deletes the leader key, which is the moment another replica
// wins. A leader that relied on Done would race its successor. So the
// elector keeps the lease alive itself as well: every TTL/3 it sends a
// KeepAliveOnce and records the time it *sent* each renewal that etcd
// acknowledged. If TTL/2 passes after the last acknowledged send with no
// newer one, it closes Lost (ErrNotRenewed).
//
// The argument, with S the send time of the last acknowledged renewal (or
// of the grant):
//   - etcd received that renewal after S and set the lease to expire TTL
//     after receiving it, so it expires no earlier than S + TTL (renewals
//     by the Session's own stream, and etcd's extension of every lease when
//     its raft leader changes, only make it later);
//   - another replica wins only once the leader key is deleted, that is
//     once the lease has expired (or was revoked): not before S + TTL;
//   - the elector closes Lost at S + TTL/2, plus the time for its goroutine
//     to be scheduled.
//
// That leaves TTL/2 (at least 1 s, as MinTTL is 2 s) between Lost and the
// earliest possible successor, for: the rate drift between this host's
// monotonic clock and etcd's (crystals drift by well under 0.1%; even a
// clock 10% fast on etcd's side or slow on ours costs under 0.15 × TTL),
// the scheduling delays of the elector and of the caller's goroutine that
// watches Lost, and the time the leader's work takes to notice the
// cancellation and stop. Work that cannot stop within about TTL/2 minus
// those delays needs a longer TTL, or fencing: writes guarded by the Token,
// which a store can refuse once it has seen a greater one.
//
// Measured with TTL 2 s against an embedded etcd (go test -race on 2
// cores): a leader partitioned from etcd closed Lost about 1.0 s after the
// cut; its successor won about 2.2 s to 2.3 s after it.
//
// # Limits
//
// The timing argument covers a leader that loses etcd. A lease revoked, or a
// leader key deleted, by someone else (etcdctl, an operator) is seen by the
// old leader and by its successor through the same kind of watch, with no
// order between the two. So a successor whose predecessor did not resign
// waits a little before it leads (TTL/8, at most Settle, 1 s): the old
// leader's Lost is closed within tens of milliseconds of the deletion, so
// its work has stopped first, unless that work takes longer than the wait
// to notice its cancellation. A resign records itself (the key
// <key>!resigned, in the transaction that deletes the leader key), and its
// successor leads at once. The wait is a margin, not a proof: guard writes
// with the Token where it matters.
//
// # Concurrency
//
// An Elector serves one campaign at a time (leader.Elector's contract):
// Campaign is called again only once the last Leadership is over; it waits
// first, bounded by its ctx, for that term's clean-up (at most TTL/2 after
// the loss). A Leadership's methods are safe for concurrent use. Every
// goroutine a term starts ends when the term does, and Resign waits for
// them (bounded by its ctx), as does the next Campaign.
//
// # Errors
//
// Validate's errors match core.ErrInvalidOption and name the option. A
// term's Err matches ErrNotRenewed, ErrSessionEnded or ErrKeyDeleted. If
// etcd cannot be reached, Campaign returns an error about one TTL after
// etcd stopped answering at the latest, even when its ctx has no deadline:
// the lease's grant is bounded by the TTL, and a campaign that waits for
// the current leader ends like a term (ErrNotRenewed, TTL/2 after the last
// acknowledged keepalive), then revokes its lease, bounded by TTL/2.
package etcd
