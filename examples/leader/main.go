// Command leader runs three replicas of a service in one process, each
// with its own etcd client, and a periodic task, report, that runs only on
// the replica that leads the election (task.Leader on a contrib/etcd
// Elector). After a while the program kills the leader, by closing its etcd
// client as a crashed process would, and prints which replica takes over
// and how long that took: about the TTL, since the dead leader cannot
// resign and its lease has to expire.
//
// It runs against an embedded etcd (a temporary directory, removed at the
// end), or against the cluster in ETCD_ENDPOINTS (comma-separated) when it
// is set. It stops after -for, or on Ctrl-C.
//
//	go run . -for 8s -ttl 2s
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/coreservice/coreservice/contrib/etcd"
	"github.com/coreservice/coreservice/contrib/etcd/embedded"
	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/leader"
	"github.com/coreservice/coreservice/task"
)

// key is the election's key.
const key = "/coreservice/examples/leader"

// every is the delay between two runs of the report task.
const every = 500 * time.Millisecond

func main() {
	runFor := flag.Duration("for", 8*time.Second, "total run time")
	ttl := flag.Duration("ttl", 2*time.Second, "lease TTL of the election (whole seconds, at least 2s)")
	flag.Parse()
	if *runFor <= 0 {
		fmt.Fprintln(os.Stderr, "leader: -for must be > 0")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *runFor)
	defer cancel()
	var endpoints []string
	if s := os.Getenv("ETCD_ENDPOINTS"); s != "" {
		endpoints = strings.Split(s, ",")
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	cfg := config{ttl: *ttl, killAfter: *runFor * 3 / 8, endpoints: endpoints, logger: logger}
	if err := run(ctx, os.Stdout, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "leader:", err)
		os.Exit(1)
	}
}

// config is what run needs besides its context and output.
type config struct {
	ttl       time.Duration // the election's lease TTL
	killAfter time.Duration // when to kill the leader, from the start
	endpoints []string      // etcd's; nil: an embedded etcd
	logger    *slog.Logger  // the replicas' logger
}

// printer writes short timestamped lines to out, one at a time.
type printer struct {
	mu  sync.Mutex
	out io.Writer
	t0  time.Time
}

func (p *printer) printf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.out, "%5.1fs  %s\n", time.Since(p.t0).Seconds(), fmt.Sprintf(format, args...))
}

// replica is one replica: its client and its service.
type replica struct {
	name   string
	client *clientv3.Client
	svc    *core.Base
}

// demo is the state that the replicas' tasks share with run.
type demo struct {
	p *printer

	mu       sync.Mutex
	leader   string    // the replica that ran report last
	token    uint64    // the token of its term
	killed   string    // the replica killed, once it is
	killedAt time.Time // when
	tookOver bool      // another replica ran report after the kill
}

// report is the task function of replica name. The first run of a term
// says so (and, after the kill, how long the takeover took), before the
// run's own line.
func (d *demo) report(name string) func(context.Context) error {
	return func(ctx context.Context) error {
		tok, _ := leader.Token(ctx)
		d.mu.Lock()
		newTerm := d.leader != name || d.token != tok
		d.leader, d.token = name, tok
		takeover := newTerm && d.killed != "" && name != d.killed && !d.tookOver
		if takeover {
			d.tookOver = true
		}
		since := time.Since(d.killedAt)
		d.mu.Unlock()
		switch {
		case takeover:
			d.p.printf("%s  elected (token %d): took over %.1fs after %s was killed", name, tok, since.Seconds(), d.killed)
		case newTerm:
			d.p.printf("%s  elected (token %d)", name, tok)
		}
		d.p.printf("%s  report (token %d)", name, tok)
		return nil
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// run runs three replicas until ctx ends, killing the leader after
// cfg.killAfter, and prints what happens to out.
func run(ctx context.Context, out io.Writer, cfg config) (err error) {
	p := &printer{out: out, t0: time.Now()}
	endpoints := cfg.endpoints
	if len(endpoints) == 0 {
		dir, err := os.MkdirTemp("", "leader-example-etcd-")
		if err != nil {
			return err
		}
		defer func() { err = errors.Join(err, os.RemoveAll(dir)) }()
		srv, err := embedded.Start(ctx, dir)
		if err != nil {
			return err
		}
		defer func() { err = errors.Join(err, srv.Close()) }()
		endpoints = srv.Endpoints()
		p.printf("etcd   embedded at %s", strings.Join(endpoints, ","))
	} else {
		p.printf("etcd   %s", strings.Join(endpoints, ","))
	}
	p.printf("3 replicas, TTL %v, report every %v", cfg.ttl, every)

	d := &demo{p: p}
	var reps []*replica
	defer func() {
		// The standbys first, then the leader, which resigns: no other
		// replica is elected during the shutdown.
		d.mu.Lock()
		last := d.leader
		d.mu.Unlock()
		slices.SortStableFunc(reps, func(x, y *replica) int {
			return cmp.Compare(boolInt(x.name == last), boolInt(y.name == last))
		})
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, r := range reps {
			err = errors.Join(err, r.svc.Stop(sctx))
			_ = r.client.Close() // the killed one's is closed already
		}
	}()
	for _, name := range []string{"a", "b", "c"} {
		c, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
		if err != nil {
			return fmt.Errorf("replica %s: etcd client: %w", name, err)
		}
		e := etcd.NewElector(c, key, etcd.TTL(cfg.ttl), etcd.Value(name))
		svc := core.NewService(core.Name("replica-"+name), core.Logger(cfg.logger),
			core.OnEvent(func(ev core.Event) {
				if ev, ok := ev.(core.LeadershipLost); ok {
					if ev.Err != nil {
						p.printf("%s  lost leadership (token %d)", name, ev.Token)
					} else {
						p.printf("%s  resigned (token %d)", name, ev.Token)
					}
				}
			}),
			task.Func("report", d.report(name), task.Every(every), task.Leader(e)))
		reps = append(reps, &replica{name: name, client: c, svc: svc})
		if err := svc.Start(ctx); err != nil {
			return fmt.Errorf("replica %s: %w", name, err)
		}
	}

	kill := time.NewTimer(cfg.killAfter)
	defer kill.Stop()
	select {
	case <-ctx.Done():
		return nil
	case <-kill.C:
	}
	d.mu.Lock()
	victim := d.leader
	d.mu.Unlock()
	for _, r := range reps {
		if r.name != victim {
			continue
		}
		d.mu.Lock()
		d.killed, d.killedAt = victim, time.Now()
		d.mu.Unlock()
		p.printf("%s  killed (etcd client closed)", victim)
		_ = r.client.Close()
	}
	<-ctx.Done()
	d.mu.Lock()
	tookOver := d.tookOver
	d.mu.Unlock()
	if victim != "" && !tookOver {
		p.printf("no replica took over from %s before the end", victim)
	}
	return nil
}
