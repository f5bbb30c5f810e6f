// Command jaeger is a small, realistic service whose traces and metrics go
// to a real Jaeger (or any OTLP endpoint), configured by the standard OTEL_*
// environment alone through otelx.Setup:
//
//   - "api" requires "db", a service whose OnStart and OnStop hooks open and
//     close a made-up connection pool, with a health check "ping";
//   - api's task "fetch" runs every 200 ms and queries db (a child span
//     "query" of the run); every -fail-every'th run fails, and the Retry
//     policy (exponential backoff with jitter) runs it again;
//   - api's health check "fresh" passes while fetch has succeeded recently;
//   - Kubernetes-style probes are served on -probes (127.0.0.1).
//
// Run a Jaeger first (the README's Tracing section: docker, or
// scripts/jaeger start), then:
//
//	OTEL_SERVICE_NAME=shop go run ./examples/jaeger -for 10s
//	scripts/jaeger traces shop
//
// By default it exports by OTLP/gRPC to localhost:4317.
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
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cenkalti/backoff/v4"
	"go.opentelemetry.io/otel"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/deps"
	"github.com/coreservice/coreservice/health"
	"github.com/coreservice/coreservice/otelx"
	"github.com/coreservice/coreservice/task"
)

// config is what the flags set.
type config struct {
	runFor    time.Duration // 0: until Ctrl-C or SIGTERM
	probes    string        // address of the probes server
	failEvery int           // every n-th run of fetch fails
}

func main() {
	var cfg config
	flag.DurationVar(&cfg.runFor, "for", 0, "stop after this long (0: run until Ctrl-C)")
	flag.StringVar(&cfg.probes, "probes", "127.0.0.1:8081", "address to serve the probes on (port 0: any free port)")
	flag.IntVar(&cfg.failEvery, "fail-every", 4, "every n-th run of the fetch task fails (0: never)")
	flag.Parse()
	if cfg.runFor < 0 || cfg.failEvery < 0 {
		fmt.Fprintln(os.Stderr, "jaeger: -for and -fail-every must be >= 0")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "jaeger:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg config) (err error) {
	shutdown, err := otelx.Setup(ctx)
	if err != nil {
		return err
	}
	defer func() {
		// Flush what is buffered; give up after 5 s if the collector is gone.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		err = errors.Join(err, shutdown(sctx))
	}()
	logger := slog.New(otelx.NewLogHandler(slog.NewTextHandler(os.Stderr, nil)))

	db := newDB(logger)
	api := newAPI(logger, deps.Requires(db), cfg)
	if cfg.runFor > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.runFor)
		defer cancel()
	}
	return core.Run(ctx, api)
}

// db is a made-up database: a service with a connection pool opened by its
// OnStart hook and closed by its OnStop hook.
type db struct {
	*core.Base
	open    atomic.Bool
	queries atomic.Int64
}

func newDB(logger *slog.Logger) *db {
	d := &db{}
	d.Base = core.NewService(core.Name("db"), core.Logger(logger),
		core.OnStart(func(ctx context.Context) error {
			time.Sleep(30 * time.Millisecond) // dialing
			d.open.Store(true)
			d.Log().InfoContext(ctx, "connection pool open")
			return nil
		}),
		core.OnStop(func(ctx context.Context) error {
			d.open.Store(false)
			d.Log().InfoContext(ctx, "connection pool closed", "queries", d.queries.Load())
			return nil
		}),
		health.Check("ping", func(context.Context) error {
			if !d.open.Load() {
				return errors.New("pool closed")
			}
			return nil
		}))
	return d
}

// query is one round trip to the database, a span of its own.
func (d *db) query(ctx context.Context, q string) (int64, error) {
	ctx, span := otel.Tracer("examples/jaeger").Start(ctx, "query")
	defer span.End()
	if !d.open.Load() {
		return 0, errors.New("db: pool closed")
	}
	select {
	case <-time.After(5 * time.Millisecond):
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	return d.queries.Add(1), nil
}

// errFlaky is the failure of every -fail-every'th fetch.
var errFlaky = errors.New("upstream timed out")

func newAPI(logger *slog.Logger, db *deps.Requirement[*db], cfg config) *core.Base {
	var (
		mu    sync.Mutex
		fresh = time.Now() // when fetch last succeeded; the start counts, until the first run
		runs  atomic.Int64
	)
	fetch := task.New("fetch", func(ctx context.Context) (int64, error) {
		n := runs.Add(1)
		rows, err := db.Get().query(ctx, "SELECT * FROM orders")
		if err != nil {
			return 0, err
		}
		if cfg.failEvery > 0 && n%int64(cfg.failEvery) == 0 {
			return 0, fmt.Errorf("fetch orders: %w", errFlaky)
		}
		mu.Lock()
		fresh = time.Now()
		mu.Unlock()
		return rows, nil
	}, task.Every(200*time.Millisecond), task.Retry(func() backoff.BackOff {
		b := backoff.NewExponentialBackOff()
		b.InitialInterval, b.RandomizationFactor, b.MaxInterval = 50*time.Millisecond, 0.5, time.Second
		return b
	}))

	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second}
	var (
		serving  sync.WaitGroup
		serveErr error
	)
	var api *core.Base
	api = core.NewService(core.Name("api"), core.Logger(logger), core.MonitorInterval(500*time.Millisecond),
		db, fetch,
		health.Check("fresh", func(context.Context) error {
			mu.Lock()
			defer mu.Unlock()
			if time.Since(fresh) > 5*time.Second {
				return fmt.Errorf("no successful fetch since %v", fresh.Format(time.TimeOnly))
			}
			return nil
		}),
		core.OnStart(func(ctx context.Context) error {
			ln, err := net.Listen("tcp", cfg.probes)
			if err != nil {
				return err
			}
			srv.Handler = health.Handler(api)
			api.Log().InfoContext(ctx, "serving probes", "url", "http://"+ln.Addr().String()+"/readyz?verbose")
			serving.Go(func() { serveErr = srv.Serve(ln) })
			return nil
		}),
		core.OnStop(func(ctx context.Context) error {
			err := srv.Shutdown(ctx)
			serving.Wait()
			if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
				err = errors.Join(err, serveErr)
			}
			return err
		}))
	return api
}
