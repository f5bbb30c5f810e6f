package coretest_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/coreservice/coreservice/internal/coretest"
)

func TestAdvanceMovesTheBubblesClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		coretest.Advance(time.Hour)
		if got := time.Since(start); got != time.Hour {
			t.Fatalf("fake time passed: got %v, want 1h", got)
		}
	})
}

func TestAdvanceOutsideABubblePanicsRatherThanSleep(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("Advance outside a bubble: got no panic, want one")
		}
	}()
	coretest.Advance(time.Hour)
}
