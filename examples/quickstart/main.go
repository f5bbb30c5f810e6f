// Command quickstart runs one coreservice service: it starts, logs a tick
// every second, and stops on Ctrl-C (or SIGTERM), or after -for.
//
//	go run ./examples/quickstart -for 3s
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/coreservice/coreservice/core"
)

func main() {
	runFor := flag.Duration("for", 0, "stop after this long (0: run until Ctrl-C)")
	flag.Parse()
	if *runFor < 0 {
		fmt.Fprintf(os.Stderr, "quickstart: -for %v: want >= 0\n", *runFor)
		os.Exit(2)
	}
	if err := run(*runFor); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

func run(runFor time.Duration) error {
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))

	var svc *core.Base
	svc = core.NewService(
		core.Name("quickstart"),
		core.Logger(logger),
		core.OnStart(func(ctx context.Context) error {
			svc.Log().InfoContext(ctx, "start hook: hello")
			return nil
		}),
		core.OnStop(func(ctx context.Context) error {
			svc.Log().InfoContext(ctx, "stop hook: goodbye")
			return nil
		}),
		ticker{every: time.Second},
	)

	ctx := context.Background()
	if runFor > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, runFor)
		defer cancel()
	}
	// Run starts svc, waits for ctx, SIGINT/SIGTERM or a failure, then stops it.
	return core.Run(ctx, svc)
}

// ticker is periodic work built on core's public extension API, until
// package task exists. It is both a core.Option (ApplyTo registers it) and
// a core.Unit (Start launches it; Stop cancels its context and waits for it).
type ticker struct{ every time.Duration }

func (t ticker) ApplyTo(c *core.Config) { c.AddUnit(t) }
func (t ticker) Name() string           { return "ticker" }
func (t ticker) String() string         { return fmt.Sprintf("ticker{every: %v}", t.every) }

func (t ticker) Launch(_ context.Context, h *core.Host) error {
	h.Go("ticker", func(ctx context.Context) error {
		tk := time.NewTicker(t.every)
		defer tk.Stop()
		for n := 1; ; n++ {
			select {
			case <-ctx.Done():
				return nil // the service is stopping
			case <-tk.C:
				h.Log().InfoContext(ctx, "tick", "n", n)
			}
		}
	})
	return nil
}
