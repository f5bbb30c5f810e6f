//go:build !race

package task_test

import (
	"context"
	"runtime"
	"testing"

	"github.com/coreservice/coreservice/internal/coretest"
	"github.com/coreservice/coreservice/task"
)

// TestHotPathDoesNotAllocate checks issue #3's budget: with telemetry off
// (the OpenTelemetry global provider, which no test of this package
// installs) and Every(0), a run allocates nothing. It counts the
// allocations of the whole process between two runs far apart, so that the
// service's start and stop are left out. The race detector allocates on its
// own, hence the build tag.
func TestHotPathDoesNotAllocate(t *testing.T) {
	const from, to = 1000, 101000
	var m0, m1 runtime.MemStats
	var n int
	done := make(chan struct{})
	tk := task.New("hot", func(context.Context) (int, error) {
		switch n++; n {
		case from:
			runtime.ReadMemStats(&m0)
		case to:
			runtime.ReadMemStats(&m1)
			close(done)
			return n, task.ErrDone
		}
		return n, nil
	}, task.Every(0))
	tk.OnResult(func(context.Context, int) error { return nil }) // consumers cost nothing either
	svc := newService(tk)
	coretest.MustStart(t, svc)
	<-done
	coretest.MustStop(t, svc)
	if perRun := float64(m1.Mallocs-m0.Mallocs) / (to - from); perRun >= 0.01 {
		t.Fatalf("allocations per run: got %.4f, want 0", perRun)
	}
}
