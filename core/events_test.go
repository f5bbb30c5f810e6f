package core_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/coreservice/coreservice/core"
)

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestSettledClosesWhenStartFinishes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := core.NewService(core.Name("api"), core.Logger(quiet),
			core.OnStart(func(context.Context) error { time.Sleep(time.Second); return nil }))
		if err := s.Stop(context.Background()); err != nil || closed(s.Settled()) {
			t.Fatalf("Settled after a Stop before Start: got closed=%v (Stop %v), want open", closed(s.Settled()), err)
		}
		begin := time.Now()
		go func() { _ = s.Start(context.Background()) }()
		time.Sleep(500 * time.Millisecond)
		if closed(s.Settled()) || s.State() != core.StateStarting {
			t.Fatalf("Settled while starting: got closed=%v in state %v, want open", closed(s.Settled()), s.State())
		}
		<-s.Settled()
		if d := time.Since(begin); d != time.Second {
			t.Fatalf("Settled closed after %v, want 1s", d)
		}
		if s.State() != core.StateRunning {
			t.Fatalf("State once Settled: got %v, want running", s.State())
		}
		if err := s.Stop(context.Background()); err != nil {
			t.Fatalf("Stop: got %v, want nil", err)
		}
	})
}

func TestSettledClosesWhenStartFails(t *testing.T) {
	boom := errors.New("boom")
	s := core.NewService(core.Name("api"), core.Logger(quiet),
		core.OnStart(func(context.Context) error { return boom }))
	if err := s.Start(t.Context()); !errors.Is(err, boom) {
		t.Fatalf("Start: got %v, want %v", err, boom)
	}
	if !closed(s.Settled()) || s.State() != core.StateFailed {
		t.Fatalf("after a failed Start: got Settled closed=%v in state %v, want closed and failed", closed(s.Settled()), s.State())
	}
}
