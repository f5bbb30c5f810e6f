package task_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/internal/coretest"
	"github.com/coreservice/coreservice/leader"
	"github.com/coreservice/coreservice/task"
)

// edgeElector is a leader.Elector whose Resign fails with resignErr, or
// whose first leadership is already lost when Campaign returns.
type edgeElector struct {
	mu         sync.Mutex
	n          int
	resignErr  error
	lostAtOnce bool
	winAtStop  bool // Campaign waits for its context to end, then wins
	resigned   atomic.Int32
}

type edgeTerm struct {
	e     *edgeElector
	tok   uint64
	once  sync.Once
	lost  chan struct{}
	errMu sync.Mutex
	err   error
}

func (e *edgeElector) Campaign(ctx context.Context) (leader.Leadership, error) {
	e.mu.Lock()
	e.n++
	n := e.n
	e.mu.Unlock()
	if e.winAtStop {
		<-ctx.Done()
	}
	if e.lostAtOnce && n > 1 {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	t := &edgeTerm{e: e, tok: uint64(n), lost: make(chan struct{})}
	if e.lostAtOnce {
		t.end(errSession)
	}
	return t, nil
}

func (t *edgeTerm) end(err error) {
	t.once.Do(func() {
		t.errMu.Lock()
		t.err = err
		t.errMu.Unlock()
		close(t.lost)
	})
}
func (t *edgeTerm) Token() uint64         { return t.tok }
func (t *edgeTerm) Lost() <-chan struct{} { return t.lost }
func (t *edgeTerm) Err() error {
	t.errMu.Lock()
	defer t.errMu.Unlock()
	return t.err
}
func (t *edgeTerm) Resign(context.Context) error {
	t.e.resigned.Add(1)
	t.end(nil)
	return t.e.resignErr
}

// The resign's error at the stop is in Stop's result.
func TestLeaderResignErrorIsInStopResult(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		errResign := errors.New("etcdserver: request timed out")
		a, _ := replica("a", &edgeElector{resignErr: errResign}, func(ctx context.Context) error { return nil })
		coretest.MustStart(t, a)
		advance(3 * time.Second)
		if err := a.Stop(context.Background()); !errors.Is(err, errResign) {
			t.Fatalf("Stop: got %v, want the resign's error %v", err, errResign)
		}
	})
}

// No run starts on a leadership that is already lost when Campaign
// returns: "no new run starts until leadership is won again".
func TestLeaderNoRunStartsOnALeadershipAlreadyLost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var runs atomic.Int32
		a, _ := replica("a", &edgeElector{lostAtOnce: true}, func(ctx context.Context) error {
			runs.Add(1)
			return nil
		})
		coretest.MustStart(t, a)
		advance(time.Minute)
		coretest.MustStop(t, a)
		if n := runs.Load(); n != 0 {
			t.Fatalf("runs on a leadership lost before it was used: got %d, want 0", n)
		}
	})
}

// Under Workers(4), every worker runs with the term's token while leading,
// all are cancelled at once by the loss, none runs while standing by, and
// all run again, with the new token, in the next term.
func TestLeaderWorkersAllStopAtTheLossAndResumeNextTerm(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		el := &coretest.Election{Expiry: time.Minute}
		var mu sync.Mutex
		running := 0
		byTok := map[uint64]int{}
		var noTok atomic.Int32
		fn := func(ctx context.Context) error {
			tok, ok := leader.Token(ctx)
			if !ok {
				noTok.Add(1)
			}
			mu.Lock()
			running++
			byTok[tok]++
			mu.Unlock()
			<-ctx.Done()
			mu.Lock()
			running--
			mu.Unlock()
			return ctx.Err()
		}
		tk := task.Func("report", fn, task.Leader(el.Elector("a")), task.Workers(4), task.Every(time.Second))
		a := core.NewService(core.Name("a"), core.Logger(coretest.Quiet()), core.MonitorInterval(time.Hour), tk)
		coretest.MustStart(t, a)
		advance(time.Second)
		mu.Lock()
		if running != 4 || byTok[1] != 4 {
			mu.Unlock()
			t.Fatalf("while leading: got %d running, %d with token 1, want 4 and 4", running, byTok[1])
		}
		mu.Unlock()
		el.Lose(errSession)
		synctest.Wait()
		mu.Lock()
		if running != 0 {
			mu.Unlock()
			t.Fatalf("after the loss: got %d running, want 0", running)
		}
		mu.Unlock()
		advance(30 * time.Second) // the seat is taken for Expiry
		mu.Lock()
		if running != 0 || len(byTok) != 1 {
			mu.Unlock()
			t.Fatalf("while standing by: got %d running, tokens %v, want none new", running, byTok)
		}
		mu.Unlock()
		advance(time.Minute)
		mu.Lock()
		got := byTok[2]
		mu.Unlock()
		if got != 4 || noTok.Load() != 0 {
			t.Fatalf("next term: got %d runs with token 2 (%d without a token), want 4 (0)", got, noTok.Load())
		}
		if f := tk.Failures(); f != 0 {
			t.Fatalf("failures: got %d, want 0", f)
		}
		coretest.MustStop(t, a)
	})
}

// Under Timeout, a run cut by the loss ends with the loss's cause
// (ErrLost), not a deadline, and it is no failure.
func TestLeaderLossCauseWinsOverTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		el := &coretest.Election{}
		var causes []error
		var mu sync.Mutex
		tk := task.Func("report", func(ctx context.Context) error {
			<-ctx.Done()
			mu.Lock()
			causes = append(causes, context.Cause(ctx))
			mu.Unlock()
			return ctx.Err()
		}, task.Leader(el.Elector("a")), task.Timeout(time.Hour), task.Every(time.Second))
		a := core.NewService(core.Name("a"), core.Logger(coretest.Quiet()), core.MonitorInterval(time.Hour), tk)
		coretest.MustStart(t, a)
		advance(time.Minute)
		el.Fail(errors.New("down"))
		el.Lose(errSession)
		synctest.Wait()
		mu.Lock()
		c := append([]error(nil), causes...)
		mu.Unlock()
		if len(c) != 1 || !errors.Is(c[0], leader.ErrLost) {
			t.Fatalf("causes: got %v, want one matching leader.ErrLost", c)
		}
		if f := tk.Failures(); f != 0 {
			t.Fatalf("failures: got %d, want 0", f)
		}
		coretest.MustStop(t, a)
	})
}

// Under Retry, a retry waiting when leadership is lost does not run while
// standing by; the loss counts no retry and raises no failure event.
func TestLeaderRetryWaitingAtTheLossDoesNotRunOnStandby(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		el := &coretest.Election{Expiry: time.Hour}
		var runs atomic.Int32
		errFlaky := errors.New("flaky")
		var ev coretest.Events
		tk := task.Func("report", func(ctx context.Context) error {
			runs.Add(1)
			return errFlaky
		}, task.Leader(el.Elector("a")), task.Retry(func() backoff.BackOff { return backoff.NewConstantBackOff(10 * time.Second) }), task.Every(time.Hour))
		a := core.NewService(core.Name("a"), core.Logger(coretest.Quiet()), core.MonitorInterval(time.Hour), tk, core.OnEvent(ev.Hook))
		coretest.MustStart(t, a)
		synctest.Wait()
		before := runs.Load()
		retries := len(coretest.OfType[core.TaskRetryScheduled](&ev))
		el.Lose(errSession)
		advance(time.Minute)
		if n := runs.Load(); n != before {
			t.Fatalf("runs while standing by: got %d more, want 0", n-before)
		}
		if r := len(coretest.OfType[core.TaskRetryScheduled](&ev)); r != retries {
			t.Fatalf("TaskRetryScheduled after the loss: got %d more, want 0", r-retries)
		}
		if a.State() != core.StateRunning {
			t.Fatalf("state: got %s (%v), want Running", a.State(), a.Err())
		}
		coretest.MustStop(t, a)
	})
}

// The role of a task under Leader reads "leader (token N)" with the
// current token while leading and "standby" after the loss.
func TestLeaderStatusFollowsEachTerm(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		el := &coretest.Election{Expiry: time.Minute}
		a, _ := replica("a", el.Elector("a"), func(ctx context.Context) error { return nil })
		coretest.MustStart(t, a)
		status := func() string {
			for _, s := range a.Statuses() {
				if s.Name == "leader report" {
					return s.Text
				}
			}
			return "<none>"
		}
		synctest.Wait()
		for _, want := range []string{"leader (token 1)", "leader (token 2)", "leader (token 3)"} {
			if got := status(); got != want {
				t.Fatalf("while leading: got %q, want %q", got, want)
			}
			el.Lose(errSession)
			synctest.Wait()
			if got := status(); got != "standby" {
				t.Fatalf("after the loss: got %q, want standby", got)
			}
			advance(time.Minute)
		}
		coretest.MustStop(t, a)
	})
}

// Under Once, a run cut by the loss of leadership was not a successful
// run: the worker has not ended, and runs again in the next term (with the
// new token); once that run succeeds, it ends.
func TestLeaderOnceRunCutByTheLossRunsAgainNextTerm(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		el := &coretest.Election{}
		var mu sync.Mutex
		var tokens []uint64
		tk := task.Func("report", func(ctx context.Context) error {
			tok, _ := leader.Token(ctx)
			mu.Lock()
			tokens = append(tokens, tok)
			n := len(tokens)
			mu.Unlock()
			if n == 1 {
				<-ctx.Done() // the first run is cut by the loss
				return ctx.Err()
			}
			return nil
		}, task.Leader(el.Elector("a")), task.Once())
		a := core.NewService(core.Name("a"), core.Logger(coretest.Quiet()), core.MonitorInterval(time.Hour), tk)
		coretest.MustStart(t, a)
		synctest.Wait()
		el.Lose(errSession)
		advance(time.Hour)
		mu.Lock()
		got := append([]uint64(nil), tokens...)
		mu.Unlock()
		if len(got) != 2 || got[1] != 2 {
			t.Fatalf("runs' tokens: got %v, want [1 2] (the cut run done again in term 2, then ended)", got)
		}
		if a.State() != core.StateRunning {
			t.Fatalf("state: got %s (%v), want Running", a.State(), a.Err())
		}
		coretest.MustStop(t, a)
	})
}

// Each term won starts the workers as a launch does: Delay first.
func TestLeaderEachTermWaitsTheDelayBeforeItsFirstRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		el := &coretest.Election{}
		st := newStamps()
		tk := task.Func("report", func(ctx context.Context) error {
			st.add()
			<-ctx.Done()
			return ctx.Err()
		}, task.Leader(el.Elector("a")), task.Delay(5*time.Second), task.Every(time.Second))
		a := core.NewService(core.Name("a"), core.Logger(coretest.Quiet()), core.MonitorInterval(time.Hour), tk)
		coretest.MustStart(t, a)
		advance(10 * time.Second)
		el.Lose(errSession) // at 10s; term 2 is won at once
		advance(10 * time.Second)
		wantStamps(t, st, secs(5, 15)...)
		coretest.MustStop(t, a)
	})
}

// A run's failure while leading fails the service with its error, and the
// term is resigned so that another replica leads at once.
func TestLeaderRunFailureFailsTheServiceAndResigns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		el := &coretest.Election{Expiry: time.Hour}
		errReport := errors.New("report: disk full")
		a, _ := replica("a", el.Elector("a"), func(context.Context) error { return errReport })
		if err := a.Start(t.Context()); err == nil {
			<-a.Done()
			err = a.Err()
			if !errors.Is(err, errReport) {
				t.Fatalf("Err: got %v, want %v", err, errReport)
			}
		} else if !errors.Is(err, errReport) {
			t.Fatalf("Start: got %v, want %v", err, errReport)
		}
		synctest.Wait()
		if id, _, ok := el.Leader(); ok {
			t.Fatalf("leader after the failure: got %q, want none (resigned)", id)
		}
	})
}

// An election won just as the stop begins (Campaign returns a leadership
// after its context ended) starts no run, and is resigned.
func TestLeaderElectionWonAsTheStopBeginsRunsNothingAndResigns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var runs atomic.Int32
		e := &edgeElector{winAtStop: true}
		a, _ := replica("a", e, func(ctx context.Context) error { runs.Add(1); return nil })
		coretest.MustStart(t, a)
		synctest.Wait()
		coretest.MustStop(t, a)
		if n := runs.Load(); n != 0 {
			t.Fatalf("runs after the stop began: got %d, want 0", n)
		}
		if r := e.resigned.Load(); r != 1 {
			t.Fatalf("Resign calls: got %d, want 1", r)
		}
	})
}
