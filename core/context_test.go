package core_test

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/internal/coretest"
)

// seen records the service names core.ServiceName found, by caller.
type seen struct {
	mu    sync.Mutex
	names map[string][]string
}

func (s *seen) add(who string, ctx context.Context) {
	core.Log(ctx).InfoContext(ctx, who)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.names == nil {
		s.names = map[string][]string{}
	}
	s.names[who] = append(s.names[who], core.ServiceName(ctx))
}

func (s *seen) get(who string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.names[who])
}

func TestLogAndServiceNameFromTheContextsOfHooksUnitsAndChecks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		logs := coretest.NewLogs()
		var got seen
		unitRan := make(chan struct{})
		svc := core.NewService(core.Name("svc"), core.Logger(logs.Logger()), core.MonitorInterval(time.Second),
			core.OnStart(func(ctx context.Context) error { got.add("OnStart", ctx); return nil }),
			core.OnStop(func(ctx context.Context) error { got.add("OnStop", ctx); return nil }),
			&unit{name: "u", fn: func(ctx context.Context) error {
				got.add("unit", ctx)
				close(unitRan)
				<-ctx.Done()
				return nil
			}},
			&check{name: "c", fn: func(ctx context.Context) error { got.add("check", ctx); return nil }},
		)
		// Another service whose unit calls svc's Healthcheck with its own
		// context: the checks still belong to svc.
		other := core.NewService(core.Name("other"), core.Logger(coretest.Quiet()),
			&unit{name: "hc", fn: func(ctx context.Context) error {
				if err := svc.Healthcheck(ctx); err != nil {
					t.Errorf("Healthcheck: got %v, want nil", err)
				}
				got.add("other unit", ctx)
				return nil
			}})
		coretest.MustStart(t, svc) // the check's run at Start
		<-unitRan
		if err := svc.Healthcheck(context.Background()); err != nil { // a Healthcheck call
			t.Fatalf("Healthcheck: got %v, want nil", err)
		}
		coretest.MustStart(t, other) // a Healthcheck call with other's context
		synctest.Wait()
		time.Sleep(time.Second) // a monitor tick
		synctest.Wait()
		coretest.MustStop(t, other)
		coretest.MustStop(t, svc)

		for who, n := range map[string]int{"OnStart": 1, "OnStop": 1, "unit": 1, "check": 4, "other unit": 1} {
			want := "svc"
			if who == "other unit" {
				want = "other"
			}
			names := got.get(who)
			if len(names) < n {
				t.Errorf("%s: got %d calls, want at least %d", who, len(names), n)
			}
			for _, name := range names {
				if name != want {
					t.Errorf("%s: ServiceName got %q, want %q", who, name, want)
				}
			}
		}
		for _, who := range []string{"OnStart", "OnStop", "unit", "check"} {
			recs := logs.Find(who)
			if len(recs) == 0 {
				t.Errorf("no record %q in svc's logger", who)
			}
			for _, r := range recs {
				if r.Attrs["service"] != "svc" {
					t.Errorf("record %q: got service=%q, want svc", who, r.Attrs["service"])
				}
			}
		}
	})
}

func TestLogOutsideAnyServiceIsTheDefault(t *testing.T) {
	if got := core.Log(context.Background()); got != slog.Default() {
		t.Errorf("Log(Background): got %v, want slog.Default()", got)
	}
	var none context.Context // nil: tolerated, as documented
	if got := core.Log(none); got != slog.Default() {
		t.Errorf("Log(nil): got %v, want slog.Default()", got)
	}
	if got := core.ServiceName(context.Background()); got != "" {
		t.Errorf("ServiceName(Background): got %q, want \"\"", got)
	}
}
