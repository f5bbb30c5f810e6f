package jaegertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// QueryTimeout bounds each request a [Client] makes, on top of its context.
const QueryTimeout = 30 * time.Second

// PollInterval is how often [Client.WaitTraces] asks Jaeger again.
const PollInterval = 100 * time.Millisecond

// waitLimit is how many traces WaitTraces asks for at least.
const waitLimit = 1000

// maxBody bounds how much of a response a Client reads.
const maxBody = 64 << 20

// ErrTraceNotFound is returned (wrapped) by [Client.Trace] when Jaeger has
// no trace with that id.
var ErrTraceNotFound = errors.New("trace not found")

// Client reads Jaeger's query API (the JSON API under /api that Jaeger's UI
// uses).
type Client struct {
	base string
	http *http.Client
	own  bool
}

// ClientOption configures a [Client].
type ClientOption interface {
	apply(*Client)
}

type httpClientOption struct{ c *http.Client }

func (o httpClientOption) apply(c *Client) { c.http, c.own = o.c, false }

// WithHTTPClient makes the Client send its requests through hc instead of a
// client of its own; [Client.Close] then leaves hc alone. A nil hc is
// ignored.
func WithHTTPClient(hc *http.Client) ClientOption { return httpClientOption{hc} }

// NewClient returns a client of the query API at queryURL, such as
// "http://127.0.0.1:16686". By default it has its own HTTP transport, which
// [Client.Close] releases.
func NewClient(queryURL string, opts ...ClientOption) *Client {
	c := &Client{
		base: strings.TrimRight(queryURL, "/"),
		http: &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()},
		own:  true,
	}
	for _, o := range opts {
		if o, ok := o.(httpClientOption); ok && o.c == nil {
			continue
		}
		o.apply(c)
	}
	return c
}

// URL returns the query API's base URL.
func (c *Client) URL() string { return c.base }

// Close closes the idle connections of the client's own transport; a
// client given WithHTTPClient is left alone. The Client still works after
// Close (it opens new connections).
func (c *Client) Close() {
	if c.own {
		c.http.CloseIdleConnections()
	}
}

// Services returns the names of the services Jaeger has spans of.
func (c *Client) Services(ctx context.Context) ([]string, error) {
	var names []string
	if err := c.get(ctx, "/api/services", nil, &names); err != nil {
		return nil, fmt.Errorf("jaegertest: services: %w", err)
	}
	return names, nil
}

// Traces returns up to limit traces that contain a span of service (named
// operation, unless operation is ""), from Jaeger's default look-back
// window. Jaeger does not promise an order.
func (c *Client) Traces(ctx context.Context, service, operation string, limit int) ([]Trace, error) {
	if service == "" {
		return nil, errors.New("jaegertest: traces: service is empty, want a service name")
	}
	if limit < 1 {
		return nil, fmt.Errorf("jaegertest: traces of %q: limit is %d, want at least 1", service, limit)
	}
	q := url.Values{"service": {service}, "limit": {strconv.Itoa(limit)}}
	if operation != "" {
		q.Set("operation", operation)
	}
	var traces []Trace
	if err := c.get(ctx, "/api/traces", q, &traces); err != nil {
		return nil, fmt.Errorf("jaegertest: traces of %q: %w", service, err)
	}
	return traces, nil
}

// Trace returns the trace with id (32 hex digits); the error wraps
// [ErrTraceNotFound] if Jaeger has no such trace.
func (c *Client) Trace(ctx context.Context, id string) (Trace, error) {
	if id == "" {
		return Trace{}, errors.New("jaegertest: trace: id is empty, want 32 hex digits")
	}
	var traces []Trace
	err := c.get(ctx, "/api/traces/"+url.PathEscape(id), nil, &traces)
	if se := (*statusError)(nil); errors.As(err, &se) && se.code == http.StatusNotFound {
		return Trace{}, fmt.Errorf("jaegertest: trace %s: %w (%w)", id, ErrTraceNotFound, err)
	}
	if err != nil {
		return Trace{}, fmt.Errorf("jaegertest: trace %s: %w", id, err)
	}
	if len(traces) == 0 {
		return Trace{}, fmt.Errorf("jaegertest: trace %s: %w", id, ErrTraceNotFound)
	}
	return traces[0], nil
}

// WaitTraces asks Jaeger every [PollInterval] for the traces of service
// (and operation, unless ""), until there are at least atLeast of them, and
// returns them all (up to 1000, or atLeast if that is more). A failed query
// is retried at the next tick. When ctx ends first, it returns the traces
// it saw last and an error wrapping ctx's error that says how many there
// were and, if the last query failed, why.
func (c *Client) WaitTraces(ctx context.Context, service, operation string, atLeast int) ([]Trace, error) {
	if atLeast < 1 {
		return nil, fmt.Errorf("jaegertest: waiting for traces of %q: atLeast is %d, want at least 1", service, atLeast)
	}
	limit := max(atLeast, waitLimit)
	ticker := time.NewTicker(PollInterval)
	defer ticker.Stop()
	var last []Trace
	var lastErr error // the last failure not caused by ctx ending
	for {
		traces, err := c.Traces(ctx, service, operation, limit)
		switch {
		case err == nil:
			last, lastErr = traces, nil
			if len(traces) >= atLeast {
				return traces, nil
			}
		case ctx.Err() == nil:
			lastErr = err
		}
		select {
		case <-ctx.Done():
			what := fmt.Sprintf("%d traces of service %q", atLeast, service)
			if operation != "" {
				what += fmt.Sprintf(" with operation %q", operation)
			}
			if lastErr != nil {
				return last, fmt.Errorf("jaegertest: waiting for %s: got %d: %w (last query: %w)",
					what, len(last), ctx.Err(), lastErr)
			}
			return last, fmt.Errorf("jaegertest: waiting for %s: got %d: %w", what, len(last), ctx.Err())
		case <-ticker.C:
		}
	}
}

// response is the envelope of every query API answer.
type response struct {
	Data   json.RawMessage `json:"data"`
	Errors []struct {
		Code int    `json:"code"`
		Msg  string `json:"msg"`
	} `json:"errors"`
}

// statusError is an answer of the query API with a status other than 200.
type statusError struct {
	url    string
	code   int
	status string
	msg    string
}

// Error returns the request, the status and what Jaeger said.
func (e *statusError) Error() string {
	return fmt.Sprintf("GET %s: %s: %s", e.url, e.status, e.msg)
}

// get fetches path?query and decodes the envelope's data into out. An
// answer with a status other than 200 is a *statusError.
func (c *Client) get(ctx context.Context, path string, query url.Values, out any) error {
	ctx, cancel := context.WithTimeout(ctx, QueryTimeout)
	defer cancel()
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return fmt.Errorf("GET %s: reading the response: %w", u, err)
	}
	var r response
	jsonErr := json.Unmarshal(body, &r)
	var msgs []string
	for _, e := range r.Errors {
		msgs = append(msgs, e.Msg)
	}
	switch {
	case resp.StatusCode != http.StatusOK:
		msg := strings.Join(msgs, "; ")
		if msg == "" {
			msg = snippet(body)
		}
		return &statusError{url: u, code: resp.StatusCode, status: resp.Status, msg: msg}
	case jsonErr != nil:
		return fmt.Errorf("GET %s: decoding %q: %w", u, snippet(body), jsonErr)
	case len(msgs) > 0:
		return fmt.Errorf("GET %s: %s", u, strings.Join(msgs, "; "))
	}
	if err := json.Unmarshal(r.Data, out); err != nil {
		return fmt.Errorf("GET %s: decoding data: %w", u, err)
	}
	return nil
}

// snippet is the start of body, for an error message.
func snippet(body []byte) string {
	const n = 200
	s := strings.TrimSpace(string(body))
	if len(s) > n {
		s = s[:n] + "..."
	}
	return s
}
