package jaegertest_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/coreservice/coreservice/internal/jaegertest"
)

const oneTrace = `[{"traceID":"0af7651916cd43dd8448eb211c80319c","spans":[],"processes":{}}]`

func TestTracesAsksForServiceOperationAndLimit(t *testing.T) {
	api := serve(http.StatusOK, envelope(`[]`))
	if _, err := api.client().Traces(t.Context(), "checkout", "task checkout/poll", 7); err != nil {
		t.Fatal(err)
	}
	r := api.request(0)
	if r.URL.Path != "/api/traces" {
		t.Errorf("path: got %q, want /api/traces", r.URL.Path)
	}
	q := r.URL.Query()
	for key, want := range map[string]string{"service": "checkout", "operation": "task checkout/poll", "limit": "7"} {
		if got := q.Get(key); got != want {
			t.Errorf("query %s: got %q, want %q", key, got, want)
		}
	}
}

func TestTracesWithoutOperationSendsNone(t *testing.T) {
	api := serve(http.StatusOK, envelope(`[]`))
	if _, err := api.client().Traces(t.Context(), "checkout", "", 1); err != nil {
		t.Fatal(err)
	}
	if q := api.request(0).URL.Query(); q.Has("operation") {
		t.Errorf("query: got operation=%q, want no operation parameter", q.Get("operation"))
	}
}

func TestTracesRejectsBadArguments(t *testing.T) {
	api := serve(http.StatusOK, envelope(`[]`))
	c := api.client()
	if _, err := c.Traces(t.Context(), "", "", 1); err == nil || !strings.Contains(err.Error(), "service is empty") {
		t.Errorf("empty service: got %v, want an error saying the service is empty", err)
	}
	if _, err := c.Traces(t.Context(), "checkout", "", 0); err == nil || !strings.Contains(err.Error(), "limit is 0") {
		t.Errorf("limit 0: got %v, want an error naming the limit", err)
	}
	if _, err := c.WaitTraces(t.Context(), "checkout", "", 0); err == nil || !strings.Contains(err.Error(), "atLeast is 0") {
		t.Errorf("WaitTraces atLeast 0: got %v, want an error naming atLeast", err)
	}
	if _, err := c.Trace(t.Context(), ""); err == nil || !strings.Contains(err.Error(), "id is empty") {
		t.Errorf("Trace with no id: got %v, want an error saying the id is empty", err)
	}
	if n := api.calls(); n != 0 {
		t.Errorf("requests sent: got %d, want 0 for bad arguments", n)
	}
}

func TestServicesReturnsNames(t *testing.T) {
	api := serve(http.StatusOK, envelope(`["checkout","jaeger"]`))
	got, err := api.client().Services(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"checkout", "jaeger"}; !slices.Equal(got, want) {
		t.Errorf("services: got %v, want %v", got, want)
	}
	if p := api.request(0).URL.Path; p != "/api/services" {
		t.Errorf("path: got %q, want /api/services", p)
	}
}

func TestTraceOfUnknownIDWrapsErrTraceNotFound(t *testing.T) {
	api := serve(http.StatusNotFound, `{"data":null,"total":0,"limit":0,"offset":0,"errors":[{"code":404,"msg":"trace not found"}]}`)
	_, err := api.client().Trace(t.Context(), "0af7651916cd43dd8448eb211c80319c")
	if !errors.Is(err, jaegertest.ErrTraceNotFound) {
		t.Fatalf("got %v, want an error wrapping ErrTraceNotFound", err)
	}
	if p := api.request(0).URL.Path; p != "/api/traces/0af7651916cd43dd8448eb211c80319c" {
		t.Errorf("path: got %q, want /api/traces/0af7651916cd43dd8448eb211c80319c", p)
	}
}

func TestQueryErrorNamesStatusAndJaegersMessage(t *testing.T) {
	api := serve(http.StatusInternalServerError, `{"data":null,"errors":[{"code":500,"msg":"storage is down"}]}`)
	_, err := api.client().Traces(t.Context(), "checkout", "", 1)
	if err == nil {
		t.Fatal("got nil, want an error")
	}
	for _, want := range []string{"500", "storage is down", `"checkout"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error: got %q, want it to contain %q", err, want)
		}
	}
	if errors.Is(err, jaegertest.ErrTraceNotFound) {
		t.Errorf("error: got %v, want it not to be ErrTraceNotFound", err)
	}
}

func TestQueryErrorsInA200AnswerAreErrors(t *testing.T) {
	api := serve(http.StatusOK, `{"data":[],"errors":[{"code":500,"msg":"search depth too large"}]}`)
	_, err := api.client().Traces(t.Context(), "checkout", "", 1)
	if err == nil || !strings.Contains(err.Error(), "search depth too large") {
		t.Fatalf("got %v, want an error with Jaeger's message", err)
	}
}

func TestQueryThatIsNotJSONIsAnError(t *testing.T) {
	api := serve(http.StatusOK, `<html>placeholder</html>`)
	_, err := api.client().Services(t.Context())
	if err == nil || !strings.Contains(err.Error(), "placeholder") {
		t.Fatalf("got %v, want a decoding error quoting the answer", err)
	}
}

func TestWaitTracesPollsUntilThereAreEnough(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := &fakeAPI{respond: func(n int, _ *http.Request) (int, string) {
			switch {
			case n == 2:
				return http.StatusServiceUnavailable, `{"errors":[{"msg":"starting"}]}`
			case n < 4:
				return http.StatusOK, envelope(`[]`)
			}
			return http.StatusOK, envelope(`[` + strings.Trim(oneTrace, "[]") + `,` + strings.Trim(oneTrace, "[]") + `]`)
		}}
		start := time.Now()
		traces, err := api.client().WaitTraces(t.Context(), "checkout", "", 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(traces) != 2 {
			t.Errorf("traces: got %d, want 2", len(traces))
		}
		if n := api.calls(); n != 4 {
			t.Errorf("queries: got %d, want 4 (two empty answers and a failure before)", n)
		}
		if got, want := time.Since(start), 3*jaegertest.PollInterval; got != want {
			t.Errorf("waited: got %v, want %v", got, want)
		}
		if got := api.request(0).URL.Query().Get("limit"); got != "1000" {
			t.Errorf("limit: got %q, want 1000", got)
		}
	})
}

func TestWaitTracesReturnsWhatItSawWhenContextEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := serve(http.StatusOK, envelope(oneTrace))
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		traces, err := api.client().WaitTraces(ctx, "checkout", "start checkout", 3)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v, want an error wrapping context.DeadlineExceeded", err)
		}
		for _, want := range []string{"3 traces", `"checkout"`, `"start checkout"`, "got 1"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error: got %q, want it to contain %q", err, want)
			}
		}
		if len(traces) != 1 {
			t.Errorf("traces: got %d, want the 1 seen last", len(traces))
		}
	})
}

func TestWaitTracesReportsTheLastFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := serve(http.StatusInternalServerError, `{"errors":[{"msg":"storage is down"}]}`)
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		_, err := api.client().WaitTraces(ctx, "checkout", "", 1)
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "storage is down") {
			t.Fatalf("got %v, want context.DeadlineExceeded and Jaeger's message", err)
		}
	})
}
