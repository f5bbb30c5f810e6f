// Command probes serves Kubernetes-style liveness and readiness probes for a
// service with two health checks: "ping", which always passes, and "queue",
// whose made-up queue backs up for 3 s out of every 10 s (from 5 s to 8 s
// after the start, and so on), so that the service turns not ready and
// ready again. Its threshold of 5 failures in a row, with the monitor
// running every second, keeps those 3 failures from stopping the service.
//
// The HTTP server is part of the service: its OnStart hook listens, its
// OnStop hook shuts the server down. It stops on Ctrl-C (or SIGTERM), or
// after -for.
//
//	go run ./examples/probes -addr 127.0.0.1:8080
//	curl -s 'http://127.0.0.1:8080/readyz?verbose'
//
// See README.md next to this file for the endpoints and sample output.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/health"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to serve the probes on (port 0: any free port)")
	runFor := flag.Duration("for", 0, "stop after this long (0: run until Ctrl-C)")
	flag.Parse()
	if *runFor < 0 {
		fmt.Fprintf(os.Stderr, "probes: -for %v: want >= 0\n", *runFor)
		os.Exit(2)
	}
	if err := run(*addr, *runFor); err != nil {
		fmt.Fprintln(os.Stderr, "probes:", err)
		os.Exit(1)
	}
}

func run(addr string, runFor time.Duration) error {
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	q := &queue{begin: time.Now()}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second}
	var (
		serving  sync.WaitGroup // the goroutine running srv.Serve
		serveErr error          // what Serve returned; read after serving.Wait
	)

	var svc *core.Base
	svc = core.NewService(
		core.Name("api"),
		core.Logger(logger),
		core.MonitorInterval(time.Second),
		health.Check("ping", func(context.Context) error { return nil }),
		health.Check("queue", q.check, health.Threshold(5)),
		core.OnStart(func(ctx context.Context) error {
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return err
			}
			svc.Log().InfoContext(ctx, "serving probes", "url", "http://"+ln.Addr().String()+"/readyz?verbose")
			serving.Go(func() { serveErr = srv.Serve(ln) })
			return nil
		}),
		// OnStop runs also when the start is rolled back, maybe before
		// OnStart got to serve: Shutdown and Wait cope with that.
		core.OnStop(func(ctx context.Context) error {
			err := srv.Shutdown(ctx)
			serving.Wait()
			if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
				err = errors.Join(err, serveErr)
			}
			return err
		}),
	)
	// /livez, /readyz and the paths below them; any other path is a 404
	// listing the known ones.
	srv.Handler = health.Handler(svc)

	ctx := context.Background()
	if runFor > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, runFor)
		defer cancel()
	}
	// Run starts svc, waits for ctx, SIGINT/SIGTERM or a failure, then stops it.
	return core.Run(ctx, svc)
}

// queue is a made-up work queue that backs up for 3 s out of every 10 s.
type queue struct{ begin time.Time }

const maxDepth = 1000

func (q *queue) depth() int {
	if s := time.Since(q.begin) % (10 * time.Second); s >= 5*time.Second && s < 8*time.Second {
		return 1500
	}
	return 20
}

// check is the health check: the queue must not be deeper than maxDepth.
func (q *queue) check(context.Context) error {
	if d := q.depth(); d > maxDepth {
		return fmt.Errorf("depth %d > %d", d, maxDepth)
	}
	return nil
}
