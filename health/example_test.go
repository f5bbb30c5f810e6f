package health_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"sync/atomic"
	"time"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/health"
)

func ExampleCheck() {
	var depth atomic.Int64
	svc := core.NewService(core.Name("api"), core.Logger(slog.New(slog.DiscardHandler)),
		core.MonitorInterval(time.Minute), // slow: the example runs the checks itself
		health.Check("queue", func(context.Context) error {
			if d := depth.Load(); d > 1000 {
				return fmt.Errorf("depth %d > 1000", d)
			}
			return nil
		}, health.Timeout(time.Second), health.Threshold(3)))
	if err := svc.Start(context.Background()); err != nil {
		fmt.Println(err)
		return
	}
	defer func() { _ = svc.Stop(context.Background()) }()

	fmt.Println(svc.Healthcheck(context.Background()))
	depth.Store(1200)
	fmt.Println(svc.Healthcheck(context.Background()))
	// Output:
	// <nil>
	// service unhealthy: api: check queue: depth 1200 > 1000
}

func ExampleCheck_failingStart() {
	refused := errors.New("connection refused")
	svc := core.NewService(core.Name("api"), core.Logger(slog.New(slog.DiscardHandler)),
		health.Check("db", func(context.Context) error { return refused }))
	err := svc.Start(context.Background())
	var se *core.StartupError
	if errors.As(err, &se) {
		fmt.Println(se.Service, se.Part)
	}
	fmt.Println(errors.Is(err, core.ErrStartup), errors.Is(err, refused), svc.State())
	// Output:
	// api check db
	// true true failed
}

func ExampleHandler() {
	var depth atomic.Int64
	svc := core.NewService(core.Name("api"), core.Logger(slog.New(slog.DiscardHandler)),
		core.MonitorInterval(time.Minute), // slow: the example runs the checks itself
		health.Check("ping", func(context.Context) error { return nil }),
		health.Check("queue", func(context.Context) error {
			if d := depth.Load(); d > 1000 {
				return fmt.Errorf("depth %d > 1000", d)
			}
			return nil
		}, health.Threshold(3)))
	if err := svc.Start(context.Background()); err != nil {
		fmt.Println(err)
		return
	}
	defer func() { _ = svc.Stop(context.Background()) }()

	// In a program: http.ListenAndServe(addr, health.Handler(svc)).
	h := health.Handler(svc)
	probe := func(target string) {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", target, nil))
		fmt.Printf("GET %s: %d\n%s\n", target, w.Code, w.Body)
	}
	probe("/readyz")
	probe("/readyz?verbose")

	depth.Store(1200)
	_ = svc.Healthcheck(context.Background()) // the monitor's next run would do the same
	probe("/livez")
	probe("/readyz")
	probe("/readyz/api/queue")
	// Output:
	// GET /readyz: 200
	// ok
	// GET /readyz?verbose: 200
	// [+]api ok
	// [+]api/ping ok
	// [+]api/queue ok
	// readyz check passed
	//
	// GET /livez: 200
	// ok
	// GET /readyz: 503
	// [+]api ok
	// [+]api/ping ok
	// [-]api/queue failed: reason withheld
	// readyz check failed
	//
	// GET /readyz/api/queue: 503
	// [-]api/queue failed: depth 1200 > 1000
	// readyz check failed
}

func ExampleWaitReady() {
	svc := core.NewService(core.Name("api"), core.Logger(slog.New(slog.DiscardHandler)),
		health.Check("ping", func(context.Context) error { return nil }))
	started := make(chan error, 1)
	go func() { started <- svc.Start(context.Background()) }() // as core.Run would

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := health.WaitReady(ctx, svc); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(svc.Name(), "is", svc.State())
	<-started
	_ = svc.Stop(context.Background())
	// Output:
	// api is running
}
