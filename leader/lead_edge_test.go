package leader_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/internal/coretest"
	"github.com/coreservice/coreservice/leader"
)

// oddElector is a leader.Elector that misbehaves as its fields say. Each
// Campaign returns a new oddTerm with the next token (tokens[i] if set).
type oddElector struct {
	mu        sync.Mutex
	campaigns int
	terms     []*oddTerm

	campaign     func(ctx context.Context, n int) (leader.Leadership, error) // overrides the default when set
	lostAtOnce   bool                                                        // the term is lost before Campaign returns
	resignErr    error
	resignPanic  bool
	resignHang   chan struct{} // Resign ignores ctx and waits for it when set
	resignCalled atomic.Int32
}

type oddTerm struct {
	el    *oddElector
	token uint64
	once  sync.Once
	lost  chan struct{}
	mu    sync.Mutex
	err   error
}

func (e *oddElector) newTerm() *oddTerm {
	e.mu.Lock()
	defer e.mu.Unlock()
	t := &oddTerm{el: e, token: uint64(len(e.terms) + 1), lost: make(chan struct{})}
	e.terms = append(e.terms, t)
	return t
}

func (e *oddElector) Campaign(ctx context.Context) (leader.Leadership, error) {
	e.mu.Lock()
	e.campaigns++
	n := e.campaigns
	e.mu.Unlock()
	if e.campaign != nil {
		return e.campaign(ctx, n)
	}
	t := e.newTerm()
	if e.lostAtOnce {
		t.lose(errors.New("session ended before the campaign returned"))
	}
	return t, nil
}

// firstLostThenWait is a campaign function: the first term is lost before
// Campaign returns; later campaigns wait for their context.
func (e *oddElector) firstLostThenWait(ctx context.Context, n int) (leader.Leadership, error) {
	if n > 1 {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	tm := e.newTerm()
	tm.lose(errors.New("session ended before the campaign returned"))
	return tm, nil
}

func (e *oddElector) count() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.campaigns
}

func (t *oddTerm) lose(err error) {
	t.once.Do(func() {
		t.mu.Lock()
		t.err = err
		t.mu.Unlock()
		close(t.lost)
	})
}

func (t *oddTerm) Token() uint64         { return t.token }
func (t *oddTerm) Lost() <-chan struct{} { return t.lost }
func (t *oddTerm) Err() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.err
}

func (t *oddTerm) Resign(ctx context.Context) error {
	e := t.el
	e.resignCalled.Add(1)
	defer t.lose(nil)
	if e.resignHang != nil {
		<-e.resignHang
	}
	if e.resignPanic {
		panic("resign bug")
	}
	return e.resignErr
}

// gaugeReader reads coreservice.leader.is_leader from a manual reader.
func gaugeReader(t *testing.T) (core.Option, func() int64) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	return core.MeterProvider(mp), func() int64 {
		var rm metricdata.ResourceMetrics
		if err := reader.Collect(context.Background(), &rm); err != nil {
			t.Fatalf("Collect: got %v, want nil", err)
		}
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				if m.Name == "coreservice.leader.is_leader" {
					var sum int64
					for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
						sum += dp.Value
					}
					return sum
				}
			}
		}
		return 0
	}
}

// leadership lists the LeadershipWon and LeadershipLost events of ev.
func leadership(ev *coretest.Events) string {
	var got []string
	for _, e := range ev.All() {
		switch e := e.(type) {
		case core.LeadershipWon:
			got = append(got, fmt.Sprintf("won %d", e.Token))
		case core.LeadershipLost:
			got = append(got, fmt.Sprintf("lost %d: %v", e.Token, e.Err))
		}
	}
	return strings.Join(got, "|")
}

func stopErr(svc *core.Base) error { return svc.Stop(context.Background()) }

// The resign's error, at the parent's stop, is in Stop's result; the term
// is still recorded as ended (LeadershipLost, gauge back to 0).
func TestLeadResignErrorIsInStopResult(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		errResign := errors.New("etcdserver: request timed out")
		e := &oddElector{resignErr: errResign}
		var ev coretest.Events
		mopt, gauge := gaugeReader(t)
		svc := newService("svc", e, func(ctx context.Context) error { <-ctx.Done(); return nil },
			core.OnEvent(ev.Hook), mopt)
		coretest.MustStart(t, svc)
		synctest.Wait()
		if g := gauge(); g != 1 {
			t.Fatalf("is_leader while leading: got %d, want 1", g)
		}
		if err := stopErr(svc); !errors.Is(err, errResign) {
			t.Fatalf("Stop: got %v, want the resign's error %v", err, errResign)
		}
		if g := gauge(); g != 0 {
			t.Fatalf("is_leader after Stop: got %d, want 0", g)
		}
		if got, want := leadership(&ev), "won 1|lost 1: <nil>"; got != want {
			t.Fatalf("events: got %q, want %q", got, want)
		}
	})
}

// A Resign that panics fails the stop with a *core.PanicError, and the
// term is still recorded as ended: LeadershipLost, and the gauge back to 0.
func TestLeadResignPanicEndsTheTermAndReachesStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := &oddElector{resignPanic: true}
		var ev coretest.Events
		mopt, gauge := gaugeReader(t)
		svc := newService("svc", e, func(ctx context.Context) error { <-ctx.Done(); return nil },
			core.OnEvent(ev.Hook), mopt)
		coretest.MustStart(t, svc)
		synctest.Wait()
		var pe *core.PanicError
		if err := stopErr(svc); !errors.As(err, &pe) {
			t.Fatalf("Stop: got %v, want a *core.PanicError", err)
		}
		if g := gauge(); g != 0 {
			t.Fatalf("is_leader after a panicking Resign: got %d, want 0", g)
		}
		if got := leadership(&ev); !strings.HasPrefix(got, "won 1|lost 1") {
			t.Fatalf("events: got %q, want won 1 then lost 1", got)
		}
	})
}

// A Campaign that panics fails the service with a *core.PanicError; the
// process does not crash.
func TestLeadCampaignPanicFailsTheService(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := &oddElector{campaign: func(context.Context, int) (leader.Leadership, error) { panic("campaign bug") }}
		svc := newService("svc", e, func(ctx context.Context) error { <-ctx.Done(); return nil })
		err := svc.Start(t.Context())
		if err == nil {
			<-svc.Done()
			err = svc.Err()
		}
		var pe *core.PanicError
		if !errors.As(err, &pe) {
			t.Fatalf("service whose Campaign panics: got %v, want a *core.PanicError", err)
		}
	})
}

// A Campaign that returns neither a leadership nor an error is a failed
// campaign: the term never runs, the service runs on, standing by, and
// campaigns again after the backoff (not in a hot loop).
func TestLeadCampaignWithNeitherLeadershipNorErrorStandsBy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := &oddElector{campaign: func(context.Context, int) (leader.Leadership, error) { return nil, nil }}
		var ev coretest.Events
		var calls atomic.Int32
		svc := newService("svc", e, func(ctx context.Context) error { calls.Add(1); return nil }, core.OnEvent(ev.Hook))
		coretest.MustStart(t, svc)
		synctest.Wait()
		if n := e.count(); n != 1 {
			t.Fatalf("campaigns at once: got %d, want 1 (then a backoff)", n)
		}
		advance(time.Minute)
		if n := e.count(); n < 2 || n > 20 {
			t.Fatalf("campaigns within a minute: got %d, want a few (backoff from %v)", n, leader.CampaignRetryInitial)
		}
		if calls.Load() != 0 || len(coretest.OfType[core.LeadershipWon](&ev)) != 0 {
			t.Fatalf("got %d term calls and a LeadershipWon, want none", calls.Load())
		}
		if svc.State() != core.StateRunning {
			t.Fatalf("state: got %s, want Running", svc.State())
		}
		coretest.MustStop(t, svc)
	})
}

// A term whose leadership is already lost when Campaign returns is never
// worked in: the term function sees its context ended from its first
// instruction (the work of a lost term must not begin).
func TestLeadTermOfALeadershipLostAtOnceStartsCancelled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := &oddElector{}
		e.campaign = e.firstLostThenWait
		var live, calls atomic.Int32
		svc := newService("svc", e, func(ctx context.Context) error {
			calls.Add(1)
			if ctx.Err() == nil {
				live.Add(1)
			}
			return nil
		})
		coretest.MustStart(t, svc)
		synctest.Wait()
		coretest.MustStop(t, svc)
		if n := live.Load(); n != 0 {
			t.Fatalf("term calls with a live context on a lost leadership: got %d of %d, want 0", n, calls.Load())
		}
	})
}

// An elector whose every leadership is lost at once does not make Lead
// campaign in a hot loop: campaigns after a loss are paced (nothing
// unbounded), not made as fast as the CPU allows.
func TestLeadCampaignsAfterRepeatedInstantLossesArePaced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := &oddElector{}
		e.campaign = func(ctx context.Context, n int) (leader.Leadership, error) {
			if n > 1000 { // a safety net for the test, not the behaviour pinned
				<-ctx.Done()
				return nil, ctx.Err()
			}
			tm := e.newTerm()
			tm.lose(errors.New("keepalive failed"))
			return tm, nil
		}
		svc := newService("svc", e, func(ctx context.Context) error { <-ctx.Done(); return nil })
		coretest.MustStart(t, svc)
		synctest.Wait()
		n := e.count()
		coretest.MustStop(t, svc)
		if n > 10 {
			t.Fatalf("campaigns at one instant after instant losses: got %d, want a few (paced)", n)
		}
	})
}

// A Campaign that ignores its context cannot hold the stop beyond the
// service's StopTimeout: Stop returns, with an error.
func TestLeadCampaignIgnoringItsContextDoesNotHoldStopForever(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		e := &oddElector{campaign: func(context.Context, int) (leader.Leadership, error) {
			<-release
			return nil, errors.New("released")
		}}
		svc := newService("svc", e, func(ctx context.Context) error { return nil }, core.StopTimeout(10*time.Second))
		coretest.MustStart(t, svc)
		synctest.Wait()
		start := time.Now()
		err := stopErr(svc)
		took := time.Since(start)
		close(release)
		synctest.Wait()
		if err == nil || took > 10*time.Second {
			t.Fatalf("Stop with a stuck Campaign: got %v after %v, want an error within the StopTimeout 10s", err, took)
		}
	})
}

// A Resign that ignores its context cannot hold the stop beyond the
// service's StopTimeout.
func TestLeadResignIgnoringItsContextDoesNotHoldStopForever(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := &oddElector{resignHang: make(chan struct{})}
		svc := newService("svc", e, func(ctx context.Context) error { <-ctx.Done(); return nil }, core.StopTimeout(10*time.Second))
		coretest.MustStart(t, svc)
		synctest.Wait()
		start := time.Now()
		err := stopErr(svc)
		took := time.Since(start)
		close(e.resignHang)
		synctest.Wait()
		if err == nil || took > 10*time.Second {
			t.Fatalf("Stop with a stuck Resign: got %v after %v, want an error within the StopTimeout 10s", err, took)
		}
	})
}

// A Campaign that wins just as the stop begins (it returns a leadership
// after its context ended) is resigned at once, its term's work sees an
// ended context, and the gauge ends at 0 with LeadershipWon and
// LeadershipLost paired.
func TestLeadElectionWonAsTheStopBeginsIsResigned(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := &oddElector{}
		e.campaign = func(ctx context.Context, n int) (leader.Leadership, error) {
			<-ctx.Done()
			return e.newTerm(), nil // the store elected us as we gave up
		}
		var ev coretest.Events
		mopt, gauge := gaugeReader(t)
		var live atomic.Int32
		svc := newService("svc", e, func(ctx context.Context) error {
			if ctx.Err() == nil {
				live.Add(1)
			}
			<-ctx.Done()
			return nil
		}, core.OnEvent(ev.Hook), mopt)
		coretest.MustStart(t, svc)
		synctest.Wait()
		coretest.MustStop(t, svc)
		if r := e.resignCalled.Load(); r != 1 {
			t.Fatalf("Resign calls: got %d, want 1", r)
		}
		if n := live.Load(); n != 0 {
			t.Fatalf("term calls with a live context after the stop began: got %d, want 0", n)
		}
		if g := gauge(); g != 0 {
			t.Fatalf("is_leader after Stop: got %d, want 0", g)
		}
		if got := leadership(&ev); got != "" && got != "won 1|lost 1: <nil>" {
			t.Fatalf("events: got %q, want none, or won 1 and lost 1", got)
		}
	})
}

// Over many terms, lost and resigned, LeadershipWon and LeadershipLost
// alternate with matching tokens, the loss's reason in Err, nil at the
// stop; the gauge is 0 after each loss and at the end.
func TestLeadEventsAlternateWithMatchingTokens(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		el := &coretest.Election{}
		var ev coretest.Events
		mopt, gauge := gaugeReader(t)
		svc := newService("svc", el.Elector("a"), func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() },
			core.OnEvent(ev.Hook), mopt)
		coretest.MustStart(t, svc)
		synctest.Wait()
		var want []string
		for i := 1; i <= 5; i++ {
			el.Fail(errors.New("down"))
			el.Lose(fmt.Errorf("loss %d", i))
			synctest.Wait()
			if g := gauge(); g != 0 {
				t.Fatalf("is_leader after loss %d: got %d, want 0", i, g)
			}
			el.Recover()
			advance(leader.CampaignRetryMax + time.Second)
			want = append(want, fmt.Sprintf("won %d|lost %d: loss %d", i, i, i))
		}
		coretest.MustStop(t, svc)
		want = append(want, "won 6|lost 6: <nil>")
		if got := leadership(&ev); got != strings.Join(want, "|") {
			t.Fatalf("events:\n got %q\nwant %q", got, strings.Join(want, "|"))
		}
		if g := gauge(); g != 0 {
			t.Fatalf("is_leader after Stop: got %d, want 0", g)
		}
	})
}
