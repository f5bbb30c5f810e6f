package deps_test

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/coreservice/coreservice/core"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var quiet = slog.New(slog.DiscardHandler)

// recorder is an ordered, concurrency-safe event log.
type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) add(e string) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

func (r *recorder) get() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// node builds a service that records its start and stop hooks.
func node(name string, rec *recorder, opts ...core.Option) *core.Base {
	return core.NewService(append([]core.Option{core.Name(name), core.Logger(quiet),
		core.MonitorInterval(time.Hour),
		core.OnStart(func(context.Context) error { rec.add(name + " start"); return nil }),
		core.OnStop(func(context.Context) error { rec.add(name + " stop"); return nil }),
	}, opts...)...)
}

// Store is a user type embedding *core.Base, as users write services.
type Store struct {
	*core.Base
	rows int
}

func (s *Store) Rows() int { return s.rows }

func newStore(name string, rec *recorder, opts ...core.Option) *Store {
	s := &Store{}
	s.Base = node(name, rec, append(opts, core.OnStart(func(context.Context) error {
		s.rows = 42
		return nil
	}))...)
	return s
}

func mustStart(t *testing.T, s core.Service) {
	t.Helper()
	if err := s.Start(t.Context()); err != nil {
		t.Fatalf("Start %s: got %v, want nil", s.Name(), err)
	}
}

func mustStop(t *testing.T, s core.Service) {
	t.Helper()
	if err := s.Stop(context.Background()); err != nil {
		t.Fatalf("Stop %s: got %v, want nil", s.Name(), err)
	}
}

func wantEvents(t *testing.T, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("events:\n got %q\nwant %q", got, want)
	}
}

func wantState(t *testing.T, s core.Service, want core.State) {
	t.Helper()
	if got := s.State(); got != want {
		t.Fatalf("%s: got state %v, want %v", s.Name(), got, want)
	}
}
