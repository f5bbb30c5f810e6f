package task_test

import (
	"context"
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
		time.Sleep(time.Second) // a second run
		synctest.Wait()
		coretest.MustStop(t, svc)
		close(names)
		runs := 0
		for name := range names {
			runs++
			if name != "ingest" {
				t.Errorf("run %d: ServiceName got %q, want ingest", runs, name)
			}
		}
		if runs < 2 {
			t.Errorf("got %d runs, want at least 2", runs)
		}
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
