package task_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cenkalti/backoff/v4"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/internal/coretest"
	"github.com/coreservice/coreservice/task"
)

// collect reads every metric of reader, by name.
func collect(t *testing.T, reader *sdkmetric.ManualReader) map[string]metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatalf("Collect: got %v, want nil", err)
	}
	out := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			out[m.Name] = m
		}
	}
	return out
}

// attrString renders an attribute set as k=v pairs in key order.
func attrString(s attribute.Set) string {
	var out string
	for _, kv := range s.ToSlice() {
		out += string(kv.Key) + "=" + kv.Value.String() + " "
	}
	return out
}

func TestRunDurationHistogramAndRetryCounter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reader := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
		defer func() { _ = mp.Shutdown(context.Background()) }()

		// Runs: ok (300 ms), fail (100 ms) and retried, ok (300 ms), then done.
		n := 0
		tk := task.Func("fetch", func(ctx context.Context) error {
			n++
			switch n {
			case 2:
				coretest.Advance(100 * time.Millisecond)
				return errBoom
			case 4:
				return task.ErrDone
			}
			coretest.Advance(300 * time.Millisecond)
			return nil
		}, task.Every(time.Second), afterStart,
			task.Retry(func() backoff.BackOff { return backoff.NewConstantBackOff(time.Second) }))
		svc := newService(tk, core.MeterProvider(mp))
		coretest.MustStart(t, svc)
		advance(10 * time.Second)

		got := collect(t, reader)
		h, ok := got["coreservice.task.run.duration"]
		if !ok {
			t.Fatalf("metrics: got %v, want coreservice.task.run.duration", got)
		}
		if h.Unit != "s" {
			t.Errorf("unit: got %q, want s", h.Unit)
		}
		points := map[string]metricdata.HistogramDataPoint[float64]{}
		for _, p := range h.Data.(metricdata.Histogram[float64]).DataPoints {
			points[attrString(p.Attributes)] = p
		}
		ok1 := points["coreservice.service=svc coreservice.task=fetch "]
		fail := points["coreservice.service=svc coreservice.task=fetch error.type=*errors.errorString "]
		// The ErrDone run is not a failure: three clean runs, one failed.
		if ok1.Count != 3 || ok1.Sum != 0.6 {
			t.Errorf("clean runs: got count %d sum %v, want 3 and 0.6 s (%v)", ok1.Count, ok1.Sum, points)
		}
		if fail.Count != 1 || fail.Sum != 0.1 {
			t.Errorf("failed runs: got count %d sum %v, want 1 and 0.1 s (%v)", fail.Count, fail.Sum, points)
		}
		retries := got["coreservice.task.retries"].Data.(metricdata.Sum[int64]).DataPoints
		if len(retries) != 1 || retries[0].Value != 1 ||
			attrString(retries[0].Attributes) != "coreservice.service=svc coreservice.task=fetch " {
			t.Errorf("retries: got %+v, want one point of 1 for svc/fetch", retries)
		}
	})
}
