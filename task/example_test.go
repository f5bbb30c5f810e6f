package task_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/task"
)

func ExampleNew() {
	type Rates map[string]float64
	// A task whose result is typed: Last returns Rates, no type assertion.
	rates := task.New("rates", func(ctx context.Context) (Rates, error) {
		return Rates{"EUR": 1.08, "GBP": 1.27}, nil // fetched from an API, say
	}, task.Once())
	loaded := make(chan struct{})
	rates.OnResult(func(context.Context, Rates) error { close(loaded); return nil })

	svc := core.NewService(core.Name("pricing"), core.Logger(slog.New(slog.DiscardHandler)), rates)
	if err := svc.Start(context.Background()); err != nil {
		fmt.Println(err)
		return
	}
	<-loaded
	if r, ok := rates.Last(); ok {
		fmt.Printf("EUR %.2f, GBP %.2f\n", r["EUR"], r["GBP"])
	}
	if err := svc.Stop(context.Background()); err != nil {
		fmt.Println(err)
	}
	fmt.Println("runs:", rates.Runs(), "failures:", rates.Failures())
	// Output:
	// EUR 1.08, GBP 1.27
	// runs: 1 failures: 0
}

func ExampleFunc() {
	left := 3
	done := make(chan struct{})
	countdown := task.Func("countdown", func(ctx context.Context) error {
		fmt.Println(left)
		if left--; left == 0 {
			close(done)
			return task.ErrDone // ends this worker; the service keeps running
		}
		return nil
	}, task.Every(time.Millisecond))

	svc := core.NewService(core.Name("rocket"), core.Logger(slog.New(slog.DiscardHandler)), countdown)
	if err := svc.Start(context.Background()); err != nil {
		fmt.Println(err)
		return
	}
	<-done
	fmt.Println(svc.State())
	if err := svc.Stop(context.Background()); err != nil {
		fmt.Println(err)
	}
	// Output:
	// 3
	// 2
	// 1
	// running
}

func ExampleRetry() {
	attempt := 0
	connect := task.New("connect", func(ctx context.Context) (string, error) {
		if attempt++; attempt < 3 {
			fmt.Println("attempt", attempt, "failed")
			return "", errors.New("connection refused")
		}
		fmt.Println("attempt", attempt, "connected")
		return "db-1", nil
	},
		task.Once(),
		task.Retry(func() backoff.BackOff {
			return backoff.WithMaxRetries(backoff.NewConstantBackOff(10*time.Millisecond), 5)
		}))
	connected := make(chan struct{})
	connect.OnResult(func(context.Context, string) error { close(connected); return nil })

	svc := core.NewService(core.Name("api"), core.Logger(slog.New(slog.DiscardHandler)), connect)
	if err := svc.Start(context.Background()); err != nil {
		fmt.Println(err)
		return
	}
	<-connected
	if err := svc.Stop(context.Background()); err != nil {
		fmt.Println(err)
	}
	host, _ := connect.Last()
	fmt.Println(host, "after", connect.Failures(), "failures")
	// Output:
	// attempt 1 failed
	// attempt 2 failed
	// attempt 3 connected
	// db-1 after 2 failures
}

func ExampleRetry_exhausted() {
	fetch := task.Func("fetch", func(ctx context.Context) error {
		return errors.New("connection refused")
	}, task.Retry(func() backoff.BackOff {
		return backoff.WithMaxRetries(backoff.NewConstantBackOff(time.Millisecond), 2)
	}))
	svc := core.NewService(core.Name("ingest"), core.Logger(slog.New(slog.DiscardHandler)), fetch)
	// Three runs, then the failure is the service's. (A task that fails
	// while the service is still starting makes Start fail with it.)
	if err := svc.Start(context.Background()); err == nil {
		<-svc.Done()
	}
	var te *core.TaskError
	if errors.As(svc.Err(), &te) {
		fmt.Println(te)
		fmt.Println("worker:", te.Worker, "runs:", fetch.Runs())
	}
	fmt.Println(svc.State())
	// Output:
	// task ingest/fetch worker 1: run 3 (retries exhausted after 2): connection refused
	// worker: 1 runs: 3
	// failed
}

func ExampleTask_OnResult() {
	n := 0
	ticks := task.New("ticks", func(ctx context.Context) (int, error) {
		if n++; n > 3 {
			return 0, task.ErrDone
		}
		return n, nil
	}, task.Every(time.Millisecond))

	// Hand every result to a reader in another goroutine. The send waits
	// for the reader (the worker's next run waits with it) but never past
	// the run's context: the service's stop, or a Timeout if one is set.
	ch := make(chan int)
	ticks.OnResult(func(ctx context.Context, v int) error {
		select {
		case ch <- v:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})

	svc := core.NewService(core.Name("clock"), core.Logger(slog.New(slog.DiscardHandler)), ticks)
	if err := svc.Start(context.Background()); err != nil {
		fmt.Println(err)
		return
	}
	for range 3 {
		fmt.Println("tick", <-ch)
	}
	if err := svc.Stop(context.Background()); err != nil {
		fmt.Println(err)
	}
	// Output:
	// tick 1
	// tick 2
	// tick 3
}
