package coretest_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/coreservice/coreservice/internal/coretest"
	"github.com/coreservice/coreservice/leader"
)

// campaign runs a Campaign of el in a goroutine and returns where its
// outcome arrives.
func campaign(ctx context.Context, el *coretest.Elector) <-chan leader.Leadership {
	ch := make(chan leader.Leadership, 1)
	go func() {
		l, err := el.Campaign(ctx)
		if err != nil {
			l = nil
		}
		ch <- l
	}()
	return ch
}

// One elector leads at a time; the next is elected when the term ends
// (Resign at once, Lose after Expiry), with a greater token.
func TestElectionOneLeaderIncreasingTokens(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := &coretest.Election{Expiry: 10 * time.Second}
		a, b := e.Elector("a"), e.Elector("b")
		la, err := a.Campaign(t.Context())
		if err != nil || la.Token() != 1 {
			t.Fatalf("first campaign: got %v, %v, want token 1", la, err)
		}
		cb := campaign(t.Context(), b)
		synctest.Wait()
		if len(cb) != 0 {
			t.Fatalf("b elected while a leads, want b waiting")
		}
		if err := la.Resign(t.Context()); err != nil {
			t.Fatalf("Resign: got %v, want nil", err)
		}
		synctest.Wait()
		lb := <-cb
		if lb == nil || lb.Token() != 2 || la.Err() != nil {
			t.Fatalf("after a resigned: got b's term %v, a's Err %v; want token 2, nil", lb, la.Err())
		}
		if id, tok, ok := e.Leader(); !ok || id != "b" || tok != 2 {
			t.Fatalf("Leader: got %q %d %v, want b 2 true", id, tok, ok)
		}
		ca := campaign(t.Context(), a)
		errGone := errors.New("gone")
		start := time.Now()
		e.Lose(errGone)
		<-lb.Lost()
		if !errors.Is(lb.Err(), errGone) {
			t.Fatalf("Err after Lose: got %v, want %v", lb.Err(), errGone)
		}
		la2 := <-ca
		if d := time.Since(start); d != 10*time.Second || la2 == nil || la2.Token() != 3 {
			t.Fatalf("after Lose: a elected after %v with %v, want after 10s with token 3", d, la2)
		}
		if _, err := a.Campaign(t.Context()); err == nil {
			t.Fatalf("Campaign while leading: got nil, want an error")
		}
		_ = la2.Resign(t.Context())
	})
}

// While the election fails, campaigns return its error, also those
// waiting; after Recover they win.
func TestElectionFailAndRecover(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := &coretest.Election{}
		la, _ := e.Elector("a").Campaign(t.Context())
		b := e.Elector("b")
		errDown := errors.New("unreachable")
		done := make(chan error, 1)
		go func() { _, err := b.Campaign(t.Context()); done <- err }()
		synctest.Wait()
		e.Fail(errDown)
		if err := <-done; !errors.Is(err, errDown) {
			t.Fatalf("waiting campaign: got %v, want %v", err, errDown)
		}
		_ = la.Resign(t.Context())
		if _, err := b.Campaign(t.Context()); !errors.Is(err, errDown) {
			t.Fatalf("campaign while failing: got %v, want %v", err, errDown)
		}
		if n := e.Failures(); n != 2 {
			t.Fatalf("Failures: got %d, want 2", n)
		}
		e.Recover()
		lb, err := b.Campaign(t.Context())
		if err != nil || lb.Token() != 2 {
			t.Fatalf("after Recover: got %v, %v, want token 2", lb, err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		if _, err := e.Elector("c").Campaign(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("campaign ended by its context: got %v, want DeadlineExceeded", err)
		}
		if !e.WaitLeader(t.Context(), "b") {
			t.Fatalf("WaitLeader(b): got false, want true")
		}
		_ = lb.Resign(t.Context())
		if !e.WaitLeader(t.Context(), "") {
			t.Fatalf("WaitLeader(\"\"): got false, want true")
		}
	})
}
