// Command probes serves Kubernetes-style liveness and readiness probes for a
// service with two health checks: "ping", which always passes, and "queue",
// whose made-up queue backs up for 3 s out of every 10 s (from 5 s to 8 s
// after the start, and so on), so that the service turns not ready and
// ready again. Its threshold of 5 failures in a row, with the monitor
// running every second, keeps those 3 failures from stopping the service.
//
// The HTTP server is a unit of the service (package serve): the start
// listens (a busy port fails it), and the stop drains the requests in
// flight before the service ends. A made-up slow endpoint, /work, shows the
// drain: a request begun before SIGTERM still gets its answer. It stops on
// Ctrl-C (or SIGTERM), or after -for.
//
//	go run ./examples/probes -addr 127.0.0.1:8080
//	curl -s 'http://127.0.0.1:8080/readyz?verbose'
//	curl -s 'http://127.0.0.1:8080/work?for=5s' & sleep 1; kill -TERM <pid>
//
// See README.md next to this file for the endpoints and sample output.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/health"
	"github.com/coreservice/coreservice/serve"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to serve on (port 0: any free port)")
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
	srv := &http.Server{Addr: addr, ReadHeaderTimeout: 5 * time.Second}

	svc := core.NewService(
		core.Name("api"),
		core.Logger(logger),
		core.MonitorInterval(time.Second),
		health.Check("ping", func(context.Context) error { return nil }),
		health.Check("queue", q.check, health.Threshold(5)),
		// The server: listens when the service starts, drains when it
		// stops (within the StopTimeout, 15 s by default).
		serve.HTTP(srv),
	)
	mux := http.NewServeMux()
	mux.Handle("/work", work(svc.Log()))
	// /livez, /readyz and the paths below them; any other path is a 404
	// listing the probes' paths.
	mux.Handle("/", health.Handler(svc))
	srv.Handler = mux

	ctx := context.Background()
	if runFor > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, runFor)
		defer cancel()
	}
	// Run starts svc, waits for ctx, SIGINT/SIGTERM or a failure, then stops it.
	return core.Run(ctx, svc)
}

// maxWork bounds the work a request may ask for.
const maxWork = time.Minute

// work is a made-up slow endpoint: it reads the request's body, works for
// ?for= (default 1s, at most maxWork), then answers 200 "done: <n> bytes in
// <d>". Sent just before a stop, it shows the drain at work.
func work(log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d := time.Second
		if s := r.URL.Query().Get("for"); s != "" {
			var err error
			if d, err = time.ParseDuration(s); err != nil || d < 0 || d > maxWork {
				http.Error(w, fmt.Sprintf("for=%s: want a duration from 0 to %v", s, maxWork), http.StatusBadRequest)
				return
			}
		}
		ctx := r.Context()
		log.InfoContext(ctx, "work begun", "for", d)
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			http.Error(w, "reading the body: "+err.Error(), http.StatusBadRequest)
			return
		}
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done(): // the client went away
			return
		}
		log.InfoContext(ctx, "work done", "bytes", n, "for", d)
		fmt.Fprintf(w, "done: %d bytes in %v\n", n, d)
	})
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
