package core

import (
	"context"
	"log/slog"
	"runtime/debug"
)

// lifecycle is where a service is in its lifecycle: one value, embedded in
// Base and read and changed under Base.mu only (Guava's
// AbstractService.StateSnapshot and fx's internal/lifecycle are the models:
// one lock, one value). Its state changes only through Base.transition,
// which checks the edge, records the cause and raises the event; the other
// fields record the facts the transitions depend on.
type lifecycle struct {
	state State
	// closing is the final state finish is moving to: its event has been
	// raised, and the state is applied together with closing Done (see
	// finish). StateNew (zero) until then.
	closing State
	// cause is why the service failed: set by the transition that makes it
	// fail, nil for a clean stop. Err returns it once Done is closed.
	cause error
	// stopErr is what the stop met, returned by every Stop once Done is
	// closed.
	stopErr error
	// holders counts the parents (and direct Starts and Runs) holding the
	// service; the last one to release it stops it.
	holders int
	// byParent: a parent started the service (acquire), so no Start call
	// gets the start's error; Stop returns what Start would have.
	byParent bool
	// stopReq: Stop was called while Starting (Guava's
	// shutdownWhenStartupFinishes): the start is aborted and rolled back,
	// and the service ends Terminated unless the start also failed.
	stopReq bool
	// pastRequirements: the start got past its requirements, so the stop
	// runs the OnStop hooks (all of them, also when no OnStart hook ran: the
	// hooks are not paired, unlike fx's, so no counter is needed).
	pastRequirements bool
	// sealed: the stop has collected the failures met while stopping
	// (lateErrs); later ones are only logged.
	sealed bool
}

// legal reports whether a service may move from one state to the other:
// the edges of the State doc, and no other.
//
//	New -> Starting
//	Starting -> Running | Stopping
//	Running -> Stopping
//	Stopping -> Terminated | Failed
func legal(from, to State) bool {
	switch from {
	case StateNew:
		return to == StateStarting
	case StateStarting:
		return to == StateRunning || to == StateStopping
	case StateRunning:
		return to == StateStopping
	case StateStopping:
		return to == StateTerminated || to == StateFailed
	}
	return false
}

// transition is the one way a service changes state. With b.mu held, it
// checks that the edge from the current state to to is legal, records cause
// as the service's failure when failure is set, and raises StateChanged
// with cause (the reason of the change, which is not always a failure: a
// start that Stop aborted reports why it stopped and ends Terminated).
//
// A non-final state is applied at once: State reports it, Changed's channel
// is closed and the state metric moves, all under b.mu, in the order of the
// changes. A final state is only raised here: finish applies it together
// with closing Done, once the event has been delivered, so that a final
// State always comes with a closed Done and Err.
//
// An illegal edge is a bug in this package. It is reported loudly (see
// illegalTransition) and changes nothing: the service keeps its state, its
// cause and its event stream. transition reports whether it moved.
func (b *Base) transition(ctx context.Context, to State, cause error, failure bool) bool {
	from := b.state
	if b.closing != StateNew || !legal(from, to) {
		illegalTransition(b, from, to)
		return false
	}
	if failure {
		b.cause = cause
	}
	e := StateChanged{Service: b.name, From: from, To: to, Cause: cause}
	if to == StateStopping && cause == nil {
		e.RequestedBy, _ = ctx.Value(stopReasonKey{}).(string)
	}
	raise(b, ctx, e, to.final())
	if to.final() {
		b.closing = to
		return true
	}
	b.applyStateLocked(to)
	return true
}

// applyStateLocked is the one assignment of b.state: it records the change
// in MetricServiceState and wakes the waiters of Changed. b.mu is held.
func (b *Base) applyStateLocked(s State) {
	b.recordState(b.state, s)
	b.state = s
	if b.changed != nil {
		close(b.changed)
		b.changed = nil
	}
}

// illegalTransition reports an illegal edge. Built with the coreassert tag
// (go test -tags coreassert), as the chaos and property suites can be, it
// panics, so that the test that caused it fails where it happened. Otherwise
// it logs an error with the stack and the service keeps its state: a bug in
// the library's bookkeeping must not crash the program it runs in, and the
// old state is the one every waiter and parent has seen.
func illegalTransition(b *Base, from, to State) {
	msg := "illegal state transition " + from.String() + " -> " + to.String() + " (a bug in coreservice: please report it)"
	if b.closing != StateNew {
		msg += "; the service is already moving to " + b.closing.String()
	}
	if assertTransitions {
		panic("core: " + b.name + ": " + msg)
	}
	b.logger().LogAttrs(context.Background(), slog.LevelError, msg,
		slog.String("from", from.String()), slog.String("to", to.String()),
		slog.String("stack", string(debug.Stack())))
}
