package core

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/coreservice/coreservice/internal/telemetry"
)

// serviceMetrics are a service's instruments. They are made on first use
// once the service's meter records (its MeterGate is on), so that a service
// whose meter records nothing builds no instrument and no attribute set.
type serviceMetrics struct {
	gate telemetry.MeterGate

	once      sync.Once
	counted   atomic.Bool // the state counter holds the current state
	state     metric.Int64UpDownCounter
	checks    metric.Float64Histogram
	checkOpts [][]metric.RecordOption // per check, by index: service and check
}

// instruments makes the instruments on first call. Errors making them come
// only from invalid names or units, which are constants here; they are
// logged, and the instruments the meter returned anyway (no-ops) are used.
func (b *Base) instruments() *serviceMetrics {
	m := &b.metrics
	m.once.Do(func() {
		var err1, err2 error
		m.state, err1 = b.meter.Int64UpDownCounter(telemetry.MetricServiceState,
			metric.WithUnit("{service}"),
			metric.WithDescription("1 for the state the service is in, 0 for the states it has left"))
		m.checks, err2 = b.meter.Float64Histogram(telemetry.MetricHealthcheckDuration,
			metric.WithUnit("s"), metric.WithDescription("Duration of health check runs"),
			metric.WithExplicitBucketBoundaries(telemetry.DurationBuckets...))
		for _, err := range []error{err1, err2} {
			if err != nil {
				b.logger().Warn("cannot make a metric instrument", "error", err)
			}
		}
		m.checkOpts = make([][]metric.RecordOption, len(b.cfg.checks))
		for i, c := range b.cfg.checks {
			m.checkOpts[i] = []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(
				telemetry.AttrService.String(b.name), telemetry.AttrCheck.String(c.Name())))}
		}
	})
	return m
}

// recordState moves the service's MetricServiceState from one state to
// another; b.mu is held, so changes are recorded in order. A service appears
// in the metric from the first change its meter records (a service started
// before an SDK was installed, from its next change): until then it counted
// in no state, so that first change only enters the new state.
func (b *Base) recordState(from, to State) {
	ctx := context.Background()
	if b.meter == nil || !b.metrics.gate.On() { // b.meter is nil in a zero Base
		return
	}
	m := b.instruments()
	if m.counted.Swap(true) {
		m.state.Add(ctx, -1, b.stateOpt(from))
	}
	m.state.Add(ctx, 1, b.stateOpt(to))
}

func (b *Base) stateOpt(s State) metric.AddOption {
	return metric.WithAttributeSet(attribute.NewSet(telemetry.AttrService.String(b.name),
		telemetry.AttrState.String(s.String())))
}

// recordCheck records the duration of a run of check i that began at start.
func (b *Base) recordCheck(ctx context.Context, i int, start time.Time, err error) {
	m := b.instruments()
	d := time.Since(start).Seconds()
	if err == nil {
		m.checks.Record(ctx, d, m.checkOpts[i]...)
		return
	}
	c := b.cfg.checks[i]
	m.checks.Record(ctx, d, metric.WithAttributeSet(attribute.NewSet(
		telemetry.AttrService.String(b.name), telemetry.AttrCheck.String(c.Name()),
		semconv.ErrorTypeKey.String(telemetry.ErrorType(err)))))
}
