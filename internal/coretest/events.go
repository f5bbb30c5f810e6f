package coretest

import (
	"context"
	"slices"
	"sync"

	"github.com/coreservice/coreservice/core"
)

// Events is an OnEvent hook (pass Events.Hook to core.OnEvent) that keeps
// every event it gets, in order, for tests that assert on events or wait
// for one. Its zero value is ready to use; it is safe for concurrent use.
type Events struct {
	mu     sync.Mutex
	events []core.Event
	notify chan struct{} // closed and replaced on every event; nil until Wait asks
}

// Hook keeps e.
func (r *Events) Hook(e core.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
	if r.notify != nil {
		close(r.notify)
		r.notify = nil
	}
}

// All returns the events kept so far, in order.
func (r *Events) All() []core.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// Wait blocks until an event for which match is true has been kept, or ctx
// ends; it returns that event, or nil.
func (r *Events) Wait(ctx context.Context, match func(core.Event) bool) core.Event {
	for {
		r.mu.Lock()
		if i := slices.IndexFunc(r.events, match); i >= 0 {
			e := r.events[i]
			r.mu.Unlock()
			return e
		}
		if r.notify == nil {
			r.notify = make(chan struct{})
		}
		ch := r.notify
		r.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil
		}
	}
}

// OfType returns the events of type E kept in r so far, in order.
func OfType[E core.Event](r *Events) []E { return Only[E](r.All()) }

// Only returns the events of evs of type E, in their order.
func Only[E core.Event](evs []core.Event) []E {
	var out []E
	for _, e := range evs {
		if v, ok := e.(E); ok {
			out = append(out, v)
		}
	}
	return out
}
