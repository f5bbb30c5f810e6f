package core

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"sync"
	"syscall"

	"github.com/coreservice/coreservice/internal/values"
)

// ErrForcedExit is returned by Run when a second signal arrived while the
// services were stopping: Run stopped waiting for them.
var ErrForcedExit = errors.New("second signal: gave up waiting for the stop")

// Run starts svcs in the order given, waits until ctx ends, SIGINT or
// SIGTERM arrives, or any of them reaches a final state, then stops them
// all in reverse order, each within its own StopTimeout, and returns.
//
// Run accepts the services in any order and with repeats: a service given
// twice is taken once, and a *Base (or a type embedding one) is held by Run
// as a parent holds a requirement. So Run(api, db), where api requires db,
// starts db once, through api's requirement, and Run joins it; Run(db, api)
// starts db first and api then shares it. Either way db is stopped after
// api, once nothing holds it any more. A service of another type is started
// and stopped by Run as given.
//
// Run returns nil after a clean stop caused by ctx or a signal, also when
// they end a start under way (the start is rolled back). Otherwise
// it returns, joined: the start error when a service failed to start (the
// ones started before it are stopped), the Err of every service that
// failed, and the errors their Stop met. A second signal makes Run return
// at once with ErrForcedExit; the start or stop sequences under way go on,
// each bounded by its service's timeouts, in a goroutine that ends with them.
//
// Run with no services, or with a nil or unusable one (a nil or zero *Base,
// also embedded: see Validate), or a type embedding *Base with a
// Healthcheck of its own (see ValidateHealthcheck), returns an error at
// once and starts nothing.
//
// Run catches SIGINT and SIGTERM while it runs (signal.Notify) and lets go
// of them (signal.Stop) before it returns.
//
// Run logs why it stops, through the logger of the first *Base given (the
// one its Logger option set, without service=...), or slog.Default when
// there is none: "core.Run: signal received; stopping" (INFO, signal=SIGTERM
// or SIGINT), "core.Run: service ended; stopping" (service=<name>, INFO when
// it ended Terminated; with its error when it failed: WARN for a *Base,
// which logged the failure at ERROR where it happened, ERROR for a service
// of another type) or
// "core.Run: context done; stopping" (INFO, error=<ctx's cause>). The
// services' moves to Stopping carry the same reason ("Run: signal SIGTERM",
// "Run: api ended", "Run: context done: context canceled", "Run: start of
// api failed").
func Run(ctx context.Context, svcs ...Service) error {
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)
	return run(ctx, sig, svcs)
}

func run(ctx context.Context, sig <-chan os.Signal, svcs []Service) error {
	if len(svcs) == 0 {
		return errors.New("core.Run: no services")
	}
	for i, s := range svcs {
		if values.IsNil(s) {
			return fmt.Errorf("core.Run: service %d is nil", i)
		}
		if err := Validate(s); err != nil {
			return fmt.Errorf("core.Run: service %d: %w", i, err)
		}
		if err := ValidateHealthcheck(s); err != nil {
			return fmt.Errorf("core.Run: service %d: %w", i, err)
		}
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stopCtx, stopCancel := context.WithCancel(context.WithoutCancel(ctx))
	defer stopCancel()
	log := runLogger(svcs)
	result := make(chan error, 1)
	go func() { result <- runAll(ctx, stopCtx, svcs, log) }()
	for signals := 0; ; {
		select {
		case err := <-result:
			return err
		case s := <-sig:
			if signals++; signals == 1 {
				log.LogAttrs(ctx, slog.LevelInfo, "core.Run: signal received; stopping", slog.String("signal", signalName(s)))
				cancel(&runStop{reason: "Run: signal " + signalName(s), err: fmt.Errorf("%w: received %v", context.Canceled, s)})
				continue
			}
			log.LogAttrs(ctx, slog.LevelWarn, "core.Run: second signal received; giving up waiting for the stop",
				slog.String("signal", signalName(s)))
			// Stop waiting: Stop calls under way return at once, and the
			// goroutine running them ends with the services' stop sequences.
			stopCancel()
			return ErrForcedExit
		}
	}
}

// runAll starts svcs, waits until ctx ends or one of them ends (also while
// later ones are still starting), and stops the started ones in reverse
// order under stopCtx.
func runAll(ctx, stopCtx context.Context, svcs []Service, log *slog.Logger) error {
	svcs = distinct(svcs)
	ctx, cancel := context.WithCancelCause(ctx)
	var wg sync.WaitGroup
	var errs []error
	started := 0
	failedStart := "" // the service whose start failed, not aborted by ctx
	for _, s := range svcs {
		if err := hold(ctx, s); err != nil {
			if ctx.Err() == nil {
				failedStart = s.Name()
			}
			if ctx.Err() == nil || !errors.Is(err, ctx.Err()) {
				errs = append(errs, err) // not a start aborted by ctx, a signal or a failure
			}
			if bb, ok := s.(baser); ok {
				// The hold was taken: drop it. A failed start is rolled back
				// already (its errors are in err); a join that ctx cut short
				// may leave the service to stop here.
				b := bb.coreBase()
				final := b.State().final()
				if err := unhold(stopCtx, b); err != nil && !final {
					errs = append(errs, err)
				}
			}
			break
		}
		started++
		wg.Go(func() {
			select {
			case <-s.Done():
				if err := s.Err(); err != nil {
					// A *Base logged its failure at ERROR where it happened:
					// this record refers to it. A service of another type
					// has no log of its own here.
					level := slog.LevelError
					if _, ok := s.(baser); ok {
						level = slog.LevelWarn
					}
					log.LogAttrs(ctx, level, "core.Run: service ended; stopping",
						slog.String("service", s.Name()), slog.String("state", s.State().String()), slog.Any("error", err))
				} else {
					log.LogAttrs(ctx, slog.LevelInfo, "core.Run: service ended; stopping",
						slog.String("service", s.Name()), slog.String("state", s.State().String()))
				}
				cancel(&runStop{reason: "Run: " + s.Name() + " ended", err: fmt.Errorf("%w: %s ended", context.Canceled, s.Name())})
			case <-ctx.Done():
			}
		})
	}
	if started == len(svcs) {
		<-ctx.Done()
	}
	cancel(nil)
	wg.Wait()
	reason := "Run: start of " + failedStart + " failed"
	if rs := (*runStop)(nil); errors.As(context.Cause(ctx), &rs) {
		reason = rs.reason
	} else if failedStart == "" {
		cause := context.Cause(ctx)
		reason = "Run: context done: " + cause.Error()
		log.LogAttrs(ctx, slog.LevelInfo, "core.Run: context done; stopping", slog.Any("error", cause))
	}
	stopCtx = withStopReason(stopCtx, reason)
	for i := started - 1; i >= 0; i-- {
		var err error
		if bb, ok := svcs[i].(baser); ok {
			err = unhold(stopCtx, bb.coreBase())
		} else {
			err = svcs[i].Stop(stopCtx)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	for _, s := range svcs[:started] {
		if err := s.Err(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// runStop is the cause with which Run ends its wait: a signal or a service
// that ended; reason is what the services' moves to Stopping say.
type runStop struct {
	reason string
	err    error
}

// Error returns the cancellation's message.
func (e *runStop) Error() string { return e.err.Error() }

// Unwrap returns the cancellation, which matches context.Canceled.
func (e *runStop) Unwrap() error { return e.err }

// runLogger is the logger Run logs with: that of the first *Base in svcs, as
// its Logger option gave it, else slog.Default.
func runLogger(svcs []Service) *slog.Logger {
	for _, s := range svcs {
		if bb, ok := s.(baser); ok {
			if b := bb.coreBase(); b.cfg.logger != nil {
				return b.cfg.logger
			}
		}
	}
	return slog.Default()
}

// signalName is the conventional name of the signals Run catches.
func signalName(s os.Signal) string {
	switch s {
	case os.Interrupt:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return s.String()
}

// distinct returns svcs without repeats, in the order of their first
// occurrence; a *Base and a type embedding it are the same service.
func distinct(svcs []Service) []Service {
	out := make([]Service, 0, len(svcs))
	bases := make(map[*Base]bool)
	for _, s := range svcs {
		if bb, ok := s.(baser); ok {
			if b := bb.coreBase(); !bases[b] {
				bases[b] = true
				out = append(out, s)
			}
			continue
		}
		if !slices.ContainsFunc(out, func(o Service) bool { return values.Same(o, s) }) {
			out = append(out, s)
		}
	}
	return out
}

// hold is how Run takes a service: a *Base is held as a parent holds a
// requirement, started if it is New and joined (waited for until Running)
// if another service given to Run, or anyone else, started it already; any
// other service is started.
func hold(ctx context.Context, s Service) error {
	bb, ok := s.(baser)
	if !ok {
		return s.Start(ctx)
	}
	b := bb.coreBase()
	if err := checkCycle(ctx, b); err != nil {
		return &StartupError{Service: b.name, Err: err}
	}
	b.mu.Lock()
	b.holders++
	if b.state == StateNew {
		startCtx := b.begin(ctx)
		b.mu.Unlock()
		return b.startup(startCtx)
	}
	b.mu.Unlock()
	return b.awaitRunning(ctx)
}

// unhold drops Run's hold on b and stops b when nobody else holds it, then
// waits, bounded by ctx, for b to stop if it is stopping, and returns its
// stop errors.
func unhold(ctx context.Context, b *Base) error {
	b.mu.Lock()
	b.holders = max(b.holders-1, 0)
	last := b.holders == 0
	if last && b.state != StateNew {
		b.stopLocked(ctx)
	}
	wait := (last && b.state != StateNew) || b.state == StateStopping
	b.mu.Unlock()
	if !wait {
		return nil
	}
	return b.awaitStop(ctx)
}
