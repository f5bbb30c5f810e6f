package core

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// ErrForcedExit is returned by Run when a second signal arrived while the
// services were stopping: Run stopped waiting for them.
var ErrForcedExit = errors.New("second signal: gave up waiting for the stop")

// Run starts svcs in the order given, waits until ctx ends, SIGINT or
// SIGTERM arrives, or any of them reaches a final state, then stops them
// all in reverse order, each within its own StopTimeout, and returns.
//
// Run returns nil after a clean stop caused by ctx or a signal. Otherwise
// it returns, joined: the start error when a service failed to start (the
// ones started before it are stopped), the Err of every service that
// failed, and the errors their Stop met. A second signal during the stop
// makes Run return at once with ErrForcedExit; the stop sequences go on
// without it.
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
		if isNil(s) {
			return fmt.Errorf("core.Run: service %d is nil", i)
		}
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	force := make(chan struct{})
	quit := make(chan struct{})
	listening := make(chan struct{})
	go func() { // the signal listener: first signal stops, second forces
		defer close(listening)
		signals := 0
		for {
			select {
			case s := <-sig:
				signals++
				if signals == 1 {
					cancel(fmt.Errorf("received %v", s))
				} else {
					close(force)
					return
				}
			case <-quit:
				return
			}
		}
	}()
	defer func() {
		close(quit)
		<-listening
	}()

	var errs []error
	started := 0
	for _, s := range svcs {
		if err := s.Start(ctx); err != nil {
			errs = append(errs, err)
			break
		}
		started++
	}
	if started == len(svcs) {
		ended := make(chan struct{}, len(svcs))
		waitEnded, stopWatching := context.WithCancel(ctx)
		var wg sync.WaitGroup
		for _, s := range svcs {
			wg.Go(func() {
				select {
				case <-s.Done():
					ended <- struct{}{}
				case <-waitEnded.Done():
				}
			})
		}
		select {
		case <-ctx.Done():
		case <-ended:
		}
		stopWatching()
		wg.Wait()
	}

	stopCtx, stopCancel := context.WithCancel(context.WithoutCancel(ctx))
	defer stopCancel()
	stopped := make(chan []error, 1)
	go func() {
		var errs []error
		for i := started - 1; i >= 0; i-- {
			if err := svcs[i].Stop(stopCtx); err != nil {
				errs = append(errs, err)
			}
		}
		stopped <- errs
	}()
	select {
	case stopErrs := <-stopped:
		errs = append(errs, stopErrs...)
	case <-force:
		stopCancel()
		<-stopped
		errs = append(errs, ErrForcedExit)
	}
	for _, s := range svcs[:started] {
		if err := s.Err(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
