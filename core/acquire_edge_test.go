package core_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/deps"
	"github.com/coreservice/coreservice/health"
	"github.com/coreservice/coreservice/internal/coretest"
)

// foreign is a service of a user's own type, not a *core.Base. Its Start
// waits for startGate when set, and its Stop for stopGate, both ignoring
// their context.
type foreign struct {
	name                string
	startGate, stopGate chan struct{}

	mu    sync.Mutex
	state core.State
	done  chan struct{}
}

func newForeign(name string) *foreign {
	return &foreign{name: name, state: core.StateNew, done: make(chan struct{})}
}

func (f *foreign) Name() string { return f.name }

func (f *foreign) Start(context.Context) error {
	if f.startGate != nil {
		<-f.startGate
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.state == core.StateNew {
		f.state = core.StateRunning
	}
	return nil
}

func (f *foreign) Stop(context.Context) error {
	if f.stopGate != nil {
		<-f.stopGate
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.state == core.StateRunning {
		f.state = core.StateTerminated
		close(f.done)
	}
	return nil
}

func (f *foreign) Healthcheck(context.Context) error { return nil }

func (f *foreign) State() core.State {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state
}

func (f *foreign) Done() <-chan struct{} { return f.done }
func (f *foreign) Err() error            { return nil }

// The two Releases race on real goroutines (a synctest bubble runs them
// one after the other too often to find the window): many rounds, each
// cheap, so that a Release that returns early is seen.
func TestConcurrentReleasesReturnOnlyOnceTheServiceStopped(t *testing.T) {
	rec := &coretest.Recorder{}
	_, h := holder(t, "api", rec)
	for i := range 10000 {
		gate := make(chan struct{})
		db := coretest.Node("db", rec, core.OnStop(func(context.Context) error {
			<-gate
			return nil
		}))
		if err := h.Acquire(t.Context(), "db", db); err != nil {
			t.Fatalf("Acquire: got %v, want nil", err)
		}
		begin := make(chan struct{})
		results := make(chan error, 2)
		for range 2 {
			go func() {
				<-begin
				results <- h.Release(context.Background(), db)
			}()
		}
		close(begin)
		// db's stop waits for gate: the first Release to return is the
		// other one, which must not say nil before db stopped.
		err := <-results
		st := db.State()
		close(gate)
		<-results
		if !errors.Is(err, core.ErrNotHeld) && !isFinal(st) {
			t.Fatalf("round %d: a Release returned %v while db was %v, want ErrNotHeld or to return once db stopped", i, err, st)
		}
	}
}

func TestServiceAcquiredByTwoHoldersRunsUntilBothReleaseIt(t *testing.T) {
	rec := &coretest.Recorder{}
	_, h1 := holder(t, "api", rec)
	_, h2 := holder(t, "worker", rec)
	db := coretest.Node("db", rec)
	if err := h1.Acquire(t.Context(), "db", db); err != nil {
		t.Fatalf("first Acquire: got %v, want nil", err)
	}
	if err := h2.Acquire(t.Context(), "db", db); err != nil {
		t.Fatalf("second Acquire: got %v, want nil (it joins)", err)
	}
	if err := h1.Release(t.Context(), db); err != nil {
		t.Fatalf("first Release: got %v, want nil", err)
	}
	if db.State() != core.StateRunning {
		t.Fatalf("db once one holder released it: got %v, want Running (the other holds it)", db.State())
	}
	if err := h2.Release(t.Context(), db); err != nil {
		t.Fatalf("second Release: got %v, want nil", err)
	}
	if db.State() != core.StateTerminated {
		t.Fatalf("db once both released it: got %v, want Terminated", db.State())
	}
	coretest.WantEvents(t, rec.Events(), []string{"api start", "worker start", "db start", "db stop"})
}

func TestServiceAcquiredByTwoHoldersStopsWithTheLastHoldersStop(t *testing.T) {
	rec := &coretest.Recorder{}
	api, h1 := holder(t, "api", rec)
	worker, h2 := holder(t, "worker", rec)
	db := coretest.Node("db", rec)
	for _, h := range []*core.Host{h1, h2} {
		if err := h.Acquire(t.Context(), "db", db); err != nil {
			t.Fatalf("Acquire: got %v, want nil", err)
		}
	}
	coretest.MustStop(t, api)
	if db.State() != core.StateRunning {
		t.Fatalf("db once api stopped: got %v, want Running (worker holds it)", db.State())
	}
	coretest.MustStop(t, worker)
	if db.State() != core.StateTerminated {
		t.Fatalf("db once both stopped: got %v, want Terminated", db.State())
	}
}

func TestAcquireOfARegisteredRequirementIsRejected(t *testing.T) {
	rec := &coretest.Recorder{}
	cfg := coretest.Node("cfg", rec)
	_, h := holder(t, "api", rec, deps.Requires(cfg))
	err := h.Acquire(t.Context(), "cfg2", cfg)
	if !errors.Is(err, core.ErrInvalidOption) || !strings.Contains(err.Error(), "cfg2") {
		t.Fatalf("Acquire of a registered requirement under another name: got %v, want ErrInvalidOption naming cfg2 (a service held already)", err)
	}
}

func TestHolderStillFailsWithItsRegisteredRequirementAfterAcquireAndRelease(t *testing.T) {
	for _, acquire := range []bool{false, true} {
		t.Run(fmt.Sprintf("acquired and released %v", acquire), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rec := &coretest.Recorder{}
				fu := coretest.NewHostUnit("fail")
				cfg := coretest.Node("cfg", rec, fu)
				api, h := holder(t, "api", rec, deps.Requires(cfg))
				if acquire {
					if err := h.Acquire(t.Context(), "cfg2", cfg); err == nil {
						if err := h.Release(t.Context(), cfg); err != nil {
							t.Fatalf("Release: got %v, want nil", err)
						}
					}
				}
				if cfg.State() != core.StateRunning {
					t.Fatalf("cfg, a registered requirement: got %v, want Running", cfg.State())
				}
				fu.Host().Fail(errors.New("config lost"))
				synctest.Wait()
				select {
				case <-api.Done():
				default:
					t.Fatalf("api once its registered requirement failed: got %v, want it failed", api.State())
				}
			})
		})
	}
}

func TestAcquireRacingTheHoldersStopLeavesNothingRunning(t *testing.T) {
	for i := range 30 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rec := &coretest.Recorder{}
				api, h := holder(t, "api", rec)
				db := coretest.Node("db", rec)
				acquired := make(chan error, 1)
				stopped := make(chan error, 1)
				go func() { acquired <- h.Acquire(context.Background(), "db", db) }()
				go func() { stopped <- api.Stop(context.Background()) }()
				aerr, serr := <-acquired, <-stopped
				if serr != nil {
					t.Fatalf("holder's Stop: got %v, want nil", serr)
				}
				synctest.Wait()
				if st := db.State(); st != core.StateNew && !isFinal(st) {
					t.Fatalf("db once the holder stopped (Acquire: %v): got %v, want it never started or stopped", aerr, st)
				}
			})
		})
	}
}

func TestReleaseDuringAcquireLeavesNothingUnheld(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &coretest.Recorder{}
		api, h := holder(t, "api", rec)
		proceed := make(chan struct{})
		db := coretest.Node("db", rec, core.OnStart(func(ctx context.Context) error {
			select {
			case <-proceed:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}), core.StartTimeout(time.Hour))
		acquired := make(chan error, 1)
		go func() { acquired <- h.Acquire(context.Background(), "db", db) }()
		synctest.Wait()
		released := make(chan error, 1)
		go func() { released <- h.Release(context.Background(), db) }()
		synctest.Wait()
		close(proceed)
		aerr, rerr := <-acquired, <-released
		synctest.Wait()
		listed := false
		for _, d := range api.Dependencies() {
			if d.Service == db {
				listed = true
			}
		}
		switch {
		case aerr == nil && (db.State() != core.StateRunning || !listed):
			t.Fatalf("Acquire returned nil (Release: %v): got db %v, listed %v, want it Running and held", rerr, db.State(), listed)
		case aerr != nil && (!isFinal(db.State()) || listed):
			t.Fatalf("Acquire failed with %v (Release: %v): got db %v, listed %v, want it stopped and not held", aerr, rerr, db.State(), listed)
		}
		coretest.MustStop(t, api)
		if !isFinal(db.State()) {
			t.Fatalf("db once the holder stopped: got %v, want a final state", db.State())
		}
	})
}

func TestAcquiredServiceOfAnotherTypeWhoseStartHangsIsStoppedOnceItReturns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &coretest.Recorder{}
		api, h := holder(t, "api", rec)
		fs := newForeign("conn")
		fs.startGate = make(chan struct{})
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		err := h.Acquire(ctx, "conn", fs)
		if err == nil || !strings.Contains(err.Error(), "acquire conn") {
			t.Fatalf("Acquire whose context ends during a hung Start: got %v, want an error naming conn", err)
		}
		close(fs.startGate) // the abandoned Start returns
		synctest.Wait()
		coretest.MustStop(t, api)
		if st := fs.State(); !isFinal(st) {
			t.Fatalf("conn once its abandoned Start returned: got %v, want it stopped (Acquire failed: nothing may be left running)", st)
		}
	})
}

func TestReleaseOfAServiceOfAnotherTypeIsBoundedByTheHoldersStopTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &coretest.Recorder{}
		_, h := holder(t, "api", rec, core.StopTimeout(2*time.Second))
		fs := newForeign("conn")
		fs.stopGate = make(chan struct{})
		if err := h.Acquire(t.Context(), "conn", fs); err != nil {
			t.Fatalf("Acquire: got %v, want nil", err)
		}
		took, err := coretest.Bounded(t, "Release", func() error { return h.Release(context.Background(), fs) })
		close(fs.stopGate)
		synctest.Wait()
		var ste *core.StopTimeoutError
		if !errors.As(err, &ste) || !strings.Contains(err.Error(), "conn") {
			t.Fatalf("Release of a hung Stop: got %v, want a *StopTimeoutError naming conn", err)
		}
		if took > 2*time.Second+core.AbandonGrace {
			t.Fatalf("Release took %v, want at most StopTimeout + AbandonGrace", took)
		}
	})
}

func TestAcquireBeforeTheHoldersUnitsRunFailsNamingTheRequirement(t *testing.T) {
	rec := &coretest.Recorder{}
	var h *core.Host
	u := coretest.NewHostUnit("holder")
	errs := make(chan error, 1)
	api := coretest.Node("api", rec, core.OnStart(func(ctx context.Context) error {
		if h = u.Host(); h != nil {
			errs <- h.Acquire(ctx, "db", coretest.Node("db", rec))
		}
		return nil
	}), u)
	coretest.MustStart(t, api)
	coretest.MustStop(t, api)
	select {
	case err := <-errs:
		if err == nil || !strings.Contains(err.Error(), "db") {
			t.Fatalf("Acquire during the holder's start: got %v, want an error naming db", err)
		}
	default: // the unit is launched after the OnStart hooks: nothing to check
	}
}

func TestStatusesKeepTheirOrderAndEmptyTextRemoves(t *testing.T) {
	api, h := holder(t, "api", &coretest.Recorder{})
	h.SetStatus("a", "one", true)
	h.SetStatus("b", "two", true)
	h.SetStatus("a", "uno", false)
	got := api.Statuses()
	if len(got) != 2 || got[0] != (core.Status{Name: "a", Text: "uno", Ready: false}) || got[1].Name != "b" {
		t.Fatalf("Statuses: got %v, want a (uno, not ready) then b", got)
	}
	h.SetStatus("a", "", true)
	h.SetStatus("zzz", "", true) // removing what is not set does nothing
	if got := api.Statuses(); len(got) != 1 || got[0].Name != "b" {
		t.Fatalf("Statuses once a was removed: got %v, want b alone", got)
	}
	if err := api.Healthcheck(t.Context()); err != nil {
		t.Fatalf("Healthcheck with only ready statuses: got %v, want nil", err)
	}
}

func TestStatusThatIsNotReadyFailsHealthcheckNeverTheService(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		u := coretest.NewHostUnit("holder")
		api := core.NewService(core.Name("api"), core.Logger(coretest.Quiet()), core.MonitorInterval(time.Second), u)
		coretest.MustStart(t, api)
		u.Host().SetStatus("role", "standby", false)
		err := api.Healthcheck(t.Context())
		if !errors.Is(err, core.ErrUnhealthy) || !strings.Contains(err.Error(), "role: standby") {
			t.Fatalf("Healthcheck: got %v, want ErrUnhealthy with role: standby", err)
		}
		coretest.Advance(time.Minute) // the monitor runs many times
		synctest.Wait()
		if api.State() != core.StateRunning {
			t.Fatalf("api with a status not ready for a minute: got %v (%v), want Running", api.State(), api.Err())
		}
		coretest.MustStop(t, api)
	})
}

func TestInvalidStatusNameIsLoggedAndNotSet(t *testing.T) {
	logs := coretest.NewLogs()
	u := coretest.NewHostUnit("holder")
	api := core.NewService(core.Name("api"), core.Logger(logs.Logger()), u)
	coretest.MustStart(t, api)
	defer coretest.MustStop(t, api)
	for _, name := range []string{"", "a/b"} {
		u.Host().SetStatus(name, "x", false)
	}
	if got := api.Statuses(); len(got) != 0 {
		t.Fatalf("Statuses: got %v, want none", got)
	}
	n := 0
	for _, r := range logs.Records() {
		if r.Level == slog.LevelError && strings.Contains(r.Message, "Host.SetStatus") {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("error records for invalid names: got %d in %v, want 2", n, logs.Records())
	}
}

func TestStatusTextIsServedEvenWhenReasonsAreWithheld(t *testing.T) {
	api, h := holder(t, "api", &coretest.Recorder{})
	h.SetStatus("role", "standby", false)
	srv := health.Handler(api)
	w := httptest.NewRecorder()
	srv.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/readyz/api/role", nil))
	if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), "standby") {
		t.Fatalf("/readyz/api/role: got %d %q, want 503 with standby", w.Code, w.Body.String())
	}
	h.SetStatus("role", "leader", true)
	w = httptest.NewRecorder()
	srv.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if w.Code != http.StatusOK {
		t.Fatalf("/readyz once ready: got %d %q, want 200", w.Code, w.Body.String())
	}
}

func TestStatusesAreSafeForConcurrentUse(t *testing.T) {
	api, h := holder(t, "api", &coretest.Recorder{})
	srv := health.Handler(api)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for j := range 200 {
				h.SetStatus(fmt.Sprintf("s%d", i), fmt.Sprint(j), j%2 == 0)
				_ = api.Statuses()
				_ = api.Healthcheck(context.Background())
				_ = deps.Graph(api)
				srv.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/readyz?verbose", nil))
			}
			h.SetStatus(fmt.Sprintf("s%d", i), "", true)
		})
	}
	wg.Wait()
	if got := api.Statuses(); len(got) != 0 {
		t.Fatalf("Statuses once each was cleared: got %v, want none", got)
	}
}

func TestStatusTextIsServedOnOneLine(t *testing.T) {
	api, h := holder(t, "api", &coretest.Recorder{})
	srv := health.Handler(api)
	for _, ready := range []bool{true, false} {
		h.SetStatus("role", "standby\n[+]forged ok", ready)
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/readyz?verbose", nil))
		for _, line := range strings.Split(strings.TrimSpace(w.Body.String()), "\n") {
			if strings.HasPrefix(line, "[+]forged") {
				t.Fatalf("/readyz?verbose with a status text of two lines (ready %v): got\n%s\nwant the text on its status's line", ready, w.Body.String())
			}
		}
	}
}

// wrapped is a user type embedding *core.Base.
type wrapped struct{ *core.Base }

func TestReleaseFindsTheServiceWhateverTypeItIsSeenThrough(t *testing.T) {
	rec := &coretest.Recorder{}
	_, h := holder(t, "api", rec)
	db := coretest.Node("db", rec)
	if err := h.Acquire(t.Context(), "db", &wrapped{db}); err != nil {
		t.Fatalf("Acquire: got %v, want nil", err)
	}
	if err := h.Release(t.Context(), db); err != nil {
		t.Fatalf("Release through another type: got %v, want nil", err)
	}
	if db.State() != core.StateTerminated {
		t.Fatalf("db: got %v, want Terminated", db.State())
	}
}

func TestReleaseOfWhatTheHostDoesNotHold(t *testing.T) {
	rec := &coretest.Recorder{}
	_, h1 := holder(t, "api", rec)
	_, h2 := holder(t, "worker", rec)
	db := coretest.Node("db", rec)
	if err := h1.Acquire(t.Context(), "db", db); err != nil {
		t.Fatalf("Acquire: got %v, want nil", err)
	}
	var typedNil *core.Base
	for name, svc := range map[string]core.Service{"nil": nil, "typed nil": typedNil, "held by another host": db} {
		if err := h2.Release(t.Context(), svc); !errors.Is(err, core.ErrNotHeld) {
			t.Errorf("Release of %s: got %v, want ErrNotHeld", name, err)
		}
	}
	if db.State() != core.StateRunning {
		t.Fatalf("db: got %v, want Running (api holds it)", db.State())
	}
}

func TestAcquireWithAnEndedContextHoldsNothing(t *testing.T) {
	rec := &coretest.Recorder{}
	api, h := holder(t, "api", rec)
	db := coretest.Node("db", rec)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := h.Acquire(ctx, "db", db)
	if err == nil || !strings.Contains(err.Error(), "acquire db") {
		t.Fatalf("Acquire with an ended context: got %v, want an error naming db", err)
	}
	if st := db.State(); st != core.StateNew && !isFinal(st) {
		t.Fatalf("db: got %v, want never started or stopped", st)
	}
	if n := len(api.Dependencies()); n != 0 {
		t.Fatalf("Dependencies: got %d, want none", n)
	}
}

func TestAcquireOfAFailedServiceFailsNamingIt(t *testing.T) {
	rec := &coretest.Recorder{}
	api, h := holder(t, "api", rec)
	db := coretest.Node("db", rec, core.OnStart(func(context.Context) error { return errors.New("no route") }))
	_ = db.Start(t.Context())
	err := h.Acquire(t.Context(), "db", db)
	if err == nil || !strings.Contains(err.Error(), "acquire db") || !strings.Contains(err.Error(), "failed") {
		t.Fatalf("Acquire of a failed service: got %v, want an error naming db, saying it failed", err)
	}
	if n := len(api.Dependencies()); n != 0 {
		t.Fatalf("Dependencies: got %d, want none", n)
	}
}

// Release and Acquire race on real goroutines, many rounds: whichever
// wins, once the holder stopped nothing it acquired may be left running.
func TestReleaseRacingAcquireLeavesNothingRunningOnceTheHolderStops(t *testing.T) {
	for i := range 2000 {
		rec := &coretest.Recorder{}
		u := coretest.NewHostUnit("holder")
		api := coretest.Node("api", rec, u)
		if err := api.Start(context.Background()); err != nil {
			t.Fatalf("holder's Start: got %v, want nil", err)
		}
		h := u.Host()
		db := coretest.Node("db", rec)
		begin := make(chan struct{})
		acquired := make(chan error, 1)
		released := make(chan error, 1)
		go func() { <-begin; acquired <- h.Acquire(context.Background(), "db", db) }()
		go func() { <-begin; released <- h.Release(context.Background(), db) }()
		close(begin)
		aerr, rerr := <-acquired, <-released
		if err := api.Stop(context.Background()); err != nil {
			t.Fatalf("holder's Stop: got %v, want nil", err)
		}
		if st := db.State(); st != core.StateNew && !isFinal(st) {
			_ = db.Stop(context.Background())
			t.Fatalf("round %d: Acquire %v, Release %v: got db %v once the holder stopped, want it never started or stopped", i, aerr, rerr, st)
		}
	}
}

func TestStatusIsAStatusEntryInTheJSONProbe(t *testing.T) {
	api, h := holder(t, "api", &coretest.Recorder{})
	h.SetStatus("role", "standby", false)
	req := httptest.NewRequest(http.MethodGet, "/readyz", nil)
	req.Header.Set("Accept", "application/json")
	w := httptest.NewRecorder()
	health.Handler(api).ServeHTTP(w, req)
	body := w.Body.String()
	if w.Code != http.StatusServiceUnavailable || !strings.Contains(body, `{"name":"api/role","kind":"status","status":"failed","text":"standby"}`) {
		t.Fatalf("JSON /readyz: got %d %s, want 503 with api/role, kind status, failed, text standby", w.Code, body)
	}
}
