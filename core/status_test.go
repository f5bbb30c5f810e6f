package core_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/deps"
	"github.com/coreservice/coreservice/internal/coretest"
)

func TestStatusNotReadyFailsHealthcheckButNotTheService(t *testing.T) {
	u := coretest.NewHostUnit("supervisor")
	svc := core.NewService(core.Name("db"), core.Logger(coretest.Quiet()), u)
	coretest.MustStart(t, svc)
	defer coretest.MustStop(t, svc)
	h := u.Host()

	h.SetStatus("supervisor", "running db#1", true)
	if err := svc.Healthcheck(context.Background()); err != nil {
		t.Fatalf("Healthcheck with a Ready status: got %v, want nil", err)
	}
	h.SetStatus("supervisor", "restarting (attempt 2, next in 1.5s)", false)
	err := svc.Healthcheck(context.Background())
	if !errors.Is(err, core.ErrUnhealthy) || !strings.Contains(err.Error(), "supervisor: restarting (attempt 2, next in 1.5s)") {
		t.Fatalf("Healthcheck with a status not Ready: got %v, want ErrUnhealthy naming the status", err)
	}
	if got, want := svc.Statuses(), []core.Status{{Name: "supervisor", Text: "restarting (attempt 2, next in 1.5s)"}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Statuses: got %v, want %v", got, want)
	}
	if svc.State() != core.StateRunning {
		t.Fatalf("state: got %v, want Running: a status never fails the service", svc.State())
	}

	h.SetStatus("supervisor", "", false)
	if got := svc.Statuses(); len(got) != 0 {
		t.Fatalf("Statuses after clearing: got %v, want none", got)
	}
	if err := svc.Healthcheck(context.Background()); err != nil {
		t.Fatalf("Healthcheck once cleared: got %v, want nil", err)
	}
}

func TestStatusesKeepTheOrderTheyWereFirstSetIn(t *testing.T) {
	u := coretest.NewHostUnit("u")
	svc := core.NewService(core.Name("svc"), core.Logger(coretest.Quiet()), u)
	coretest.MustStart(t, svc)
	defer coretest.MustStop(t, svc)
	h := u.Host()
	h.SetStatus("b", "one", true)
	h.SetStatus("a", "two", true)
	h.SetStatus("b", "three", false)
	want := []core.Status{{Name: "b", Text: "three"}, {Name: "a", Text: "two", Ready: true}}
	if got := svc.Statuses(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Statuses: got %v, want %v", got, want)
	}
}

func TestSetStatusWithAnInvalidNameIsLoggedNotSet(t *testing.T) {
	logs := coretest.NewLogs()
	u := coretest.NewHostUnit("u")
	svc := core.NewService(core.Name("svc"), core.Logger(logs.Logger()), u)
	coretest.MustStart(t, svc)
	defer coretest.MustStop(t, svc)
	for _, name := range []string{"", "a/b", "line\nbreak"} {
		u.Host().SetStatus(name, "text", false)
	}
	if got := svc.Statuses(); len(got) != 0 {
		t.Fatalf("Statuses: got %v, want none", got)
	}
	var n int
	for _, r := range logs.Records() {
		if strings.HasPrefix(r.Message, "Host.SetStatus(") && strings.HasSuffix(r.Message, ": not set") {
			n++
		}
	}
	if n != 3 {
		t.Fatalf("error records for invalid names: got %d, want 3 (%v)", n, logs.Records())
	}
}

// statusAtLaunch is a unit that sets a status that is not ready as it
// launches, before its service is Running.
type statusAtLaunch struct{}

func (statusAtLaunch) ApplyTo(c *core.Config) { c.AddUnit(statusAtLaunch{}) }
func (statusAtLaunch) Name() string           { return "restarter" }
func (statusAtLaunch) Launch(_ context.Context, h *core.Host) error {
	h.SetStatus("supervisor", "restarting (attempt 1 in 1s)", false)
	return nil
}

func TestStatusNotReadyDoesNotFailAParentsStart(t *testing.T) {
	db := core.NewService(core.Name("db"), core.Logger(coretest.Quiet()), statusAtLaunch{})
	api := core.NewService(core.Name("api"), core.Logger(coretest.Quiet()), deps.Requires(db))
	if err := api.Start(t.Context()); err != nil {
		t.Fatalf("Start: got %v, want nil: a requirement that is restarting is started, not ready", err)
	}
	defer coretest.MustStop(t, api)
	if err := api.Healthcheck(t.Context()); !errors.Is(err, core.ErrUnhealthy) ||
		!strings.Contains(err.Error(), "requirement db: ") || !strings.Contains(err.Error(), "supervisor: restarting (attempt 1 in 1s)") {
		t.Fatalf("parent's Healthcheck: got %v, want not ready, naming db's status", err)
	}
}
