package jaegertest_test

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/coreservice/coreservice/internal/jaegertest"
)

var update = flag.Bool("update", false, "rewrite testdata/traces.txt from testdata/traces.json")

func TestRenderPrintsTheFixtureAsTrees(t *testing.T) {
	var out bytes.Buffer
	if err := jaegertest.Render(&out, fixtureTraces(t)); err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile("testdata/traces.txt", out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if want := string(fixture(t, "traces.txt")); out.String() != want {
		t.Fatalf("Render: got\n%s\nwant (testdata/traces.txt)\n%s", out.String(), want)
	}
}

func TestRenderShowsErrorsLinksServicesAndOrphans(t *testing.T) {
	var out bytes.Buffer
	if err := jaegertest.Render(&out, fixtureTraces(t)); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{
		// newest trace first
		"trace cafe0100000000000000000000000000  2026-12-01 19:35:45.221 UTC  checkout  2 spans\n" +
			"  task checkout/poll  1.515ms  (parent not in trace)\n" +
			"    healthcheck checkout  1.081ms\n",
		"  task checkout/poll  4.939ms  (follows trace bcc34a157de9a83cf10026b9e978d60b)  ERROR poll orders: 503 Service Unavailable retry later\n" +
			"    GET /orders  4.167ms  [inventory]  ERROR upstream timeout\n",
		"  start checkout  18.345ms\n    requirement checkout/db  3.278ms\n    requirement checkout/cache  2.192ms\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("Render: got\n%s\nwant it to contain\n%s", got, want)
		}
	}
	if !strings.HasPrefix(got, "trace cafe01") {
		t.Errorf("Render: got first line %q, want the newest trace cafe01...", strings.SplitN(got, "\n", 2)[0])
	}
}

func TestRenderOfNoTracesWritesNothing(t *testing.T) {
	var out bytes.Buffer
	if err := jaegertest.Render(&out, nil); err != nil || out.Len() != 0 {
		t.Fatalf("got %q, %v, want nothing, nil", out.String(), err)
	}
}

func TestRenderFormatsDurations(t *testing.T) {
	for d, want := range map[time.Duration]string{
		850 * time.Microsecond:                "850µs",
		12345678 * time.Nanosecond:            "12.346ms",
		1234567 * time.Microsecond:            "1.235s",
		90*time.Second + 400*time.Microsecond: "1m30s",
	} {
		var out bytes.Buffer
		tr := jaegertest.Trace{TraceID: "t", Spans: []jaegertest.Span{{SpanID: "s", OperationName: "op", Duration: d}}}
		if err := jaegertest.Render(&out, []jaegertest.Trace{tr}); err != nil {
			t.Fatal(err)
		}
		if line := strings.Split(out.String(), "\n")[1]; line != "  op  "+want {
			t.Errorf("duration %v: got %q, want %q", d, line, "  op  "+want)
		}
	}
}

type failingWriter struct{}

var errDiskFull = errors.New("disk full")

func (failingWriter) Write([]byte) (int, error) { return 0, errDiskFull }

func TestRenderReturnsTheWriteError(t *testing.T) {
	if err := jaegertest.Render(failingWriter{}, fixtureTraces(t)); !errors.Is(err, errDiskFull) {
		t.Fatalf("got %v, want %v", err, errDiskFull)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
