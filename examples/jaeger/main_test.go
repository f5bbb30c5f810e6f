package main

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/coreservice/coreservice/internal/jaegertest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// ran is set once TestTracesReachARealJaeger has run in this process.
var ran bool

// TestTracesReachARealJaeger runs the example for a few seconds against a
// real Jaeger, configured by the OTEL_* environment alone, and reads back
// through Jaeger's query API what a person would look at in its UI.
func TestTracesReachARealJaeger(t *testing.T) {
	// run installs the OpenTelemetry globals (otelx.Setup), which cannot be
	// uninstalled: the test runs once per process (go test -count=N).
	if ran {
		t.Skip("the OpenTelemetry globals were installed by an earlier run in this process")
	}
	ran = true
	j := jaegertest.Start(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+j.OTLPGRPCEndpoint()) // gRPC, the default protocol
	t.Setenv("OTEL_SERVICE_NAME", "shop")
	// Metrics stay on, as in the README's command: they go to the same
	// endpoint, and run's shutdown fails if Jaeger refuses them.
	if err := run(t.Context(), config{runFor: 3 * time.Second, probes: "127.0.0.1:0", failEvery: 4}); err != nil {
		t.Fatalf("run: got %v, want nil", err)
	}

	client := jaegertest.NewClient(j.QueryURL())
	defer client.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	services, err := client.Services(ctx)
	if err != nil || !slices.Contains(services, "shop") {
		t.Fatalf("services: got %v (%v), want shop among them", services, err)
	}
	for _, op := range []string{"start api", "stop api", "task api/fetch", "healthcheck api"} {
		traces, err := client.WaitTraces(ctx, "shop", op, 1)
		if err != nil {
			t.Fatalf("traces of %q: got %v, want at least one", op, err)
		}
		if s := traces[0].Span(op); s == nil || traces[0].Service(s) != "shop" {
			t.Fatalf("trace of %q: got no such span of process shop", op)
		}
	}

	// The start trace: "start api" with a child "start db", and the check
	// runs under it.
	starts, err := client.Traces(ctx, "shop", "start api", 1)
	if err != nil || len(starts) != 1 {
		t.Fatalf("start trace: got %d (%v), want 1", len(starts), err)
	}
	start := starts[0].Span("start api")
	var children []string
	for _, c := range starts[0].Children(start.SpanID) {
		children = append(children, c.OperationName)
	}
	if !slices.Contains(children, "start db") || !slices.Contains(children, "check fresh") {
		t.Fatalf("children of start api: got %v, want start db and check fresh among them", children)
	}

	// Task runs are traces of their own, linked to the start span; a
	// failed run is an Error span with its exception.
	runs, err := client.Traces(ctx, "shop", "task api/fetch", 100)
	if err != nil {
		t.Fatal(err)
	}
	var failed, linked, queried bool
	for _, tr := range runs {
		run := tr.Span("task api/fetch")
		for _, l := range run.Links() {
			linked = linked || l.SpanID == start.SpanID
		}
		if run.HasError() {
			failed = true
			if msg := run.ErrorMessage(); !strings.Contains(msg, "upstream timed out") {
				t.Errorf("failed run: exception message got %q, want it to say upstream timed out", msg)
			}
			if run.Event("exception") == nil {
				t.Errorf("failed run: got no exception event")
			}
		}
		for _, c := range tr.Children(run.SpanID) {
			queried = queried || c.OperationName == "query"
		}
	}
	if !failed || !linked || !queried {
		t.Fatalf("of %d runs: a failed one %v, one linked to the start %v, one with a query child %v; want all true",
			len(runs), failed, linked, queried)
	}
}
