package coretest

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/coreservice/coreservice/core"
)

// Quiet returns a logger that drops everything, for services whose logs are
// noise.
func Quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// Recorder is an ordered, concurrency-safe event log. Its zero value is
// ready to use.
type Recorder struct {
	mu     sync.Mutex
	events []string
}

// Add appends e.
func (r *Recorder) Add(e string) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

// Events returns the events added so far, in order.
func (r *Recorder) Events() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// Hook returns a hook function that records e and returns err.
func (r *Recorder) Hook(e string, err error) func(context.Context) error {
	return func(context.Context) error {
		r.Add(e)
		return err
	}
}

// Node builds a quiet service named name, whose monitor stays out of the
// way, that records "<name> start" and "<name> stop" in rec from its
// OnStart and OnStop hooks, plus opts.
func Node(name string, rec *Recorder, opts ...core.Option) *core.Base {
	return core.NewService(append([]core.Option{core.Name(name), core.Logger(Quiet()),
		core.MonitorInterval(time.Hour),
		core.OnStart(rec.Hook(name+" start", nil)), core.OnStop(rec.Hook(name+" stop", nil))}, opts...)...)
}

// MustStart starts s, failing the test if Start fails, and stops s when the
// test ends, so that a failing test leaves no goroutine behind (in a
// synctest bubble, cleanups run inside the bubble). Stop is idempotent: a
// test that stops s itself is unaffected.
func MustStart(t testing.TB, s core.Service) {
	t.Helper()
	if err := s.Start(t.Context()); err != nil {
		t.Fatalf("Start %s: got %v, want nil", s.Name(), err)
	}
	t.Cleanup(func() { _ = s.Stop(context.Background()) })
}

// MustStop stops s, failing the test if Stop fails.
func MustStop(t testing.TB, s core.Service) {
	t.Helper()
	if err := s.Stop(context.Background()); err != nil {
		t.Fatalf("Stop %s: got %v, want nil", s.Name(), err)
	}
}

// WantEvents fails the test unless got equals want.
func WantEvents(t testing.TB, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("events:\n got %q\nwant %q", got, want)
	}
}
