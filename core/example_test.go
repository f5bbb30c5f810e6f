package core_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/coreservice/coreservice/core"
)

func ExampleNewService() {
	svc := core.NewService(
		core.Name("api"),
		core.Logger(slog.New(slog.DiscardHandler)),
		core.OnStart(func(context.Context) error { fmt.Println("open"); return nil }),
		core.OnStop(func(context.Context) error { fmt.Println("close"); return nil }),
	)
	if err := svc.Start(context.Background()); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(svc.Name(), svc.State())
	if err := svc.Stop(context.Background()); err != nil {
		fmt.Println(err)
	}
	fmt.Println(svc.Name(), svc.State(), svc.Err())
	// Output:
	// open
	// api running
	// close
	// api terminated <nil>
}

func ExampleRun() {
	// In main, Run usually gets context.Background() and returns on Ctrl-C;
	// here the service being Running ends it.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	svc := core.NewService(core.Name("worker"), core.Logger(slog.New(slog.DiscardHandler)),
		core.OnStart(func(context.Context) error { fmt.Println("started"); return nil }),
		core.OnStop(func(context.Context) error { fmt.Println("stopped"); return nil }),
		core.OnEvent(func(e core.Event) {
			if sc, ok := e.(core.StateChanged); ok && sc.To == core.StateRunning {
				cancel()
			}
		}))

	err := core.Run(ctx, svc)
	fmt.Println("err:", err)
	// Output:
	// started
	// stopped
	// err: <nil>
}

func ExampleBase_Start_rollback() {
	db := errors.New("connection refused")
	svc := core.NewService(core.Name("api"), core.Logger(slog.New(slog.DiscardHandler)),
		core.OnStart(func(context.Context) error { fmt.Println("cache warmed"); return nil }),
		core.OnStart(func(context.Context) error { return db }),
		core.OnStop(func(context.Context) error { fmt.Println("cache dropped"); return nil }))

	err := svc.Start(context.Background())
	var se *core.StartupError
	fmt.Println(errors.Is(err, core.ErrStartup), errors.Is(err, db), errors.As(err, &se) && se.Part == "OnStart hook 2")
	fmt.Println(err)
	fmt.Println(svc.State())
	// Output:
	// cache warmed
	// cache dropped
	// true true true
	// start api: OnStart hook 2: connection refused
	// failed
}

func ExampleOnEvent() {
	svc := core.NewService(core.Name("api"), core.Logger(slog.New(slog.DiscardHandler)),
		core.OnEvent(func(e core.Event) {
			switch e := e.(type) {
			case core.StateChanged:
				fmt.Println(e.Service, e.From, "->", e.To)
			case core.CheckFailed:
				fmt.Printf("%s: check %s failed %d/%d: %v\n", e.Service, e.Check, e.Failures, e.Threshold, e.Err)
			}
		}))
	if err := svc.Start(context.Background()); err != nil {
		fmt.Println(err)
		return
	}
	// Stop returns once the hooks have had the last state change.
	if err := svc.Stop(context.Background()); err != nil {
		fmt.Println(err)
	}
	// Output:
	// api new -> starting
	// api starting -> running
	// api running -> stopping
	// api stopping -> terminated
}
