package core

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
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
// Run returns nil after a clean stop caused by ctx or a signal, also when
// they end a start under way (the start is rolled back). Otherwise
// it returns, joined: the start error when a service failed to start (the
// ones started before it are stopped), the Err of every service that
// failed, and the errors their Stop met. A second signal makes Run return
// at once with ErrForcedExit; the start or stop sequences under way go on,
// each bounded by its service's timeouts, in a goroutine that ends with them.
//
// Run with no services, or with a nil or unusable one (a nil or zero *Base,
// also embedded: see Validate), returns an error at once and starts
// nothing.
//
// Run catches SIGINT and SIGTERM while it runs (signal.Notify) and lets go
// of them (signal.Stop) before it returns.
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
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stopCtx, stopCancel := context.WithCancel(context.WithoutCancel(ctx))
	defer stopCancel()
	result := make(chan error, 1)
	go func() { result <- runAll(ctx, stopCtx, svcs) }()
	for signals := 0; ; {
		select {
		case err := <-result:
			return err
		case s := <-sig:
			if signals++; signals == 1 {
				cancel(fmt.Errorf("%w: received %v", context.Canceled, s))
				continue
			}
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
func runAll(ctx, stopCtx context.Context, svcs []Service) error {
	ctx, cancel := context.WithCancelCause(ctx)
	var wg sync.WaitGroup
	var errs []error
	started := 0
	for _, s := range svcs {
		if err := s.Start(ctx); err != nil {
			if ctx.Err() == nil || !errors.Is(err, ctx.Err()) {
				errs = append(errs, err) // not a start aborted by ctx, a signal or a failure
			}
			break
		}
		started++
		wg.Go(func() {
			select {
			case <-s.Done():
				cancel(fmt.Errorf("%w: %s ended", context.Canceled, s.Name()))
			case <-ctx.Done():
			}
		})
	}
	if started == len(svcs) {
		<-ctx.Done()
	}
	cancel(nil)
	wg.Wait()
	for i := started - 1; i >= 0; i-- {
		if err := svcs[i].Stop(stopCtx); err != nil {
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
