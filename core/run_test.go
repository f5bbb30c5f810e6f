package core_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/internal/coretest"
)

func TestRunStopsOnContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &coretest.Recorder{}
		a, b := coretest.Node("a", rec), coretest.Node("b", rec)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := core.RunSignals(ctx, nil, a, b); err != nil {
			t.Fatalf("Run: got %v, want nil after a clean stop", err)
		}
		coretest.WantEvents(t, rec.Events(), []string{"a start", "b start", "b stop", "a stop"})
	})
}

func TestRunReturnsFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		boom := errors.New("boom")
		rec := &coretest.Recorder{}
		a := coretest.Node("a", rec)
		b := coretest.Node("b", rec, &unit{name: "u", fn: func(ctx context.Context) error {
			select {
			case <-time.After(time.Second):
				return boom
			case <-ctx.Done():
				return nil
			}
		}})
		err := core.RunSignals(context.Background(), nil, a, b)
		if !errors.Is(err, boom) {
			t.Fatalf("Run: got %v, want the failure", err)
		}
		if a.State() != core.StateTerminated {
			t.Fatalf("a: %v, want terminated (stopped by Run)", a.State())
		}
		coretest.WantEvents(t, rec.Events(), []string{"a start", "b start", "b stop", "a stop"})
	})
}

func TestRunStartFailureStopsStarted(t *testing.T) {
	boom := errors.New("boom")
	rec := &coretest.Recorder{}
	a := coretest.Node("a", rec)
	b := core.NewService(core.Logger(coretest.Quiet()), core.OnStart(func(context.Context) error { return boom }))
	c := coretest.Node("c", rec)
	err := core.Run(context.Background(), a, b, c)
	if !errors.Is(err, core.ErrStartup) || !errors.Is(err, boom) {
		t.Fatalf("Run: got %v, want the startup error", err)
	}
	coretest.WantEvents(t, rec.Events(), []string{"a start", "a stop"})
	if c.State() != core.StateNew {
		t.Fatalf("c: %v, want never started", c.State())
	}
}

func TestRunBadInput(t *testing.T) {
	if err := core.Run(context.Background()); err == nil {
		t.Fatal("Run with no services: got nil, want an error")
	}
	var typedNil *core.Base
	if err := core.Run(context.Background(), core.NewService(), typedNil); err == nil {
		t.Fatal("Run with a nil service: got nil, want an error")
	}
}

func TestRunSignal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &coretest.Recorder{}
		sig := make(chan os.Signal, 2)
		a := coretest.Node("a", rec)
		go func() {
			<-time.After(time.Second)
			sig <- syscall.SIGTERM
		}()
		if err := core.RunSignals(context.Background(), sig, a); err != nil {
			t.Fatalf("Run: got %v, want nil after SIGTERM", err)
		}
		coretest.WantEvents(t, rec.Events(), []string{"a start", "a stop"})
	})
}

func TestRunSecondSignalForcesExit(t *testing.T) {
	for _, during := range []string{"stop", "start"} {
		t.Run("during "+during, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				sig := make(chan os.Signal, 2)
				release := make(chan struct{})
				stopping := make(chan struct{})
				a := core.NewService(core.Logger(coretest.Quiet()), core.OnStop(func(context.Context) error {
					close(stopping)
					<-release
					return nil
				}), core.OnStart(func(ctx context.Context) error {
					if during == "start" {
						<-ctx.Done() // the first signal aborts the start
						return ctx.Err()
					}
					return nil
				}))
				go func() {
					<-time.After(time.Second)
					sig <- os.Interrupt
					<-stopping
					sig <- os.Interrupt
				}()
				err := core.RunSignals(context.Background(), sig, a)
				if !errors.Is(err, core.ErrForcedExit) {
					t.Fatalf("Run: got %v, want ErrForcedExit", err)
				}
				if a.State() != core.StateStopping {
					t.Fatalf("state: got %v, want stopping (Run gave up waiting)", a.State())
				}
				close(release)
				<-a.Done()
			})
		})
	}
}

// TestRunRealSignal sends SIGINT to the test process once the service is
// Running (a signal during the start is TestRunSignalDuringStartIsClean's):
// Run catches it.
func TestRunRealSignal(t *testing.T) {
	a := core.NewService(core.Logger(coretest.Quiet()))
	changed := a.Changed()
	go func() {
		for a.State() != core.StateRunning {
			<-changed
			changed = a.Changed()
		}
		_ = syscall.Kill(os.Getpid(), syscall.SIGINT)
	}()
	if err := core.Run(context.Background(), a); err != nil {
		t.Fatalf("Run: got %v, want nil after SIGINT", err)
	}
	if a.State() != core.StateTerminated {
		t.Fatalf("state: got %v, want terminated", a.State())
	}
}

func TestRunSignalDuringStartIsClean(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sig := make(chan os.Signal, 1)
		rec := &coretest.Recorder{}
		a := coretest.Node("a", rec)
		b := core.NewService(core.Logger(coretest.Quiet()), core.OnStart(func(ctx context.Context) error {
			sig <- os.Interrupt
			<-ctx.Done()
			return ctx.Err()
		}))
		if err := core.RunSignals(context.Background(), sig, a, b); err != nil {
			t.Fatalf("Run: got %v, want nil: the start was ended by a signal", err)
		}
		coretest.WantEvents(t, rec.Events(), []string{"a start", "a stop"})
	})
}

func TestRunReturnsTheRollbackErrorsOfAFailedStart(t *testing.T) {
	flush := errors.New("flush failed")
	s := core.NewService(core.Name("svc"), core.Logger(coretest.Quiet()),
		core.OnStop(func(context.Context) error { return flush }),
		&check{name: "ping", fn: func(context.Context) error { return errors.New("down") }})
	if err := core.Run(t.Context(), s); !errors.Is(err, core.ErrStartup) || !errors.Is(err, flush) {
		t.Fatalf("Run: got %v, want the start failure and the rollback's %v", err, flush)
	}
}

func TestRunWithAnUnusableBaseIsAnError(t *testing.T) {
	for _, svc := range []core.Service{embedsBase{}, embedsBase{&core.Base{}}, &core.Base{}} {
		if err := core.Run(t.Context(), svc); !errors.Is(err, core.ErrInvalidOption) {
			t.Errorf("Run(%T): got %v, want ErrInvalidOption", svc, err)
		}
	}
}

func TestRunStartsEachServiceOnceInAnyOrder(t *testing.T) {
	for _, order := range []string{"api, db", "db, api", "api, db, api, db"} {
		t.Run(order, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rec := &coretest.Recorder{}
				db := coretest.Node("db", rec)
				api := coretest.Node("api", rec, requires(db))
				named := map[string]core.Service{"api": api, "db": db}
				var svcs []core.Service
				for _, n := range strings.Split(order, ", ") {
					svcs = append(svcs, named[n])
				}
				ctx, cancel := context.WithCancel(context.Background())
				res := make(chan error, 1)
				go func() { res <- core.RunSignals(ctx, nil, svcs...) }()
				synctest.Wait()
				if api.State() != core.StateRunning || db.State() != core.StateRunning {
					t.Errorf("after the start: api %v, db %v, want both running", api.State(), db.State())
				}
				cancel()
				if err := <-res; err != nil {
					t.Errorf("Run: got %v, want nil", err)
				}
				coretest.WantEvents(t, rec.Events(), []string{"db start", "api start", "api stop", "db stop"})
				if api.State() != core.StateTerminated || db.State() != core.StateTerminated {
					t.Errorf("after Run: api %v, db %v, want both terminated", api.State(), db.State())
				}
			})
		})
	}
}

func TestRunWithTheSameServiceTwiceStartsItOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &coretest.Recorder{}
		svc := coretest.Node("svc", rec)
		ctx, cancel := context.WithCancel(context.Background())
		res := make(chan error, 1)
		go func() { res <- core.RunSignals(ctx, nil, svc, svc) }()
		synctest.Wait()
		cancel()
		if err := <-res; err != nil {
			t.Errorf("Run: got %v, want nil", err)
		}
		coretest.WantEvents(t, rec.Events(), []string{"svc start", "svc stop"})
	})
}

// Run notices that an already started service failed while a later one is
// still starting, and returns then, not when the later start ends (DESIGN
// core/Run: "block until ctx is done, SIGINT/SIGTERM, or any service fails;
// then stop all").
func TestRunSeesFailureDuringLaterStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		boom := errors.New("boom")
		rec := &coretest.Recorder{}
		a := coretest.Node("a", rec, &unit{name: "u", fn: func(ctx context.Context) error {
			select {
			case <-time.After(time.Second):
				return boom
			case <-ctx.Done():
				return nil
			}
		}})
		b := core.NewService(core.Name("b"), core.Logger(coretest.Quiet()), core.StartTimeout(time.Minute),
			core.OnStart(func(ctx context.Context) error { // waits for something that never comes
				<-ctx.Done()
				return ctx.Err()
			}))
		begin := time.Now()
		err := core.RunSignals(context.Background(), nil, a, b)
		if !errors.Is(err, boom) {
			t.Fatalf("Run: got %v, want a's failure", err)
		}
		if d := time.Since(begin); d != time.Second {
			t.Fatalf("Run returned %v after start, want 1s (when a failed)", d)
		}
	})
}

// stopRecord returns the one "service stopping" record of service name.
func stopRecord(t *testing.T, logs *coretest.Logs, name string) coretest.Record {
	t.Helper()
	var got []coretest.Record
	for _, r := range logs.Find("service stopping") {
		if r.Attrs["service"] == name {
			got = append(got, r)
		}
	}
	if len(got) != 1 {
		t.Fatalf("service stopping records of %s: got %+v, want 1", name, got)
	}
	return got[0]
}

func TestRunLogsTheSignalThatStoppedIt(t *testing.T) {
	for _, tc := range []struct {
		sig  os.Signal
		name string
	}{{syscall.SIGTERM, "SIGTERM"}, {os.Interrupt, "SIGINT"}} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				logs := coretest.NewLogs()
				a := core.NewService(core.Name("a"), core.Logger(logs.Logger()))
				sig := make(chan os.Signal, 1)
				go func() {
					coretest.Advance(time.Second)
					sig <- tc.sig
				}()
				if err := core.RunSignals(context.Background(), sig, a); err != nil {
					t.Fatalf("Run: got %v, want nil", err)
				}
				recs := logs.Find("core.Run: signal received; stopping")
				if len(recs) != 1 || recs[0].Level != slog.LevelInfo || recs[0].Attrs["signal"] != tc.name {
					t.Fatalf("Run's record: got %+v, want one INFO with signal=%s", recs, tc.name)
				}
				if r := stopRecord(t, logs, "a"); r.Attrs["reason"] != "Run: signal "+tc.name || r.Level != slog.LevelInfo {
					t.Fatalf("a's stop: got %+v, want INFO with reason=Run: signal %s", r, tc.name)
				}
			})
		})
	}
}

func TestRunLogsTheServiceThatEndedIt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		boom := errors.New("boom")
		logs := coretest.NewLogs()
		a := core.NewService(core.Name("a"), core.Logger(logs.Logger()))
		b := core.NewService(core.Name("b"), core.Logger(logs.Logger()), &unit{name: "u", fn: func(ctx context.Context) error {
			coretest.Advance(time.Second)
			return boom
		}})
		if err := core.RunSignals(context.Background(), nil, a, b); !errors.Is(err, boom) {
			t.Fatalf("Run: got %v, want boom", err)
		}
		recs := logs.Find("core.Run: service ended; stopping")
		if len(recs) != 1 || recs[0].Level != slog.LevelWarn || recs[0].Attrs["service"] != "b" ||
			recs[0].Attrs["error"] != "boom" || recs[0].Attrs["state"] != "failed" {
			t.Fatalf("Run's record: got %+v, want one WARN (b logged its failure) with service=b state=failed error=boom", recs)
		}
		var errorRecs []coretest.Record
		for _, r := range logs.Records() {
			if r.Level == slog.LevelError {
				errorRecs = append(errorRecs, r)
			}
		}
		if len(errorRecs) != 1 {
			t.Fatalf("ERROR records: got %+v, want one: b's failure, where it happened", errorRecs)
		}
		if r := stopRecord(t, logs, "a"); r.Attrs["reason"] != "Run: b ended" {
			t.Fatalf("a's stop: got %+v, want reason=Run: b ended", r)
		}
	})
}

func TestRunLogsAServiceThatEndedCleanlyAtInfo(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		logs := coretest.NewLogs()
		a := core.NewService(core.Name("a"), core.Logger(logs.Logger()))
		b := core.NewService(core.Name("b"), core.Logger(logs.Logger()), &launchHook{fn: func(h *core.Host) {
			h.Go("job", func(context.Context) error {
				coretest.Advance(time.Second)
				h.Stop()
				return nil
			})
		}})
		if err := core.RunSignals(context.Background(), nil, a, b); err != nil {
			t.Fatalf("Run: got %v, want nil", err)
		}
		recs := logs.Find("core.Run: service ended; stopping")
		if len(recs) != 1 || recs[0].Level != slog.LevelInfo || recs[0].Attrs["service"] != "b" || recs[0].Attrs["state"] != "terminated" {
			t.Fatalf("Run's record: got %+v, want one INFO with service=b state=terminated", recs)
		}
		if r := stopRecord(t, logs, "b"); r.Attrs["reason"] != "Host.Stop" || r.Level != slog.LevelInfo {
			t.Fatalf("b's stop: got %+v, want INFO with reason=Host.Stop", r)
		}
		if r := stopRecord(t, logs, "a"); r.Attrs["reason"] != "Run: b ended" {
			t.Fatalf("a's stop: got %+v, want reason=Run: b ended", r)
		}
	})
}

func TestRunLogsTheEndOfItsContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		logs := coretest.NewLogs()
		a := core.NewService(core.Name("a"), core.Logger(logs.Logger()))
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := core.RunSignals(ctx, nil, a); err != nil {
			t.Fatalf("Run: got %v, want nil", err)
		}
		recs := logs.Find("core.Run: context done; stopping")
		if len(recs) != 1 || recs[0].Attrs["error"] != context.DeadlineExceeded.Error() {
			t.Fatalf("Run's record: got %+v, want one with error=%v", recs, context.DeadlineExceeded)
		}
		if r := stopRecord(t, logs, "a"); r.Attrs["reason"] != "Run: context done: context deadline exceeded" {
			t.Fatalf("a's stop: got %+v, want reason=Run: context done: context deadline exceeded", r)
		}
	})
}
