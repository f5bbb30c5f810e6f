package deps_test

import (
	"context"
	"testing"

	"go.uber.org/goleak"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/internal/coretest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Store is a user type embedding *core.Base, as users write services.
type Store struct {
	*core.Base
	rows int
}

func (s *Store) Rows() int { return s.rows }

func newStore(name string, rec *coretest.Recorder, opts ...core.Option) *Store {
	s := &Store{}
	s.Base = coretest.Node(name, rec, append(opts, core.OnStart(func(context.Context) error {
		s.rows = 42
		return nil
	}))...)
	return s
}

func wantState(t *testing.T, s core.Service, want core.State) {
	t.Helper()
	if got := s.State(); got != want {
		t.Fatalf("%s: got state %v, want %v", s.Name(), got, want)
	}
}

func isFinal(s core.State) bool { return s == core.StateTerminated || s == core.StateFailed }

// wantNoneRunning fails the test if an instance among insts is left
// running: each was either never started (New) or stopped. when says at
// what point of the test ("once the parent stopped").
func wantNoneRunning(t *testing.T, insts []*coretest.Instance, when string) {
	t.Helper()
	for _, inst := range insts {
		if st := inst.State(); st != core.StateNew && !isFinal(st) {
			t.Fatalf("%s %s: got %v, want it never started or stopped", inst.Name(), when, st)
		}
	}
}

// wantAllStopped fails the test unless every instance among insts is
// stopped (a final state). when is as for wantNoneRunning.
func wantAllStopped(t *testing.T, insts []*coretest.Instance, when string) {
	t.Helper()
	for _, inst := range insts {
		if st := inst.State(); !isFinal(st) {
			t.Fatalf("%s %s: got %v, want it stopped", inst.Name(), when, st)
		}
	}
}
