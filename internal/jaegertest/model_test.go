package jaegertest_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/coreservice/coreservice/internal/jaegertest"
)

// The fixture (testdata/traces.json) holds three traces of service
// checkout: a start with two requirements; a failed task run, linked to
// the start, whose child ran in service inventory; and a successful run
// whose parent is in no trace.

func traceWith(t *testing.T, traces []jaegertest.Trace, id string) jaegertest.Trace {
	t.Helper()
	for _, tr := range traces {
		if tr.TraceID == id {
			return tr
		}
	}
	t.Fatalf("no trace %s in the fixture", id)
	return jaegertest.Trace{}
}

func TestFixtureDecodesSpansReferencesAndTimes(t *testing.T) {
	traces := fixtureTraces(t)
	if len(traces) != 3 {
		t.Fatalf("traces: got %d, want 3", len(traces))
	}
	start := traceWith(t, traces, "bcc34a157de9a83cf10026b9e978d60b")
	root := start.Span("start checkout")
	if root == nil {
		t.Fatalf("no span start checkout in %v", opNames(start))
	}
	if root.SpanID != "9a83af3273dcd4be" || root.TraceID != start.TraceID || root.ParentID() != "" {
		t.Errorf("start span: got id %s trace %s parent %q, want 9a83af3273dcd4be, its trace, none",
			root.SpanID, root.TraceID, root.ParentID())
	}
	if want := time.UnixMicro(1796153745197885).UTC(); !root.StartTime.Equal(want) {
		t.Errorf("start time: got %v, want %v", root.StartTime, want)
	}
	if want := 18345 * time.Microsecond; root.Duration != want {
		t.Errorf("duration: got %v, want %v", root.Duration, want)
	}
	children := start.Children(root.SpanID)
	if len(children) != 2 || children[0].OperationName != "requirement checkout/db" ||
		children[1].OperationName != "requirement checkout/cache" {
		t.Fatalf("children of start: got %v, want the db then the cache requirement", spanNames(children))
	}
	if r := children[0].References; len(r) != 1 || r[0] != (jaegertest.Reference{
		RefType: jaegertest.ChildOf, TraceID: start.TraceID, SpanID: root.SpanID}) {
		t.Errorf("references: got %+v, want one CHILD_OF the start span", r)
	}
	if got := start.Service(root); got != "checkout" {
		t.Errorf("service: got %q, want checkout", got)
	}
	if got, _ := start.Processes[root.ProcessID].Tag("host.name"); got != "build-01" {
		t.Errorf("process tag host.name: got %v, want build-01", got)
	}
}

func TestFixtureFailedRunHasErrorExceptionAndLink(t *testing.T) {
	failed := traceWith(t, fixtureTraces(t), "a598d09652710babd797753ccb1df64c")
	run := failed.Span("task checkout/poll")
	if run == nil {
		t.Fatalf("no span task checkout/poll in %v", opNames(failed))
	}
	if !run.HasError() {
		t.Error("HasError: got false, want true for a span with status Error")
	}
	ev := run.Event("exception")
	if ev == nil {
		t.Fatalf("logs: got %+v, want an exception event", run.Logs)
	}
	if got, _ := ev.Field("exception.message"); got != "poll orders: 503 Service Unavailable\nretry later" {
		t.Errorf("exception.message: got %q, want the recorded error", got)
	}
	if got := run.ErrorMessage(); got != "poll orders: 503 Service Unavailable\nretry later" {
		t.Errorf("ErrorMessage: got %q, want the exception's message", got)
	}
	if got := run.Links(); len(got) != 1 || got[0].TraceID != "bcc34a157de9a83cf10026b9e978d60b" || got[0].SpanID != "9a83af3273dcd4be" {
		t.Errorf("links: got %+v, want the start span of trace bcc34a15...", got)
	}
	call := failed.Span("GET /orders")
	if call == nil || call.ParentID() != run.SpanID || failed.Service(call) != "inventory" {
		t.Fatalf("GET /orders: got %+v, want a child of the run in service inventory", call)
	}
	if !call.HasError() || call.Event("exception") != nil || call.ErrorMessage() != "upstream timeout" {
		t.Errorf("GET /orders: got error %v, message %q; want true and its status description", call.HasError(), call.ErrorMessage())
	}
	if got := failed.Children(call.SpanID); len(got) != 0 {
		t.Errorf("children of a leaf: got %v, want none", spanNames(got))
	}
}

func TestFixtureTagsKeepTheirTypes(t *testing.T) {
	run := traceWith(t, fixtureTraces(t), "a598d09652710babd797753ccb1df64c").Span("task checkout/poll")
	for key, want := range map[string]any{
		"coreservice.task.run":   int64(3),
		"coreservice.task.retry": true,
		"load":                   0.75,
		"tags":                   `["a","b"]`, // Jaeger sends a string slice as its JSON
		"otel.status_code":       "ERROR",
	} {
		if got, ok := run.Tag(key); !ok || got != want {
			t.Errorf("tag %s: got %v (%T), %v; want %v (%T)", key, got, got, ok, want, want)
		}
	}
	if got, ok := run.Tag("no.such.tag"); ok {
		t.Errorf("tag no.such.tag: got %v, true; want nil, false", got)
	}
}

func TestFixtureRunWithAbsentParentIsARootOfItsTrace(t *testing.T) {
	tr := traceWith(t, fixtureTraces(t), "cafe0100000000000000000000000000")
	run := tr.Span("task checkout/poll")
	if run == nil || run.ParentID() != "beef010000000000" {
		t.Fatalf("run: got %+v, want parent beef010000000000", run)
	}
	if run.HasError() || run.ErrorMessage() != "" {
		t.Errorf("successful run: got error %v, message %q; want false, empty", run.HasError(), run.ErrorMessage())
	}
	if ev := run.Event("polled"); ev == nil {
		t.Errorf("logs: got %+v, want a polled event", run.Logs)
	} else if got, _ := ev.Field("orders"); got != int64(12) {
		t.Errorf("polled orders: got %v (%T), want int64 12", got, got)
	}
	if run.Event("exception") != nil {
		t.Error("exception event: got one, want none on a successful run")
	}
}

func TestSpanLookupByNameIsTheEarliest(t *testing.T) {
	tr := jaegertest.Trace{Spans: []jaegertest.Span{
		{SpanID: "b", OperationName: "run", StartTime: time.Unix(20, 0)},
		{SpanID: "a", OperationName: "run", StartTime: time.Unix(10, 0)},
		{SpanID: "c", OperationName: "other", StartTime: time.Unix(5, 0)},
	}}
	if got := tr.Span("run"); got == nil || got.SpanID != "a" {
		t.Errorf("Span(run): got %+v, want span a, the earliest", got)
	}
	if got := tr.SpansNamed("run"); len(got) != 2 || got[0].SpanID != "a" || got[1].SpanID != "b" {
		t.Errorf("SpansNamed(run): got %v, want a, b", spanNames(got))
	}
	if got := tr.Span("missing"); got != nil {
		t.Errorf("Span(missing): got %+v, want nil", got)
	}
	// The pointer refers into the trace: a test can follow it.
	tr.Span("other").OperationName = "renamed"
	if tr.Spans[2].OperationName != "renamed" {
		t.Error("Span: got a copy, want a pointer into Spans")
	}
}

func TestInt64TagsKeepAllTheirDigits(t *testing.T) {
	var kv jaegertest.KeyValue
	if err := json.Unmarshal([]byte(`{"key":"n","type":"int64","value":9007199254740993}`), &kv); err != nil {
		t.Fatal(err)
	}
	if kv.Value != int64(9007199254740993) {
		t.Fatalf("value: got %v (%T), want int64 9007199254740993", kv.Value, kv.Value)
	}
}

func TestMalformedTagIsAnErrorNamingIt(t *testing.T) {
	api := serve(http.StatusOK, envelope(`[{"traceID":"x","spans":[{"spanID":"s","tags":[{"key":"n","type":"int64","value":"many"}]}]}]`))
	_, err := api.client().Traces(t.Context(), "checkout", "", 1)
	if err == nil || !contains(err.Error(), `tag "n"`) {
		t.Fatalf("got %v, want an error naming tag n", err)
	}
}

func spanNames(spans []*jaegertest.Span) []string {
	var names []string
	for _, s := range spans {
		names = append(names, s.OperationName)
	}
	return names
}
