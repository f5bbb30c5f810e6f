// Package eventstream_test pins, from outside (public API only, across
// core, task and health), the promises of the lifecycle's event stream: the
// typed events of OnEvent, their order, the queue policy (drops, slow,
// blocked, panicking and Goexit-ing hooks), the final state change and
// Done, logs and events agreeing, and Host.Stop.
package eventstream_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/coreservice/coreservice/core"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// seen is one event as a hook got it, with what the service reported at
// that moment.
type seen struct {
	e     core.Event
	state core.State
	done  bool
	known bool // the recorder knew the service: state and done are set
}

// recorder is an OnEvent hook keeping every event with the service's state
// and Done at delivery; svc is set once the service is built.
type recorder struct {
	mu     sync.Mutex
	svc    *core.Base
	got    []seen
	concur int // hooks running at once, at most
	in     int
}

func (r *recorder) hook(e core.Event) {
	r.mu.Lock()
	r.in++
	r.concur = max(r.concur, r.in)
	svc := r.svc
	r.mu.Unlock()
	s := seen{e: e}
	if svc != nil {
		s.state, s.done, s.known = svc.State(), isClosed(svc.Done()), true
	}
	r.mu.Lock()
	r.got = append(r.got, s)
	r.in--
	r.mu.Unlock()
}

func (r *recorder) all() []seen {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

func (r *recorder) events() []core.Event {
	var out []core.Event
	for _, s := range r.all() {
		out = append(out, s.e)
	}
	return out
}

// unit is a core.Unit whose Launch calls launch with the Host.
type unit struct {
	name   string
	launch func(ctx context.Context, h *core.Host) error
}

func (u *unit) Name() string                                   { return u.name }
func (u *unit) ApplyTo(c *core.Config)                         { c.AddUnit(u) }
func (u *unit) Launch(ctx context.Context, h *core.Host) error { return u.launch(ctx, h) }

// goUnit is a unit running fn in one goroutine named name.
func goUnit(name string, fn func(ctx context.Context, h *core.Host) error) *unit {
	return &unit{name: name, launch: func(_ context.Context, h *core.Host) error {
		h.Go(name, func(ctx context.Context) error { return fn(ctx, h) })
		return nil
	}}
}

// hostUnit hands out its service's Host once launched.
func hostUnit(hosts chan<- *core.Host) *unit {
	return &unit{name: "host", launch: func(_ context.Context, h *core.Host) error {
		hosts <- h
		return nil
	}}
}

func edge(e core.StateChanged) string { return e.From.String() + "->" + e.To.String() }

var legalEdges = map[string]bool{
	"new->starting": true, "starting->running": true, "starting->stopping": true,
	"running->stopping": true, "stopping->terminated": true, "stopping->failed": true,
}

// checkStream checks one service's stream as its hook got it: it begins
// with new->starting, every StateChanged is a legal edge from the state the
// previous one reached, the stream has a final state change, nothing but
// EventsDropped comes after it, and only the final one was delivered while
// the service still reported Stopping with Done open. It returns the final
// change.
func checkStream(t *testing.T, name string, got []seen) core.StateChanged {
	t.Helper()
	var final *core.StateChanged
	cur := core.StateNew
	for i, s := range got {
		if final != nil {
			if _, ok := s.e.(core.EventsDropped); !ok {
				t.Errorf("%s: event %d after the final state change: got %T %+v, want nothing but EventsDropped", name, i, s.e, s.e)
			}
			continue
		}
		sc, ok := s.e.(core.StateChanged)
		if !ok {
			continue
		}
		if sc.From != cur || !legalEdges[edge(sc)] {
			t.Errorf("%s: state change %d: got %s, want a legal edge from %v", name, i, edge(sc), cur)
		}
		if sc.Service != name {
			t.Errorf("%s: StateChanged.Service: got %q, want %q", name, sc.Service, name)
		}
		cur = sc.To
		if sc.To == core.StateTerminated || sc.To == core.StateFailed {
			final = &sc
			if s.known && (s.state != core.StateStopping || s.done) {
				t.Errorf("%s: hook of the final change: got state %v, Done closed %v; want stopping, open", name, s.state, s.done)
			}
		}
	}
	if final == nil {
		t.Fatalf("%s: no final state change in %d events: %v", name, len(got), got)
	}
	return *final
}

// checkOutcome checks that the final state change agrees with State, Err
// and Done.
func checkOutcome(t *testing.T, s *core.Base, final core.StateChanged) {
	t.Helper()
	if !isClosed(s.Done()) {
		t.Fatalf("%s: Done open after the final event", s.Name())
	}
	if st := s.State(); st != final.To {
		t.Errorf("%s: State: got %v, want %v (the final event's)", s.Name(), st, final.To)
	}
	err := s.Err()
	if (err != nil) != (s.State() == core.StateFailed) {
		t.Errorf("%s: Err %v with state %v: want non-nil exactly when failed", s.Name(), err, s.State())
	}
	if final.To == core.StateFailed && final.Cause != err {
		t.Errorf("%s: final StateChanged.Cause: got %v, want Err() %v", s.Name(), final.Cause, err)
	}
	if final.To == core.StateTerminated && final.Cause != nil {
		t.Errorf("%s: cause of the move to terminated: got %v, want nil", s.Name(), final.Cause)
	}
}

var errBoom = errors.New("boom")

func describe(evs []core.Event) string {
	s := ""
	for _, e := range evs {
		s += fmt.Sprintf("%T%+v\n", e, e)
	}
	return s
}
