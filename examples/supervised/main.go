// Command supervised runs a service, api, whose database connection, db,
// is flaky: every connection it opens breaks after -life (1 s), and one
// dial in three is refused. deps.Supervise rebuilds and restarts it under
// an exponential backoff with jitter; api stays Running throughout, but is
// not ready while db restarts. The program prints the supervisor's events
// and, every 250 ms, what its own /readyz probe answers, so that the probe
// is seen switching between ready and restarting. It stops on Ctrl-C (or
// SIGTERM), or after -for.
//
//	go run ./examples/supervised -for 5s
//	curl -s 'http://127.0.0.1:8081/readyz?verbose'   # while it runs
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/deps"
	"github.com/coreservice/coreservice/health"
	"github.com/coreservice/coreservice/serve"
	"github.com/coreservice/coreservice/task"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8081", "address to serve the probes on (port 0: any free port)")
	runFor := flag.Duration("for", 0, "stop after this long (0: run until Ctrl-C)")
	life := flag.Duration("life", time.Second, "how long each db connection lasts")
	flag.Parse()
	if *runFor < 0 || *life <= 0 {
		fmt.Fprintln(os.Stderr, "supervised: -for must be >= 0 and -life > 0")
		os.Exit(2)
	}
	ctx := context.Background()
	if *runFor > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *runFor)
		defer cancel()
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if err := run(ctx, *addr, *life, os.Stdout, logger); err != nil {
		fmt.Fprintln(os.Stderr, "supervised:", err)
		os.Exit(1)
	}
}

// run runs api until ctx ends (or a signal), printing events and probes to
// out.
func run(ctx context.Context, addr string, life time.Duration, out io.Writer, logger *slog.Logger) error {
	p := &printer{w: out, begin: time.Now()}
	dials := &dialer{life: life}
	db := deps.Supervise(dials.dial,
		// Exponential backoff with jitter: 200 ms, then x2 per failed
		// restart up to 2 s, each delay +/- 50%; never give up. A
		// connection that lasted 3 s begins a new streak (HealthyAfter).
		func() backoff.BackOff {
			return backoff.NewExponentialBackOff(backoff.WithInitialInterval(200*time.Millisecond),
				backoff.WithMultiplier(2), backoff.WithRandomizationFactor(0.5),
				backoff.WithMaxInterval(2*time.Second), backoff.WithMaxElapsedTime(0))
		},
		deps.Name("db"), deps.HealthyAfter(3*time.Second), deps.OnEvent(p.event))

	srv := &http.Server{Addr: addr, ReadHeaderTimeout: 5 * time.Second}
	probes := serve.HTTP(srv)
	api := core.NewService(core.Name("api"), core.Logger(logger), db, probes,
		// A task that uses db: Current waits, bounded by the run's
		// context, while db restarts.
		task.Func("query", func(ctx context.Context) error {
			conn, err := db.Current(ctx)
			if err != nil {
				return err
			}
			return conn.query(ctx)
		}, task.Every(100*time.Millisecond), task.Timeout(5*time.Second),
			task.Retry(func() backoff.BackOff { return backoff.NewConstantBackOff(100 * time.Millisecond) })),
		// What a load balancer would see: the probe, every 250 ms.
		task.Func("probe", func(ctx context.Context) error {
			p.probe(ctx, "http://"+probes.Addr().String()+"/readyz")
			return nil
		}, task.Every(250*time.Millisecond)),
	)
	srv.Handler = health.Handler(api)
	return core.Run(ctx, api)
}

// conn is one database connection: a service that breaks after life.
type conn struct {
	*core.Base
	n int
}

// query is what api does with the connection.
func (c *conn) query(context.Context) error {
	if c.State() != core.StateRunning {
		return fmt.Errorf("%s is %s", c.Name(), c.State())
	}
	return nil
}

// dialer opens connections; one dial in three is refused.
type dialer struct {
	life time.Duration
	n    atomic.Int64
}

var errRefused = errors.New("dial: connection refused")

func (d *dialer) dial(context.Context) (*conn, error) {
	n := int(d.n.Add(1))
	if n%3 == 0 {
		return nil, errRefused
	}
	c := &conn{n: n}
	opened := time.Now()
	c.Base = core.NewService(core.Name(fmt.Sprintf("conn#%d", n)),
		// The connection's keepalive: the connection breaks after life.
		task.Func("keepalive", func(context.Context) error {
			if time.Since(opened) >= d.life {
				return errors.New("connection reset by peer")
			}
			return nil
		}, task.Every(50*time.Millisecond)))
	return c, nil
}

// printer prints events and probe answers, one line each, with the time
// since the start.
type printer struct {
	mu    sync.Mutex
	w     io.Writer
	begin time.Time
	last  string // the last probe answer printed
}

func (p *printer) printf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "%5.2fs  "+format+"\n", append([]any{time.Since(p.begin).Seconds()}, args...)...)
}

// event prints the supervisor's events.
func (p *printer) event(e core.Event) {
	switch e := e.(type) {
	case core.RestartScheduled:
		p.printf("event: restart %d of db in %v: %v", e.Attempt, e.Delay.Round(time.Millisecond), e.Err)
	case core.Restarted:
		p.printf("event: restarted db as %s (attempt %d, down %v)", e.Instance, e.Attempt, e.Downtime.Round(time.Millisecond))
	case core.RestartGaveUp:
		p.printf("event: gave up on db after %d restarts: %v", e.Attempts, e.Err)
	}
}

// probe asks url and prints the answer when it changed.
func (p *printer) probe(ctx context.Context, url string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		p.printf("probe: %v", err)
		return
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			p.printf("probe: %v", err)
		}
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	answer := fmt.Sprintf("%d %s", resp.StatusCode, failing(string(body)))
	p.mu.Lock()
	changed := answer != p.last
	p.last = answer
	p.mu.Unlock()
	if changed {
		p.printf("probe: /readyz %s", answer)
	}
}

// failing returns the failing lines of a probe's body, or "ok".
func failing(body string) string {
	var lines []string
	for l := range strings.Lines(body) {
		if strings.HasPrefix(l, "[-]") {
			lines = append(lines, strings.TrimSpace(l))
		}
	}
	if len(lines) == 0 {
		return strings.TrimSpace(body)
	}
	return strings.Join(lines, "; ")
}
