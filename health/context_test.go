package health_test

import (
	"context"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/health"
	"github.com/coreservice/coreservice/internal/coretest"
)

func TestCheckReachesItsServiceFromItsContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		names := make(chan string, 10)
		svc := core.NewService(core.Name("db"), core.Logger(coretest.Quiet()), core.MonitorInterval(time.Second),
			health.Check("ping", func(ctx context.Context) error {
				names <- core.ServiceName(ctx)
				return nil
			}))
		coretest.MustStart(t, svc) // the run at Start
		if err := svc.Healthcheck(context.Background()); err != nil {
			t.Fatalf("Healthcheck: got %v, want nil", err)
		}
		coretest.Advance(time.Second) // a monitor tick
		synctest.Wait()
		coretest.MustStop(t, svc)
		close(names)
		if got := coretest.Drained(names); len(got) < 3 || slices.ContainsFunc(got, func(n string) bool { return n != "db" }) {
			t.Errorf("ServiceName in the check's runs (Start, Healthcheck, monitor): got %q, want db at least 3 times", got)
		}
	})
}
