package main

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/coreservice/coreservice/internal/coretest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestFlakyConnectionIsRestartedAndTheProbeSwitches runs the example with
// connections that last 300 ms for 5 s, on a free port. Whatever the
// jitter, the third dial is refused, so the third restart waits at least
// 400 ms, more than the 250 ms between probes: the probe is seen
// restarting, and ready again once conn#4 runs.
func TestFlakyConnectionIsRestartedAndTheProbeSwitches(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	var out coretest.Buffer
	if err := run(ctx, "127.0.0.1:0", 300*time.Millisecond, &out, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatalf("run: got %v, want nil", err)
	}
	got := out.String()
	for _, want := range []string{
		"probe: /readyz 200 ok",
		"event: restart 1 of db in ",
		": task conn#1/keepalive worker 1: connection reset by peer",
		"event: restarted db as conn#2 (attempt 1, down ",
		"event: restart 3 of db in ",
		"deps.Supervise(db): factory: dial: connection refused",
		"probe: /readyz 503 [-]api/db/supervisor failed: restarting (attempt ",
		"event: restarted db as conn#4 (attempt 3, down ",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output: want a line with %q; got:\n%s", want, got)
		}
	}
	// Ready again after the restarting answer.
	if i, j := strings.Index(got, "503 [-]api/db/supervisor"), strings.LastIndex(got, "200 ok"); i < 0 || j < i {
		t.Errorf("output: want the probe ready again after restarting; got:\n%s", got)
	}
}
