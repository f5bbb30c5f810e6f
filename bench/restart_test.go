package bench_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/coreservice/coreservice/bench"
	"github.com/coreservice/coreservice/deps"
)

var restartLoopOut = flag.Bool("bench.restartloop", false,
	"print the figures of TestRestartLoopUnderDefaultPolicies as benchmark results on stdout (for bench/run)")

// restartTimeout bounds every wait of the restart-cost scenario: the whole
// of one benchmark or test.
const restartTimeout = 10 * time.Minute

// restarts is the restart-cost scenario: it supervises c's body with r,
// waits for its first start, then crashes it n times, each time waiting
// for the restarted child to start and be running for the supervisor (so
// no implementation is credited for a restart it has not finished), and
// then stops it. loop runs the restarts: it is given the function that
// runs one (so that a benchmark can time them with b.Loop).
func restarts(tb testing.TB, r bench.Restarter, c *bench.Crasher, loop func(one func())) bench.Supervised {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), restartTimeout)
	defer cancel()
	s, err := r.Supervise(ctx, c.Body)
	if err != nil {
		tb.Fatal(err)
	}
	if err := c.AwaitStart(ctx); err != nil {
		tb.Fatal(err)
	}
	if err := s.Running(ctx); err != nil {
		tb.Fatal(err)
	}
	loop(func() {
		if err := c.Crash(ctx); err != nil {
			tb.Fatal(err)
		}
		if err := c.AwaitStart(ctx); err != nil {
			tb.Fatal(err)
		}
		if err := s.Running(ctx); err != nil {
			tb.Fatal(err)
		}
	})
	if err := s.Stop(ctx); err != nil {
		tb.Fatalf("%s: Stop: got %v, want nil", r.Name(), err)
	}
	return s
}

// BenchmarkRestart is scenario (h), first part: the cost of one restart of
// a child that fails as soon as it is told to, restarted with no delay:
// the bare baseline (a goroutine calling the body in a loop), suture with
// an infinite FailureThreshold, coreservice's deps.Supervise with
// backoff.ZeroBackOff. One op is one restart: the crash, the library's
// restart, and the wait until the new child runs (its body has begun, and
// for coreservice the requirement's Current returns it). Building,
// starting and stopping the supervisor are left out.
func BenchmarkRestart(b *testing.B) {
	for _, r := range bench.RestartImpls() {
		b.Run("impl="+r.Name(), func(b *testing.B) {
			c := bench.NewCrasher()
			n := 0
			restarts(b, r, c, func(one func()) {
				b.ReportAllocs()
				for b.Loop() {
					one()
					n++
				}
				b.StopTimer()
			})
			if got, want := c.Starts(), int64(n+1); got != want {
				b.Fatalf("starts of the child: got %d, want %d", got, want)
			}
		})
	}
}

func TestRestartCostScenarioRestartsTheChildEveryTime(t *testing.T) {
	const n = 50
	for _, r := range bench.RestartImpls() {
		t.Run(r.Name(), func(t *testing.T) {
			c := bench.NewCrasher()
			s := restarts(t, r, c, func(one func()) {
				for range n {
					one()
				}
			})
			if got, want := c.Starts(), int64(n+1); got != want {
				t.Errorf("starts of the child: got %d, want %d", got, want)
			}
			if cs, ok := s.(interface{ Restarts() int }); ok {
				if got := cs.Restarts(); got != n {
					t.Errorf("restarts counted by deps.Requirement.Restarts: got %d, want %d", got, n)
				}
			}
		})
	}
}

func TestRestartScenarioWaitsEndWithTheirContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := bench.NewCrasher()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		start := time.Now()
		if err := c.AwaitStart(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("AwaitStart with no child: got %v, want %v", err, context.DeadlineExceeded)
		}
		if err := c.Crash(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Crash with no child: got %v, want %v", err, context.DeadlineExceeded)
		}
		if got := time.Since(start); got != time.Minute {
			t.Errorf("waits ended after: got %v, want %v", got, time.Minute)
		}
	})
}

func TestRestartedCoreserviceChildIsRunningWhenRunningReturns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var r bench.Restarter
		for _, x := range bench.RestartImpls() {
			if x.Name() == "coreservice" {
				r = x
			}
		}
		c := bench.NewCrasher()
		ctx := context.Background()
		s, err := r.Supervise(ctx, c.Body)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			if err := c.AwaitStart(ctx); err != nil {
				t.Fatal(err)
			}
			if err := s.Running(ctx); err != nil {
				t.Fatal(err)
			}
			if got := s.(interface{ Restarts() int }).Restarts(); got != i {
				t.Errorf("restarts once the child runs: got %d, want %d", got, i)
			}
			if err := c.Crash(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.AwaitStart(ctx); err != nil {
			t.Fatal(err)
		}
		if err := s.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		if err := s.Running(ctx); err == nil {
			t.Error("Running after Stop: got nil, want an error")
		}
	})
}

// crashLoopFor is how long each crash loop runs, in fake time: past
// coreservice's give-up (MaxElapsedTime 15 min).
const crashLoopFor = 20 * time.Minute

// checkpoints are the times at which the restarts so far are reported.
var checkpoints = []time.Duration{time.Second, 10 * time.Second, time.Minute, 10 * time.Minute}

// steadyFrom and steadyTo are the window of the steady-state rate.
const steadyFrom, steadyTo = 5 * time.Minute, 10 * time.Minute

// upTo counts the restarts at or before d.
func upTo(restarts []time.Duration, d time.Duration) int {
	n := 0
	for _, r := range restarts {
		if r <= d {
			n++
		}
	}
	return n
}

// steadyRate is the restarts per minute in (steadyFrom, steadyTo].
func steadyRate(restarts []time.Duration) float64 {
	n := upTo(restarts, steadyTo) - upTo(restarts, steadyFrom)
	return float64(n) / (steadyTo - steadyFrom).Minutes()
}

// exponentialIntervals returns the first n current intervals of
// backoff.NewExponentialBackOff(): 500 ms, then ×1.5, capped at 60 s
// (once an interval reaches 60 s / 1.5, the next is 60 s).
func exponentialIntervals(n int) []time.Duration {
	out := make([]time.Duration, n)
	cur := 500 * time.Millisecond
	for i := range out {
		out[i] = cur
		if cur >= 40*time.Second {
			cur = time.Minute
		} else {
			cur = time.Duration(float64(cur) * 1.5)
		}
	}
	return out
}

// restartsBy returns how many restarts a crash loop under the exponential
// policy has made by d if each delay is the interval times f plus add,
// before giving up.
func restartsBy(d time.Duration, f float64, add time.Duration) int {
	var t time.Duration
	n := 0
	for _, c := range exponentialIntervals(1000) {
		t += time.Duration(f*float64(c)) + add
		if t > d {
			return n
		}
		n++
	}
	return n
}

func TestRestartLoopUnderDefaultPolicies(t *testing.T) {
	var lines, rows []string
	for _, r := range bench.CrashLoopImpls() {
		t.Run(strings.ReplaceAll(r.Name(), "/", "_"), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				res, err := bench.CrashLoop(context.Background(), r, crashLoopFor)
				if err != nil {
					t.Fatal(err)
				}
				checkCrashLoop(t, r.Name(), res)
				line := fmt.Sprintf("BenchmarkRestartLoop/impl=%s \t1", r.Name())
				row := fmt.Sprintf("%-40s", r.Name())
				for _, c := range checkpoints {
					n := upTo(res.Restarts, c)
					line += fmt.Sprintf("\t%d restarts-%ds", n, int(c.Seconds()))
					row += fmt.Sprintf(" %6d", n)
				}
				line += fmt.Sprintf("\t%.2f restarts/min-steady", steadyRate(res.Restarts))
				row += fmt.Sprintf(" %8.2f/min", steadyRate(res.Restarts))
				if res.GaveUp {
					line += fmt.Sprintf("\t1 gave-up\t%.1f gave-up-s\t%d restarts-total", res.GaveUpAt.Seconds(), len(res.Restarts))
					row += fmt.Sprintf("  gave up at %v after %d restarts", res.GaveUpAt.Round(100*time.Millisecond), len(res.Restarts))
				} else {
					line += fmt.Sprintf("\t0 gave-up\t%d restarts-total", len(res.Restarts))
					row += fmt.Sprintf("  never gave up in %v (%d restarts)", crashLoopFor, len(res.Restarts))
				}
				lines = append(lines, line)
				rows = append(rows, row)
			})
		})
	}
	t.Logf("restarts of a crash-looping child, by time (fake clock):\n%-40s %6s %6s %6s %6s %12s\n%s",
		"policy", "1s", "10s", "60s", "600s", "300s-600s", strings.Join(rows, "\n"))
	if *restartLoopOut {
		for _, l := range lines {
			fmt.Println(l)
		}
	}
}

// checkCrashLoop checks a crash loop's restarts against the analytic
// expectation of its policy.
func checkCrashLoop(t *testing.T, name string, res bench.CrashLoopResult) {
	t.Helper()
	if len(res.Restarts) < 2 {
		t.Fatalf("restarts: got %d, want more than 1", len(res.Restarts))
	}
	switch {
	case strings.HasPrefix(name, "suture/"):
		checkSuture(t, res)
	case strings.HasPrefix(name, "coreservice/"):
		checkExponential(t, res, !strings.HasSuffix(name, "-nojitter"))
	default:
		t.Fatalf("no expectation for %s", name)
	}
}

// checkSuture checks suture's default policy: the failure count (decayed
// by half every 30 s: not at all within a burst, which takes no time)
// passes FailureThreshold 5 at the 6th failure, which pauses the
// supervisor for FailureBackoff 15 s jittered into [15 s, 22.5 s); the
// resume clears the count and restarts the child. So 5 restarts at once,
// then bursts of 6 (the resume's and 5 more), one per pause; it never
// gives up.
func checkSuture(t *testing.T, res bench.CrashLoopResult) {
	t.Helper()
	if res.GaveUp {
		t.Errorf("suture gave up at %v: want it never to", res.GaveUpAt)
	}
	bursts := map[time.Duration]int{}
	var at []time.Duration
	for _, r := range res.Restarts {
		if bursts[r] == 0 {
			at = append(at, r)
		}
		bursts[r]++
	}
	for i, b := range at {
		want := 6
		if i == 0 {
			want = 5
		}
		if i == len(at)-1 && b == crashLoopFor && bursts[b] < want {
			continue // a resume at the very instant of the stop may be cut short by it
		}
		if bursts[b] != want {
			t.Errorf("restarts in burst %d (at %v): got %d, want %d", i, b, bursts[b], want)
		}
		if i == 0 {
			if b != 0 {
				t.Errorf("first burst at %v, want 0s", b)
			}
			continue
		}
		if gap := b - at[i-1]; gap < 15*time.Second || gap >= 22500*time.Millisecond {
			t.Errorf("pause before burst %d: got %v, want in [15s, 22.5s)", i, gap)
		}
	}
	for _, c := range checkpoints {
		got := upTo(res.Restarts, c)
		lo, hi := 5+6*int(c/(22500*time.Millisecond)), 5+6*int(c/(15*time.Second))
		if got < lo || got > hi {
			t.Errorf("restarts by %v: got %d, want in [%d, %d]", c, got, lo, hi)
		}
	}
}

// checkExponential checks backoff.NewExponentialBackOff(): restart k comes
// after the sum of the first k delays, each delay the current interval
// (500 ms ×1.5 up to 60 s) drawn from [×0.5, ×1.5] with jitter, exactly the
// interval without; NextBackOff returns Stop (the supervisor gives up)
// once the time since the start plus the next delay exceeds
// MaxElapsedTime 15 min.
func checkExponential(t *testing.T, res bench.CrashLoopResult, jitter bool) {
	t.Helper()
	if !res.GaveUp {
		t.Fatalf("coreservice never gave up in %v: want it to give up before 15m", crashLoopFor)
	}
	var gaveUp *deps.GaveUpError
	if !errors.As(res.Err, &gaveUp) || !errors.Is(res.Err, bench.ErrInjected) {
		t.Errorf("the supervision's failure: got %v, want a *deps.GaveUpError wrapping %v", res.Err, bench.ErrInjected)
	}
	const maxElapsed = 15 * time.Minute
	if jitter {
		for _, c := range checkpoints {
			got := upTo(res.Restarts, c)
			lo, hi := restartsBy(c, 1.5, 1), restartsBy(c, 0.5, 0)
			if got < lo || got > hi {
				t.Errorf("restarts by %v: got %d, want in [%d, %d]", c, got, lo, hi)
			}
		}
		// The last restart was allowed (its delay ended by 15 min), and the
		// next delay, at most 90 s, was not.
		if res.GaveUpAt <= maxElapsed-90*time.Second || res.GaveUpAt > maxElapsed {
			t.Errorf("gave up at %v: want in (13m30s, 15m]", res.GaveUpAt)
		}
		return
	}
	var want []time.Duration
	var sum time.Duration
	for _, c := range exponentialIntervals(1000) {
		if sum+c > maxElapsed {
			break
		}
		sum += c
		want = append(want, sum)
	}
	if len(res.Restarts) != len(want) {
		t.Fatalf("restarts: got %d, want %d (%v)", len(res.Restarts), len(want), want)
	}
	for i, r := range res.Restarts {
		if d := r - want[i]; d < -time.Millisecond || d > time.Millisecond {
			t.Errorf("restart %d: got %v, want %v", i+1, r, want[i])
		}
	}
	if res.GaveUpAt != res.Restarts[len(res.Restarts)-1] {
		t.Errorf("gave up at %v: want at the last restart's failure, %v", res.GaveUpAt, res.Restarts[len(res.Restarts)-1])
	}
}
