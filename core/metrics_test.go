package core_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/internal/coretest"
)

// metricPoints reads reader and returns the points of the metric named
// name, keyed by their attributes rendered as "k=v k=v".
func metricPoints[N int64 | float64](t *testing.T, reader *sdkmetric.ManualReader, name string) map[string]any {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatalf("Collect: got %v, want nil", err)
	}
	out := map[string]any{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			switch d := m.Data.(type) {
			case metricdata.Sum[N]:
				for _, p := range d.DataPoints {
					out[p.Attributes.Encoded(attribute.DefaultEncoder())] = p.Value
				}
			case metricdata.Histogram[N]:
				for _, p := range d.DataPoints {
					out[p.Attributes.Encoded(attribute.DefaultEncoder())] = p
				}
			}
		}
	}
	return out
}

func TestServiceStateMetricIsOneForTheCurrentState(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reader := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
		defer func() { _ = mp.Shutdown(context.Background()) }()
		s := core.NewService(core.Name("api"), core.Logger(coretest.Quiet()), core.MeterProvider(mp))
		want := func(when string, states map[string]int64) {
			t.Helper()
			got := metricPoints[int64](t, reader, "coreservice.service.state")
			for st, v := range states {
				key := "coreservice.service=api,coreservice.state=" + st
				if got[key] != v {
					t.Errorf("%s: %s: got %v, want %d (all: %v)", when, st, got[key], v, got)
				}
			}
		}
		coretest.MustStart(t, s)
		want("running", map[string]int64{"starting": 0, "running": 1})
		coretest.MustStop(t, s)
		want("stopped", map[string]int64{"starting": 0, "running": 0, "stopping": 0, "terminated": 1})
	})
}

func TestHealthcheckDurationPerCheck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reader := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
		defer func() { _ = mp.Shutdown(context.Background()) }()
		runs := 0
		errDown := errors.New("down")
		s := core.NewService(core.Name("api"), core.Logger(coretest.Quiet()), core.MeterProvider(mp),
			core.MonitorInterval(time.Second),
			&check{name: "ping", threshold: 5, fn: func(context.Context) error {
				runs++
				coretest.Advance(20 * time.Millisecond)
				if runs == 3 {
					return errDown
				}
				return nil
			}})
		coretest.MustStart(t, s) // run 1, at start
		<-time.After(3500 * time.Millisecond)
		synctest.Wait() // runs 2, 3 (failed) and 4 on monitor ticks
		coretest.MustStop(t, s)
		got := metricPoints[float64](t, reader, "coreservice.healthcheck.duration")
		ok, _ := got["coreservice.check=ping,coreservice.service=api"].(metricdata.HistogramDataPoint[float64])
		bad, _ := got["coreservice.check=ping,coreservice.service=api,error.type=*errors.errorString"].(metricdata.HistogramDataPoint[float64])
		if ok.Count != 3 || bad.Count != 1 || bad.Sum != 0.02 {
			t.Fatalf("check runs: got %d clean and %d failed (sum %v s), want 3 and 1 (0.02 s); points %v",
				ok.Count, bad.Count, bad.Sum, got)
		}
	})
}
