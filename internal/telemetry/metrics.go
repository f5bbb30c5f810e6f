package telemetry

import (
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
)

// Metric names. Units are UCUM; no unit is part of a name.
const (
	// MetricTaskRunDuration is a histogram (s) of task runs, with
	// AttrService, AttrTask, and error.type on a failed run.
	MetricTaskRunDuration = "coreservice.task.run.duration"
	// MetricTaskRetries is a counter ({retry}) of the retries a task's
	// Retry policy scheduled after a failed run, with AttrService and
	// AttrTask.
	MetricTaskRetries = "coreservice.task.retries"
	// MetricHealthcheckDuration is a histogram (s) of health check runs,
	// with AttrService, AttrCheck, and error.type on a failed run.
	MetricHealthcheckDuration = "coreservice.healthcheck.duration"
	// MetricServiceState is an up-down counter ({service}) that is 1 for the
	// state a service is in and 0 for the states it has left, with
	// AttrService and AttrState, as OpenTelemetry's semantic conventions
	// report states (hw.status, k8s.pod.status.phase).
	MetricServiceState = "coreservice.service.state"
)

// AttrState names a service state ("running") on MetricServiceState.
const AttrState = attribute.Key("coreservice.state")

// DurationBuckets are the explicit bucket boundaries, in seconds, of the
// duration histograms: those OpenTelemetry's semantic conventions advise
// for http.server.request.duration, from 5 ms to 10 s.
var DurationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}

// MeterGate tells a hot loop whether recording a measurement is worth it,
// as SpanGate does for spans: it says no only while the meter is known to
// record nothing (a metric/noop meter, or the OpenTelemetry global meter
// while no provider has been installed with otel.SetMeterProvider), so a
// loop that asks first does not even read the clock. It looks again at
// every call. The zero MeterGate always says yes.
type MeterGate struct {
	off   bool
	unset metric.MeterProvider
}

// NewMeterGate returns the gate for meter, which was obtained with
// Meter(scope) from some provider.
func NewMeterGate(meter metric.Meter, scope string) MeterGate {
	if _, ok := meter.(noop.Meter); ok {
		return MeterGate{off: true}
	}
	gmp := otel.GetMeterProvider()
	if !globalDefault(gmp) || gmp.Meter(scope) != meter {
		return MeterGate{} // an installed provider, or an unknown one: always on
	}
	return MeterGate{unset: gmp}
}

// On reports whether a measurement recorded now could be exported. It
// does not allocate.
func (g MeterGate) On() bool {
	if g.off {
		return false
	}
	return g.unset == nil || otel.GetMeterProvider() != g.unset
}
