package core_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/deps"
	"github.com/coreservice/coreservice/internal/coretest"
)

// holder is a started service named name whose unit the test acts as.
func holder(t *testing.T, name string, rec *coretest.Recorder, opts ...core.Option) (*core.Base, *core.Host) {
	t.Helper()
	u := coretest.NewHostUnit("holder")
	svc := coretest.Node(name, rec, append([]core.Option{u}, opts...)...)
	coretest.MustStart(t, svc)
	return svc, u.Host()
}

func TestAcquireStartsTheServiceAndTheStopReleasesItAfterTheOnStopHooks(t *testing.T) {
	rec := &coretest.Recorder{}
	db := coretest.Node("db", rec)
	api, h := holder(t, "api", rec, deps.Requires(coretest.Node("cfg", rec)))
	if err := h.Acquire(t.Context(), "db", db); err != nil {
		t.Fatalf("Acquire: got %v, want nil", err)
	}
	if db.State() != core.StateRunning {
		t.Fatalf("db after Acquire: got %v, want Running", db.State())
	}
	got := api.Dependencies()
	if len(got) != 2 || got[1].Requirement.Name() != "db" || got[1].Service != db || !got[1].Requirement.Owned() {
		t.Fatalf("Dependencies: got %v, want cfg then the held db", got)
	}
	coretest.MustStop(t, api)
	coretest.WantEvents(t, rec.Events(), []string{"cfg start", "api start", "db start", "api stop", "db stop", "cfg stop"})
	if db.State() != core.StateTerminated {
		t.Fatalf("db after the holder's stop: got %v, want Terminated", db.State())
	}
}

func TestReleaseStopsTheServiceAndWaitsForIt(t *testing.T) {
	rec := &coretest.Recorder{}
	_, h := holder(t, "api", rec)
	db := coretest.Node("db", rec, core.OnStop(func(context.Context) error { return errors.New("flush failed") }))
	if err := h.Acquire(t.Context(), "db", db); err != nil {
		t.Fatalf("Acquire: got %v, want nil", err)
	}
	err := h.Release(t.Context(), db)
	if err == nil || !strings.Contains(err.Error(), "requirement db") || !strings.Contains(err.Error(), "flush failed") {
		t.Fatalf("Release: got %v, want the stop error of requirement db", err)
	}
	if !isFinal(db.State()) {
		t.Fatalf("db once Release returned: got %v, want a final state", db.State())
	}
	if err := h.Release(t.Context(), db); !errors.Is(err, core.ErrNotHeld) {
		t.Fatalf("second Release: got %v, want ErrNotHeld", err)
	}
}

func TestAnAcquiredServiceThatFailsDoesNotFailTheHolder(t *testing.T) {
	rec := &coretest.Recorder{}
	api, h := holder(t, "api", rec)
	fu := coretest.NewHostUnit("fail")
	db := coretest.Node("db", rec, fu)
	if err := h.Acquire(t.Context(), "db", db); err != nil {
		t.Fatalf("Acquire: got %v, want nil", err)
	}
	fu.Host().Fail(errors.New("disk full"))
	<-db.Done()
	if api.State() != core.StateRunning {
		t.Fatalf("holder: got %v, want Running", api.State())
	}
	if err := api.Healthcheck(t.Context()); !errors.Is(err, core.ErrUnhealthy) || !strings.Contains(err.Error(), "requirement db is failed") {
		t.Fatalf("holder's Healthcheck: got %v, want the failed held requirement named", err)
	}
	if err := h.Release(t.Context(), db); err != nil {
		t.Fatalf("Release of the failed service: got %v, want nil", err)
	}
	if err := api.Healthcheck(t.Context()); err != nil {
		t.Fatalf("holder's Healthcheck once released: got %v, want nil", err)
	}
}

func TestAcquireThatFailsHoldsNothing(t *testing.T) {
	rec := &coretest.Recorder{}
	api, h := holder(t, "api", rec)
	db := coretest.Node("db", rec, core.OnStart(func(context.Context) error { return errors.New("no route") }))
	err := h.Acquire(t.Context(), "db", db)
	if err == nil || !strings.Contains(err.Error(), "acquire db: ") || !strings.Contains(err.Error(), "no route") {
		t.Fatalf("Acquire: got %v, want the start error naming the requirement", err)
	}
	if len(api.Dependencies()) != 0 {
		t.Fatalf("Dependencies: got %v, want none", api.Dependencies())
	}
	if err := h.Release(t.Context(), db); !errors.Is(err, core.ErrNotHeld) {
		t.Fatalf("Release: got %v, want ErrNotHeld", err)
	}
}

func TestAcquireInheritsTheHoldersLogger(t *testing.T) {
	logs := coretest.NewLogs()
	u := coretest.NewHostUnit("holder")
	api := core.NewService(core.Name("api"), core.Logger(logs.Logger()), u)
	coretest.MustStart(t, api)
	defer coretest.MustStop(t, api)
	db := core.NewService(core.Name("db"))
	if err := u.Host().Acquire(t.Context(), "db", db); err != nil {
		t.Fatalf("Acquire: got %v, want nil", err)
	}
	if len(logs.Find("service running")) < 2 {
		t.Fatalf("records: got %v, want db's running record in the holder's logger", logs.Records())
	}
}

func TestAcquireBadInput(t *testing.T) {
	rec := &coretest.Recorder{}
	api, h := holder(t, "api", rec, deps.Requires(coretest.Node("cfg", rec)))
	db := coretest.Node("db", rec)
	if err := h.Acquire(t.Context(), "db", db); err != nil {
		t.Fatalf("Acquire: got %v, want nil", err)
	}
	var zero *core.Base
	cases := []struct {
		name string
		svc  core.Service
		want string
	}{
		{"", coretest.Node("x", rec), `Host.Acquire("")`},
		{"a/b", coretest.Node("x", rec), `Host.Acquire("a/b")`},
		{"nil", nil, "nil service"},
		{"typed nil", zero, "nil service"},
		{"self", api, "cannot require itself"},
		{"cfg", coretest.Node("x", rec), `the name "cfg" is taken`},
		{"db", coretest.Node("x", rec), `the name "db" is taken`},
		{"again", db, "held by api already"},
	}
	for _, tc := range cases {
		err := h.Acquire(t.Context(), tc.name, tc.svc)
		if !errors.Is(err, core.ErrInvalidOption) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Acquire(%q): got %v, want ErrInvalidOption with %q", tc.name, err, tc.want)
		}
	}
}

func TestAcquireOfAServiceThatRequiresTheHolderIsACycle(t *testing.T) {
	rec := &coretest.Recorder{}
	u := coretest.NewHostUnit("holder")
	api := coretest.Node("api", rec, u)
	coretest.MustStart(t, api)
	defer coretest.MustStop(t, api)
	loop := coretest.Node("loop", rec, deps.Requires(api))
	err := u.Host().Acquire(t.Context(), "loop", loop)
	var ce *core.CycleError
	if !errors.As(err, &ce) {
		t.Fatalf("Acquire: got %v, want a *CycleError", err)
	}
}

func TestStopDuringAcquireLeavesNothingRunning(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &coretest.Recorder{}
		api, h := holder(t, "api", rec)
		db := coretest.Node("db", rec, core.OnStart(func(ctx context.Context) error {
			<-ctx.Done() // a start that takes until it is aborted
			return ctx.Err()
		}), core.StartTimeout(time.Hour))
		acquired := make(chan error, 1)
		go func() { acquired <- h.Acquire(context.Background(), "db", db) }()
		synctest.Wait()
		coretest.MustStop(t, api)
		err := <-acquired
		if err == nil || !strings.Contains(err.Error(), "api is stopping") {
			t.Fatalf("Acquire: got %v, want it ended by the holder's stop", err)
		}
		if !isFinal(db.State()) {
			t.Fatalf("db once the holder stopped: got %v, want a final state", db.State())
		}
		if err := h.Acquire(context.Background(), "late", coretest.Node("late", rec)); err == nil {
			t.Fatal("Acquire after the stop: got nil, want an error")
		}
	})
}

func isFinal(s core.State) bool { return s == core.StateTerminated || s == core.StateFailed }
