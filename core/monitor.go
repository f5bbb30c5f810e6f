package core

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/coreservice/coreservice/internal/telemetry"
)

// monitor is a service's monitor: it runs the checks every MonitorInterval,
// each tick a new trace "healthcheck <name>" linked to the start span, and
// fails the service once a check has failed Threshold times in a row, or
// once a requirement of a type other than *Base is no longer Running.
//
// Between ticks it is only a timer on the runtime's timer heap
// (time.AfterFunc): no goroutine waits for the next tick. A tick runs in the
// goroutine the timer starts; it is one of the service's goroutines
// (workerSet), named "monitor", so the stop waits for a tick under way, for
// at most StopTimeout, and names it if a check ignores its context. The
// next tick is armed when one ends, under the workerSet's lock, and the
// stop, closing the set, disarms it: no tick begins once the stop has.
type monitor struct {
	b        *Base
	failures []int           // consecutive failures of each check on ticks
	base     context.Context // the service's lifetime context, without its cancellation
	timer    *time.Timer
}

// startMonitor arms the monitor's first tick, unless the stop has begun.
func (b *Base) startMonitor() {
	m := &monitor{b: b, failures: make([]int, len(b.cfg.checks))}
	if g := b.cfg.grace; g != nil {
		// Start is over: the service becomes Running now, and the startup
		// graces of its checks run from here.
		g.mu.Lock()
		g.running = time.Now()
		g.mu.Unlock()
	}
	w := &b.workers
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed || w.ctx == nil {
		return
	}
	// The checks' contexts come from base, and the stop ends them through
	// the workerSet (runCheck): derived from the lifetime context, each
	// tick's would leave a map of children behind in it.
	m.base = context.WithoutCancel(w.ctx)
	// Under w.mu: the tick reads m.timer only once it holds the lock too.
	m.timer = time.AfterFunc(b.cfg.monitorInterval, m.tick)
	w.timer = m.timer
}

// tick is one run of the monitor, in the goroutine of its timer.
func (m *monitor) tick() {
	b := m.b
	w := &b.workers
	id, ctx, ok := w.enter("monitor")
	if !ok {
		return // the stop has begun
	}
	defer w.exit(id)
	if err := callRecover(ctx, "monitor", m.run); err != nil {
		if ctx.Err() == nil || !errors.Is(err, context.Canceled) {
			b.fail(err)
		}
		return
	}
	if ctx.Err() != nil {
		return
	}
	w.mu.Lock()
	if !w.closed {
		m.timer.Reset(b.cfg.monitorInterval)
	}
	w.mu.Unlock()
}

// run runs the checks of one tick. It returns the failure the service fails
// with, or nil; nil too once ctx has ended: failures caused by the stop's
// cancellation do not count.
func (m *monitor) run(ctx context.Context) error {
	b := m.b
	cctx, span := m.base, noSpan
	if b.spans.On() {
		link := trace.Link{SpanContext: b.host.StartSpanContext()}
		cctx, span = b.tracer.Start(m.base, telemetry.SpanName(telemetry.SpanHealthcheck, b.name),
			trace.WithNewRoot(), trace.WithLinks(link),
			trace.WithSpanKind(trace.SpanKindInternal),
			trace.WithAttributes(telemetry.AttrService.String(b.name)))
	}
	if err := b.foreignRequirementsRunning(); err != nil {
		telemetry.End(span, err)
		return err
	}
	var failed, fatal []error
	for i, c := range b.cfg.checks {
		err := b.runCheck(cctx, i, &b.workers)
		if err == nil {
			m.failures[i] = 0
			continue
		}
		if b.inGrace(i, time.Now()) {
			// Not ready, not failed: no count, no event; the probes and
			// the span show the failure.
			m.failures[i] = 0
			failed = append(failed, fmt.Errorf("check %s: in startup grace: %w", c.Name(), err))
			continue
		}
		m.failures[i]++
		if ctx.Err() == nil && !b.workers.isClosed() { // stopping: failures caused by the cancellation don't count
			emit(b, cctx, CheckFailed{Service: b.name, Check: c.Name(), Failures: m.failures[i],
				Threshold: c.Threshold(), Err: err})
		}
		err = fmt.Errorf("check %s: %w", c.Name(), err)
		failed = append(failed, err)
		if m.failures[i] >= c.Threshold() {
			fatal = append(fatal, err)
		}
	}
	telemetry.End(span, errors.Join(failed...))
	if ctx.Err() != nil || b.workers.isClosed() {
		return nil // stopping: failures caused by the cancellation don't count
	}
	if len(fatal) > 0 {
		return fmt.Errorf("%w: %s: %w", ErrUnhealthy, b.name, errors.Join(fatal...))
	}
	return nil
}
