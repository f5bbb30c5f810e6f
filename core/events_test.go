package core_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/internal/coretest"
)

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestChangedClosesAtEveryStateChange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := core.NewService(core.Name("svc"), core.Logger(coretest.Quiet()),
			core.OnStart(func(context.Context) error { time.Sleep(time.Second); return nil }))
		ch := s.Changed()
		if err := s.Stop(context.Background()); err != nil || closed(ch) {
			t.Fatalf("Changed after a Stop before Start: got closed=%v (Stop %v), want open: nothing changed", closed(ch), err)
		}
		begin := time.Now()
		go func() { _ = s.Start(context.Background()) }()
		<-ch
		if s.State() != core.StateStarting || time.Since(begin) != 0 {
			t.Fatalf("first change: got %v after %v, want starting at once", s.State(), time.Since(begin))
		}
		ch = s.Changed()
		<-ch
		if s.State() != core.StateRunning || time.Since(begin) != time.Second {
			t.Fatalf("second change: got %v after %v, want running after 1s", s.State(), time.Since(begin))
		}
		ch = s.Changed()
		go func() { _ = s.Stop(context.Background()) }()
		<-ch
		<-s.Done()
		final := s.Changed()
		synctest.Wait()
		if closed(final) {
			t.Fatal("Changed taken in a final state: got closed, want never closed")
		}
	})
}

func TestChangedOfAnUnusableBaseNeverCloses(t *testing.T) {
	var zero core.Base
	if closed(zero.Changed()) {
		t.Fatal("Changed of a zero Base: got closed, want open")
	}
	if err := zero.Start(context.Background()); !errors.Is(err, core.ErrInvalidOption) {
		t.Fatalf("Start of a zero Base: got %v, want ErrInvalidOption", err)
	}
}
