package task

import (
	"context"
	"fmt"
	"strconv"
	"sync"

	"github.com/cenkalti/backoff/v4"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/leader"
)

// launchLeader launches a task under Leader: one goroutine, named after the
// task's unit, that campaigns (leader.Lead) and runs the workers during
// each term. Every worker is made before anything runs, as Launch does.
func (t *Task[T]) launchLeader(h *core.Host, sched, retry backoff.BackOff) error {
	ws := make([]*worker[T], t.cfg.workers)
	for i := range ws {
		var err error
		if i == 0 {
			ws[i], err = newWorker(t, h, i+1, sched, retry)
		} else {
			ws[i], err = newWorker(t, h, i+1, nil, nil)
		}
		if err != nil {
			return fmt.Errorf("%w: %w", core.ErrInvalidOption, err)
		}
	}
	e := t.cfg.leader.e
	h.Go(t.unit, func(ctx context.Context) error {
		t.setRole(h, 0, false)
		defer h.SetStatus(t.statusName(), "", false) // the service's state says more
		return leader.Lead(ctx, h, t.unit, e, func(ctx context.Context) error {
			tok, _ := leader.Token(ctx)
			t.setRole(h, tok, true)
			defer t.setRole(h, 0, false)
			runTerm(ctx, h, ws)
			return nil
		})
	})
	return nil
}

// runTerm runs the workers that have not ended, during one term whose
// context is ctx, and returns once they all have returned. A worker's
// failure fails the service at once, as a worker launched without Leader
// does.
func runTerm[T any](ctx context.Context, h *core.Host, ws []*worker[T]) {
	var wg sync.WaitGroup
	for _, w := range ws {
		if w.ended {
			continue
		}
		wg.Go(func() {
			if err := w.loop(ctx); err != nil {
				h.Fail(err)
			}
		})
	}
	wg.Wait()
}

// setRole shows the task's role in the service's statuses (Host.SetStatus),
// as "leader <task>": "leader (token N)" or "standby", ready in both cases,
// since a standby replica is as healthy as the leader.
func (t *Task[T]) setRole(h *core.Host, token uint64, leading bool) {
	text := "standby"
	if leading {
		text = "leader (token " + strconv.FormatUint(token, 10) + ")"
	}
	h.SetStatus(t.statusName(), text, true)
}

func (t *Task[T]) statusName() string { return "leader " + t.name }
