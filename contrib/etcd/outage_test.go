package etcd_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/coreservice/coreservice/contrib/etcd"
	"github.com/coreservice/coreservice/contrib/etcd/internal/etcdtest"
	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/internal/coretest"
	"github.com/coreservice/coreservice/leader"
	"github.com/coreservice/coreservice/task"
)

// outageStopTimeout is the StopTimeout of the services stopped during an
// etcd outage: longer than the TTL, after which etcd expires the lease
// anyway, so that a resign need not outlast it.
const outageStopTimeout = 4 * time.Second

// checkOutageStop stops svc, whose replica leads while etcd is down, and
// fails t unless Stop returns before the StopTimeout without a
// *core.StopTimeoutError: the resign's failure, if any, is the result, and
// no goroutine is left running.
func checkOutageStop(t *testing.T, svc *core.Base) {
	t.Helper()
	// Bounded beyond core.DefaultStopTimeout, so that a stop that only the
	// default bounds shows as such.
	ctx, cancel := context.WithTimeout(context.Background(), 2*core.DefaultStopTimeout)
	defer cancel()
	start := time.Now()
	err := svc.Stop(ctx)
	took := time.Since(start)
	t.Logf("Stop with etcd down, while leading: %v after %v", err, took.Round(time.Millisecond))
	if took >= outageStopTimeout {
		t.Errorf("Stop with etcd down: took %v, want it to return before the StopTimeout %v", took, outageStopTimeout)
	}
	if te := (*core.StopTimeoutError)(nil); errors.As(err, &te) {
		t.Errorf("Stop with etcd down: got %v, want the resign's own error or nil, not a timeout with %v left running",
			err, te.Units)
	}
}

// The leader's service stops while etcd is down (a shutdown during an
// outage): Stop returns within its StopTimeout, with the resign's error or
// nil, not a StopTimeoutError with the campaign loop abandoned.
// (leader.Lead resigns within half the StopTimeout, and the etcd Resign
// gives up after TTL/2, when the lease expires by itself.)
func TestLeaderTaskStopDuringEtcdOutageReturnsWithinStopTimeout(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	runs := newRunLog()
	c := etcdtest.NewClient(t, srv.Endpoints())
	e := etcd.NewElector(c, key, etcd.TTL(ttl), etcd.Value("r0"))
	svc := core.NewService(core.Name("r0"), core.Logger(coretest.Quiet()), core.StopTimeout(outageStopTimeout),
		task.Func("tick", runs.fn("r0", time.Hour), task.Every(taskCadence), task.Leader(e)))
	coretest.MustStart(t, svc)
	ctx, cancel := boundedCtx(t)
	defer cancel()
	runs.wait(t, ctx, "first run", func(taskRun) bool { return true })
	srv.Stop()
	checkOutageStop(t, svc)
}

// The same with leader.Service: the parent's Stop during an outage returns
// within its StopTimeout, not with the campaigning service timed out.
// (The campaigning service that leader.Service builds has the parent's
// StopTimeout, not core.DefaultStopTimeout.)
func TestLeaderServiceStopDuringEtcdOutageReturnsWithinStopTimeout(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	m := &mailers{notify: make(chan struct{})}
	c := etcdtest.NewClient(t, srv.Endpoints())
	e := etcd.NewElector(c, key, etcd.TTL(ttl), etcd.Value("r0"))
	svc := core.NewService(core.Name("r0"), core.Logger(coretest.Quiet()), core.StopTimeout(outageStopTimeout),
		leader.Service(e, m.build("r0"), leader.Name("mailer")))
	coretest.MustStart(t, svc)
	ctx, cancel := boundedCtx(t)
	defer cancel()
	m.waitStarts(t, ctx, 1)
	srv.Stop()
	checkOutageStop(t, svc)
}
