package task_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
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

var errSession = errors.New("session expired")

// runLog records the runs of leader tasks across replicas: who ran, with
// which token, from when to when, and whether two runs ever overlapped.
type runLog struct {
	mu      sync.Mutex
	t0      time.Time
	running int
	overlap []string
	runs    []run
}

type run struct {
	replica    string
	token      uint64
	hasToken   bool
	start, end time.Duration
	cause      error // context.Cause of the run's context when it ended, if it had ended
}

func newRunLog() *runLog { return &runLog{t0: time.Now()} }

// fn is the task function of replica: it records its run, which lasts d
// unless its context ends first.
func (l *runLog) fn(replica string, d time.Duration) func(context.Context) error {
	return func(ctx context.Context) error {
		tok, ok := leader.Token(ctx)
		l.mu.Lock()
		if l.running != 0 {
			l.overlap = append(l.overlap, fmt.Sprintf("%s (token %d) at %v", replica, tok, time.Since(l.t0)))
		}
		l.running++
		i := len(l.runs)
		l.runs = append(l.runs, run{replica: replica, token: tok, hasToken: ok, start: time.Since(l.t0), end: -1})
		l.mu.Unlock()
		var err error
		select {
		case <-ctx.Done():
			err = ctx.Err()
		case <-time.After(d):
		}
		l.mu.Lock()
		l.running--
		l.runs[i].end = time.Since(l.t0)
		if err != nil {
			l.runs[i].cause = context.Cause(ctx)
		}
		l.mu.Unlock()
		return err
	}
}

func (l *runLog) get() ([]run, []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]run(nil), l.runs...), append([]string(nil), l.overlap...)
}

// replica is a service named name whose task "report" runs under
// task.Leader with el, plus opts.
func replica(name string, el leader.Elector, fn func(context.Context) error, opts ...core.Option) (*core.Base, *task.Task[struct{}]) {
	tk := task.Func("report", fn, task.Leader(el), task.Every(time.Second))
	base := []core.Option{core.Name(name), core.Logger(coretest.Quiet()), core.MonitorInterval(time.Hour), tk}
	return core.NewService(append(base, opts...)...), tk
}

// Over many terms on one election, exactly one of three replicas runs the
// task at any moment, every run carries its term's token, and the tokens
// strictly increase from term to term.
func TestLeaderOneReplicaRunsAtATime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		el := &coretest.Election{Expiry: 3 * time.Second}
		log := newRunLog()
		var tasks []*task.Task[struct{}]
		for _, n := range []string{"a", "b", "c"} {
			svc, tk := replica(n, el.Elector(n), log.fn(n, 700*time.Millisecond))
			tasks = append(tasks, tk)
			coretest.MustStart(t, svc)
		}
		const terms = 30
		for i := range terms {
			advance(time.Duration(2000+137*i%1000) * time.Millisecond)
			if !el.Lose(errSession) {
				t.Fatalf("term %d: got no leader to lose, want one", i)
			}
			advance(time.Duration(3000+71*i%500) * time.Millisecond) // past Expiry: the next leader runs
		}
		runs, overlap := log.get()
		if len(overlap) > 0 {
			t.Fatalf("runs overlapping another: got %v, want none", overlap)
		}
		replicas := map[string]bool{}
		tokens := map[uint64]bool{}
		for i, r := range runs {
			if !r.hasToken {
				t.Fatalf("run %d of %s: got no leader.Token, want one", i, r.replica)
			}
			replicas[r.replica] = true
			tokens[r.token] = true
			if i == 0 {
				continue
			}
			p := runs[i-1]
			if r.start < p.end {
				t.Fatalf("run %d of %s began at %v, before run %d of %s ended at %v", i, r.replica, r.start, i-1, p.replica, p.end)
			}
			switch {
			case r.token < p.token:
				t.Fatalf("run %d: got token %d after %d, want tokens that never decrease", i, r.token, p.token)
			case r.token == p.token && r.replica != p.replica:
				t.Fatalf("run %d: token %d held by %s and %s, want one replica per term", i, r.token, p.replica, r.replica)
			}
		}
		if len(tokens) < terms {
			t.Fatalf("terms with runs: got %d, want at least %d", len(tokens), terms)
		}
		if len(replicas) < 2 {
			t.Fatalf("replicas that ran: got %v, want leadership to move", replicas)
		}
		for _, tk := range tasks {
			if f := tk.Failures(); f != 0 {
				t.Fatalf("failures: got %d, want 0 (a run cut by a loss is no failure)", f)
			}
		}
	})
}

// The loss of leadership cancels the run in progress at once, with a
// cause matching leader.ErrLost and the reason; it is no failure of the task
// (no event, no retry); and the next leader's first run begins after the old
// run ended.
func TestLeaderLossCancelsRunAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		el := &coretest.Election{Expiry: time.Second}
		log := newRunLog()
		var evA coretest.Events
		a, ta := replica("a", el.Elector("a"), log.fn("a", time.Hour), core.OnEvent(evA.Hook))
		coretest.MustStart(t, a)
		synctest.Wait()
		b, _ := replica("b", el.Elector("b"), log.fn("b", time.Hour))
		coretest.MustStart(t, b)
		advance(time.Minute)
		lostAt := time.Since(log.t0)
		el.Lose(errSession)
		synctest.Wait()
		runs, _ := log.get()
		if len(runs) != 1 || runs[0].replica != "a" {
			t.Fatalf("runs: got %+v, want one by a", runs)
		}
		if runs[0].end != lostAt {
			t.Fatalf("run ended at %v, want at the loss, %v", runs[0].end, lostAt)
		}
		if c := runs[0].cause; !errors.Is(c, leader.ErrLost) || !errors.Is(c, errSession) {
			t.Fatalf("cause: got %v, want one matching leader.ErrLost and %v", c, errSession)
		}
		advance(2 * time.Second)
		runs, overlap := log.get()
		if len(runs) != 2 || runs[1].token != 2 || len(overlap) != 0 {
			t.Fatalf("runs: got %+v (overlaps %v), want a's, then one of the next leader, token 2", runs, overlap)
		}
		if runs[1].start < runs[0].end {
			t.Fatalf("the next leader's first run began at %v, before the old one's ended at %v", runs[1].start, runs[0].end)
		}
		if f := ta.Failures(); f != 0 {
			t.Fatalf("failures of a: got %d, want 0", f)
		}
		for _, e := range evA.All() {
			switch e.(type) {
			case core.TaskRunFailed, core.TaskRetryScheduled:
				t.Fatalf("event of a: got %#v, want no failure event", e)
			}
		}
	})
}

// The replicas that do not lead run nothing, however long they wait.
func TestLeaderStandbyRunsNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		el := &coretest.Election{}
		log := newRunLog()
		a, _ := replica("a", el.Elector("a"), log.fn("a", time.Millisecond))
		coretest.MustStart(t, a)
		synctest.Wait()
		for _, n := range []string{"b", "c"} {
			s, _ := replica(n, el.Elector(n), log.fn(n, time.Millisecond))
			coretest.MustStart(t, s)
		}
		advance(time.Hour)
		runs, _ := log.get()
		if len(runs) < 100 {
			t.Fatalf("runs of the leader: got %d, want hundreds", len(runs))
		}
		for _, r := range runs {
			if r.replica != "a" || r.token != 1 {
				t.Fatalf("run: got %s with token %d, want only a's, token 1", r.replica, r.token)
			}
		}
	})
}

// With the store unreachable, the service starts anyway and stands by,
// logging the failing campaigns at most once a minute (the first at once,
// with its error); once the store is back, it leads and runs.
func TestLeaderStoreUnreachableAtStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		el := &coretest.Election{}
		errDown := errors.New("dial tcp 127.0.0.1:2379: connection refused")
		el.Fail(errDown)
		logs := coretest.NewLogs()
		log := newRunLog()
		svc, _ := replica("a", el.Elector("a"), log.fn("a", time.Millisecond), core.Logger(logs.Logger()))
		coretest.MustStart(t, svc)
		synctest.Wait()
		if got := svc.State(); got != core.StateRunning {
			t.Fatalf("state: got %v, want running", got)
		}
		standby := func() []coretest.Record { return logs.Find("campaign failed; standing by") }
		recs := standby()
		if len(recs) != 1 || recs[0].Level != slog.LevelWarn || !strings.Contains(recs[0].Attrs["error"], errDown.Error()) {
			t.Fatalf("records at start: got %+v, want one WARN with the error", recs)
		}
		advance(time.Minute - time.Nanosecond)
		if got := len(standby()); got != 1 {
			t.Fatalf("records over the first minute: got %d, want 1", got)
		}
		const minutes = 10
		advance(minutes*time.Minute - time.Minute)
		recs = standby()
		failures := el.Failures()
		if len(recs) < 2 || len(recs) > minutes {
			t.Fatalf("records over %d minutes: got %d, want 2 to %d (%d failed campaigns)", minutes, len(recs), minutes, failures)
		}
		// A retry at most every CampaignRetryMax, randomized by half.
		if want := int(minutes * time.Minute / (leader.CampaignRetryMax * 3 / 2)); failures < want {
			t.Fatalf("failed campaigns over %d minutes: got %d, want at least %d", minutes, failures, want)
		}
		counted := 1
		for _, r := range recs[1:] {
			var n int
			if _, err := fmt.Sscan(r.Attrs["failures"], &n); err != nil || n < 1 {
				t.Fatalf("record %+v: got failures %q, want a count", r, r.Attrs["failures"])
			}
			counted += n
		}
		if counted > failures {
			t.Fatalf("failures in the records: got %d, want at most %d", counted, failures)
		}
		if runs, _ := log.get(); len(runs) != 0 {
			t.Fatalf("runs while the store is down: got %d, want 0", len(runs))
		}
		el.Recover()
		advance(leader.CampaignRetryMax * 3 / 2)
		if id, _, ok := el.Leader(); !ok || id != "a" {
			t.Fatalf("leader once the store is back: got %q, want a", id)
		}
		if runs, _ := log.get(); len(runs) == 0 {
			t.Fatalf("runs once the store is back: got 0, want some")
		}
	})
}

// Stop resigns at once: another replica is elected at the same instant,
// without waiting for the seat to expire; and a replica's events are
// LeadershipWon and LeadershipLost in order, with the tokens of its terms,
// the reason of a loss, and a nil Err for the resign.
func TestLeaderStopResignsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		el := &coretest.Election{Expiry: time.Hour}
		log := newRunLog()
		var ev coretest.Events
		a, _ := replica("a", el.Elector("a"), log.fn("a", time.Second), core.OnEvent(ev.Hook))
		coretest.MustStart(t, a)
		advance(time.Second / 2)
		el.Lose(errSession)
		advance(time.Hour) // a is elected again once the seat expired
		b, _ := replica("b", el.Elector("b"), log.fn("b", time.Second))
		coretest.MustStart(t, b)
		synctest.Wait()
		if id, tok, _ := el.Leader(); id != "a" || tok != 2 {
			t.Fatalf("leader: got %q (token %d), want a (token 2)", id, tok)
		}
		stopped := time.Now()
		coretest.MustStop(t, a)
		synctest.Wait()
		if id, tok, _ := el.Leader(); id != "b" || tok != 3 {
			t.Fatalf("leader after a's Stop: got %q (token %d), want b (token 3)", id, tok)
		}
		if d := time.Since(stopped); d != 0 {
			t.Fatalf("b elected %v after a's Stop, want at once", d)
		}
		var got []string
		for _, e := range ev.All() {
			switch e := e.(type) {
			case core.LeadershipWon:
				got = append(got, fmt.Sprintf("won %s/%s %d", e.Service, e.Unit, e.Token))
			case core.LeadershipLost:
				got = append(got, fmt.Sprintf("lost %s/%s %d %v", e.Service, e.Unit, e.Token, e.Err))
			}
		}
		coretest.WantEvents(t, got, []string{"won a/task report 1", "lost a/task report 1 " + errSession.Error(),
			"won a/task report 2", "lost a/task report 2 <nil>"})
	})
}

// A nil elector, a typed nil one and one whose Validate fails are invalid
// options, reported by Start with the task and the service.
func TestLeaderBadInput(t *testing.T) {
	errBad := errors.New("empty election key")
	cases := []struct {
		name string
		e    leader.Elector
		want string
	}{
		{"nil", nil, "nil leader.Elector"},
		{"typed nil", (*coretest.Elector)(nil), "nil leader.Elector"},
		{"invalid", &coretest.Elector{Invalid: errBad}, errBad.Error()},
	}
	cases = append(cases, struct {
		name string
		e    leader.Elector
		want string
	}{"status name", (&coretest.Election{}).Elector("a"), "cannot name a status"})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			name := "report"
			if tc.name == "status name" {
				name = "report/daily" // a probe path segment cannot hold '/'
			}
			tk := task.Func(name, func(context.Context) error { return nil }, task.Leader(tc.e))
			err := newService(tk).Start(t.Context())
			if !errors.Is(err, core.ErrInvalidOption) {
				t.Fatalf("Start: got %v, want an error matching core.ErrInvalidOption", err)
			}
			for _, s := range []string{"svc", "task " + name, "task.Leader", tc.want} {
				if !strings.Contains(err.Error(), s) {
					t.Fatalf("Start: got %q, want it to name %q", err, s)
				}
			}
		})
	}
}

// task.Leader prints itself, and compares by identity.
func TestLeaderOptionString(t *testing.T) {
	el := (&coretest.Election{}).Elector("a")
	o := task.Leader(el)
	if got, want := task.Func("r", func(context.Context) error { return nil }, o).String(),
		`task.New("r", task.Leader(*coretest.Elector))`; got != want {
		t.Fatalf("String: got %s, want %s", got, want)
	}
	if o == task.Leader(el) {
		t.Fatalf("two Leader options: got equal, want distinct")
	}
	if got := task.Leader(nil).String(); got != "task.Leader(<nil>)" {
		t.Fatalf("String of nil: got %s, want task.Leader(<nil>)", got)
	}
}

// The task's role is a status of its service, for the probes: "leader
// (token N)" while it leads, "standby" otherwise, ready in both cases; it
// is cleared once the service stops.
func TestLeaderStatus(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		el := &coretest.Election{}
		log := newRunLog()
		a, _ := replica("a", el.Elector("a"), log.fn("a", time.Millisecond))
		coretest.MustStart(t, a)
		synctest.Wait()
		b, _ := replica("b", el.Elector("b"), log.fn("b", time.Millisecond))
		coretest.MustStart(t, b)
		synctest.Wait()
		want := func(svc *core.Base, text string) {
			t.Helper()
			got := svc.Statuses()
			if len(got) != 1 || got[0] != (core.Status{Name: "leader report", Text: text, Ready: true}) {
				t.Fatalf("statuses of %s: got %+v, want leader report: %q, ready", svc.Name(), got, text)
			}
		}
		want(a, "leader (token 1)")
		want(b, "standby")
		coretest.MustStop(t, a)
		synctest.Wait()
		want(b, "leader (token 2)")
		if got := a.Statuses(); len(got) != 0 {
			t.Fatalf("statuses of a stopped: got %+v, want none", got)
		}
	})
}

// A task with several workers campaigns once: every worker runs in the
// same terms, with the same token; a loss cancels them all, and with a
// Retry policy too it is no failure and schedules no retry.
func TestLeaderOneCampaignPerTask(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		el := &coretest.Election{}
		var tokens sync.Map // worker run's token -> count
		var ev coretest.Events
		tk := task.Func("report", func(ctx context.Context) error {
			tok, _ := leader.Token(ctx)
			n, _ := tokens.LoadOrStore(tok, new(atomic.Int32))
			n.(*atomic.Int32).Add(1)
			<-ctx.Done()
			return ctx.Err()
		}, task.Leader(el.Elector("a")), task.Workers(3),
			task.Retry(func() backoff.BackOff { return backoff.NewConstantBackOff(time.Second) }))
		svc := newService(tk, core.OnEvent(ev.Hook))
		coretest.MustStart(t, svc)
		synctest.Wait()
		el.Lose(errSession)
		synctest.Wait()
		coretest.MustStop(t, svc)
		for _, tok := range []uint64{1, 2} {
			n, ok := tokens.Load(tok)
			if !ok || n.(*atomic.Int32).Load() != 3 {
				t.Fatalf("runs in term %d: got %v, want 3 (one per worker)", tok, n)
			}
		}
		var won int
		for _, e := range ev.All() {
			switch e.(type) {
			case core.LeadershipWon:
				won++
			case core.TaskRunFailed, core.TaskRetryScheduled:
				t.Fatalf("event: got %#v, want no failure event", e)
			}
		}
		if won != 2 || tk.Failures() != 0 {
			t.Fatalf("got %d LeadershipWon and %d failures, want 2 and 0", won, tk.Failures())
		}
	})
}

// A worker that ended (Once) stays ended in the next terms; the task keeps
// the leadership once its work is done, so that no other replica redoes it.
func TestLeaderOnceKeepsLeadership(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		el := &coretest.Election{}
		var runs atomic.Int32
		tk := task.Func("report", func(context.Context) error { runs.Add(1); return nil },
			task.Leader(el.Elector("a")), task.Once())
		coretest.MustStart(t, newService(tk))
		synctest.Wait() // a leads, and has run once
		el.Lose(errSession)
		synctest.Wait() // a leads again, token 2, and runs nothing
		if _, tok, _ := el.Leader(); tok != 2 {
			t.Fatalf("token after the loss: got %d, want 2", tok)
		}
		b, _ := replica("b", el.Elector("b"), func(context.Context) error { runs.Add(100); return nil })
		coretest.MustStart(t, b)
		advance(time.Hour)
		if id, _, _ := el.Leader(); id != "a" || runs.Load() != 1 {
			t.Fatalf("got leader %q and runs %d, want a, 1", id, runs.Load())
		}
	})
}
