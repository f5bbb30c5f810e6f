package eventstream_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/deps"
	"github.com/coreservice/coreservice/internal/coretest"
)

// node is one service of a random tree and what the test knows of it.
type node struct {
	svc  *core.Base
	rec  *recorder
	logs *captured
	reqs map[string]bool // names of its requirements
}

// eventMessages are the messages of the library's event records.
func isEventRecord(msg string) bool {
	return strings.HasPrefix(msg, "service ") || strings.HasPrefix(msg, "task run failed") ||
		strings.HasPrefix(msg, "health check failed") || msg == "requirement failed" ||
		msg == "stop timed out; left running" || msg == "OnEvent hooks missed events"
}

// Random trees under random failures, stops and Host.Stop: every service
// that started sees only legal edges, ends in a final state that agrees
// with State, Err and Done, gets nothing after it, names only its own
// requirements in RequirementFailed, and its log has the same events, in
// the same order, with the same attributes, as its hook.
func TestRandomTreesKeepEveryStreamLegalAndInAgreementWithTheLog(t *testing.T) {
	for seed := range uint64(40) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { randomTree(t, seed) })
		})
	}
}

func randomTree(t *testing.T, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 11))
	const n = 14
	nodes := make([]*node, n)
	required := make([]bool, n)
	release := make(chan struct{})
	for i := range n {
		nd := &node{rec: &recorder{}, logs: newLogs(), reqs: map[string]bool{}}
		name := fmt.Sprintf("s%02d", i)
		opts := []core.Option{core.Name(name), core.Logger(nd.logs.logger()), core.OnEvent(nd.rec.hook),
			core.StopTimeout(time.Second)}
		for k := 0; i > 0 && k < r.IntN(3); k++ {
			j := r.IntN(i)
			dep := nodes[j].svc.Name()
			if nd.reqs[dep] {
				continue
			}
			nd.reqs[dep] = true
			required[j] = true
			opts = append(opts, deps.Requires(nodes[j].svc))
		}
		delay := time.Duration(r.IntN(3000)) * time.Millisecond
		fault := r.IntN(9)
		ferr := fmt.Errorf("fault of %s: %w", name, errBoom)
		opts = append(opts, goUnit("work", func(ctx context.Context, h *core.Host) error {
			select {
			case <-time.After(delay):
			case <-ctx.Done():
				return nil
			}
			switch fault {
			case 0:
				h.Fail(ferr)
			case 1:
				h.Stop()
			case 2:
				h.Emit(ctx, core.TaskRunFailed{Task: "t", Worker: 1, Run: 1, Err: ferr, Fails: true})
				return ferr
			case 3:
				h.Emit(ctx, core.TaskRetryScheduled{Task: "t", Worker: 1, Run: 1, Err: ferr, Delay: time.Second})
			case 4:
				panic(ferr)
			}
			<-ctx.Done()
			if fault == 5 {
				<-release // left running past StopTimeout
			}
			return nil
		}))
		switch r.IntN(8) {
		case 0:
			opts = append(opts, core.OnStop(func(context.Context) error { return ferr }))
		case 1:
			opts = append(opts, core.OnStart(func(context.Context) error { return ferr }))
		case 2:
			opts = append(opts, core.OnStop(func(context.Context) error { <-release; return nil }))
		}
		nd.svc = core.NewService(opts...)
		nd.rec.svc = nd.svc
		nodes[i] = nd
	}
	var wg sync.WaitGroup
	var roots []*core.Base
	for i, nd := range nodes {
		if !required[i] {
			roots = append(roots, nd.svc)
			wg.Go(func() { _ = nd.svc.Start(context.Background()) })
		}
	}
	for range 3 {
		s := nodes[r.IntN(n)].svc
		at := time.Duration(r.IntN(3000)) * time.Millisecond
		wg.Go(func() {
			coretest.Advance(at)
			_ = s.Stop(context.Background())
		})
	}
	wg.Go(func() {
		coretest.Advance(4 * time.Second)
		for _, s := range roots {
			_ = s.Stop(context.Background())
		}
	})
	wg.Wait()
	synctest.Wait()
	for _, nd := range nodes {
		name := nd.svc.Name()
		got := nd.rec.all()
		if len(got) == 0 {
			if st := nd.svc.State(); st != core.StateNew {
				t.Errorf("%s: no event but state %v", name, st)
			}
			continue
		}
		final := checkStream(t, name, got)
		checkOutcome(t, nd.svc, final)
		for _, rf := range coretest.Only[core.RequirementFailed](nd.rec.events()) {
			if !nd.reqs[rf.Requirement] || rf.Err == nil {
				t.Errorf("%s: got %+v, want one of its requirements %v with an error", name, rf, nd.reqs)
			}
		}
		// A failure is a fault, or a requirement that stopped (Stop or
		// Host.Stop of a shared requirement fails its other parents).
		if err := nd.svc.Err(); final.To == core.StateFailed && !errors.Is(err, errBoom) &&
			!strings.Contains(err.Error(), "stopped") && !strings.Contains(err.Error(), " is ") {
			t.Errorf("%s: failed with %v, want a fault (boom) or a requirement that stopped", name, err)
		}
		compareLog(t, name, nd.rec.events(), nd.logs.records())
	}
	close(release)
	synctest.Wait()
}

// compareLog checks that the event records of a service's log are its
// hook's events, in order, with the same attributes.
func compareLog(t *testing.T, name string, evs []core.Event, recs []logRec) {
	t.Helper()
	var logged []logRec
	for _, r := range recs {
		if isEventRecord(r.msg) {
			logged = append(logged, r)
		}
	}
	if len(logged) != len(evs) {
		var msgs []string
		for _, r := range logged {
			msgs = append(msgs, r.msg)
		}
		t.Errorf("%s: %d event records in the log, %d events to the hook:\nlog: %q\nhook:\n%s", name, len(logged), len(evs), msgs, describe(evs))
		return
	}
	for i, e := range evs {
		want := eventAttrs(e)
		for k, v := range want {
			if logged[i].attrs[k] != v {
				t.Errorf("%s: event %d %T: log attr %s=%q, event %q", name, i, e, k, logged[i].attrs[k], v)
			}
		}
	}
}
