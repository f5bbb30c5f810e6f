package core

import (
	"context"
	"os"
)

// RunSignals is Run with the signals coming from sig instead of the process.
func RunSignals(ctx context.Context, sig <-chan os.Signal, svcs ...Service) error {
	return run(ctx, sig, svcs)
}

// Transition puts b in state from, as if it had got there, and moves it to
// to through the one transition, applying a final state as finish does. It
// reports the state after and whether it moved; an illegal edge panics when
// the package is built with the coreassert tag (AssertTransitions).
func Transition(b *Base, from, to State) (after State, moved bool) {
	b.mu.Lock()
	b.state, b.closing = from, StateNew
	moved = b.transition(context.Background(), to, nil, false)
	if moved && to.final() {
		b.applyStateLocked(to)
	}
	b.closing = StateNew
	after = b.state
	b.mu.Unlock()
	b.flushLog()
	return after, moved
}

// AssertTransitions reports whether this build panics on an illegal edge.
const AssertTransitions = assertTransitions

// Emit raises e on b as the service does: to the log and the hooks.
func Emit[E Event](b *Base, e E) { emit(b, context.Background(), e) }
