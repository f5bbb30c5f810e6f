package task_test

import (
	"context"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/internal/coretest"
	"github.com/coreservice/coreservice/task"
)

func TestTaskRunReachesItsServiceFromItsContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		logs := coretest.NewLogs()
		names := make(chan string, 10)
		svc := core.NewService(core.Name("ingest"), core.Logger(logs.Logger()),
			task.Func("fetch", func(ctx context.Context) error {
				core.Log(ctx).InfoContext(ctx, "fetching")
				names <- core.ServiceName(ctx)
				return nil
			}, task.Every(time.Second)))
		coretest.MustStart(t, svc)
		coretest.Advance(time.Second) // a second run
		synctest.Wait()
		coretest.MustStop(t, svc)
		close(names)
		got := coretest.Drained(names)
		if len(got) < 2 || slices.ContainsFunc(got, func(n string) bool { return n != "ingest" }) {
			t.Errorf("ServiceName in the task's runs: got %q, want ingest at least 2 times", got)
		}
		runs := len(got)
		recs := logs.Find("fetching")
		if len(recs) != runs {
			t.Errorf("got %d records \"fetching\", want %d", len(recs), runs)
		}
		for _, r := range recs {
			if r.Attrs["service"] != "ingest" {
				t.Errorf("record \"fetching\": got service=%q, want ingest", r.Attrs["service"])
			}
		}
	})
}
