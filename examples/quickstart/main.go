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
	"github.com/coreservice/coreservice/task"
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

	svc := core.NewService(
		core.Name("quickstart"),
		core.Logger(logger),
		// core.Log(ctx) is the service's logger (service=quickstart), from
		// the context the service gives its hooks and tasks.
		core.OnStart(func(ctx context.Context) error {
			core.Log(ctx).InfoContext(ctx, "start hook: hello")
			return nil
		}),
		core.OnStop(func(ctx context.Context) error {
			core.Log(ctx).InfoContext(ctx, "stop hook: goodbye")
			return nil
		}),
		// The service's work: a task that logs a tick every second.
		task.Func("tick", func(ctx context.Context) error {
			core.Log(ctx).InfoContext(ctx, "tick")
			return nil
		}, task.Every(time.Second)),
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
