package etcd_test

import (
	"context"
	"log/slog"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/coreservice/coreservice/contrib/etcd"
)

// Campaign, work while leading, stop at once when the term is lost, and
// campaign again. (Package leader and task.Leader run this loop for you.)
func ExampleElector() {
	client, err := clientv3.New(clientv3.Config{Endpoints: []string{"127.0.0.1:2379"}, DialTimeout: 5 * time.Second})
	if err != nil {
		slog.Error("etcd client", "err", err)
		return
	}
	defer client.Close()
	e := etcd.NewElector(client, "/reports/leader", etcd.TTL(10*time.Second))
	if err := e.Validate(); err != nil {
		slog.Error("elector", "err", err)
		return
	}
	ctx := context.Background()
	for {
		l, err := e.Campaign(ctx)
		if err != nil {
			slog.Warn("campaign", "err", err) // etcd unreachable: retry after a pause
			select {
			case <-time.After(time.Second):
			case <-ctx.Done():
				return
			}
			continue
		}
		work, stop := context.WithCancel(ctx)
		go func() { <-l.Lost(); stop() }() // stop the work as soon as the term ends
		runReports(work, l.Token())
		stop()
		_ = l.Resign(ctx) // a no-op if the term was lost; closes Lost otherwise
		slog.Info("term over", "token", l.Token(), "err", l.Err())
	}
}

func runReports(ctx context.Context, token uint64) { <-ctx.Done() }
