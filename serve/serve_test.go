package serve_test

import (
	"context"
	"errors"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/internal/coretest"
	"github.com/coreservice/coreservice/serve"
)

func hello(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "hello") }

func TestServiceServesOnceStartReturns(t *testing.T) {
	api := serve.HTTP(&http.Server{Addr: "127.0.0.1:0", Handler: http.HandlerFunc(hello)})
	if got := api.Addr(); got != nil {
		t.Fatalf("Addr before Start: got %v, want nil", got)
	}
	logs := coretest.NewLogs()
	svc := core.NewService(core.Name("api"), core.Logger(logs.Logger()), api)
	coretest.MustStart(t, svc)

	addr, ok := api.Addr().(*net.TCPAddr)
	if !ok || addr.Port == 0 || !addr.IP.IsLoopback() {
		t.Fatalf("Addr after Start: got %v, want 127.0.0.1 with the port chosen", api.Addr())
	}
	// No wait: the service is Running once it listens.
	if r := get(bounded(t), client(t), "http://"+addr.String()+"/"); r.err != nil || r.status != http.StatusOK || r.body != "hello" {
		t.Fatalf("GET right after Start: got %d %q (%v), want 200 \"hello\"", r.status, r.body, r.err)
	}
	coretest.MustStop(t, svc)
	if got := api.Addr(); got == nil || got.String() != addr.String() {
		t.Fatalf("Addr after Stop: got %v, want %v", got, addr)
	}
	for _, want := range []struct{ msg, key, value string }{
		{"server listening", "addr", addr.String()},
		{"server draining", "budget", "14s"},
		{"server drained", "unit", "server 127.0.0.1:0"},
	} {
		recs := logs.Find(want.msg)
		if len(recs) != 1 || recs[0].Attrs[want.key] != want.value || recs[0].Attrs["service"] != "api" {
			t.Fatalf("log %q: got %v, want one with service=api %s=%s", want.msg, recs, want.key, want.value)
		}
	}
}

func TestInFlightRequestCompletesAcrossStop(t *testing.T) {
	ctx := bounded(t)
	h := newBlocking()
	defer h.Release()
	shuttingDown := make(chan struct{})
	srv := &http.Server{Addr: "127.0.0.1:0", Handler: h}
	srv.RegisterOnShutdown(func() { close(shuttingDown) })
	var doneAtOnStop atomic.Bool // whether the handler had returned when OnStop ran
	api := serve.HTTP(srv)
	svc := core.NewService(core.Name("api"), core.Logger(coretest.Quiet()), api,
		core.OnStop(func(context.Context) error { doneAtOnStop.Store(h.finished.Load()); return nil }))
	coretest.MustStart(t, svc)

	got := make(chan response, 1)
	go func() { got <- get(ctx, client(t), "http://"+api.Addr().String()+"/slow") }()
	select {
	case <-h.entered:
	case <-ctx.Done():
		t.Fatal("the request never reached the handler")
	}
	stopped := make(chan error, 1)
	go func() { stopped <- svc.Stop(ctx) }()
	select {
	case <-shuttingDown: // the drain has begun, the request is in flight
	case <-ctx.Done():
		t.Fatal("Stop never shut the server down")
	}
	select {
	case err := <-stopped:
		t.Fatalf("Stop returned before the request in flight ended: %v", err)
	default:
	}
	h.Release()

	if r := <-got; r.err != nil || r.status != http.StatusOK || r.body != "done" {
		t.Fatalf("request in flight across Stop: got %d %q (%v), want 200 \"done\"", r.status, r.body, r.err)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("Stop: got %v, want nil", err)
	}
	if !doneAtOnStop.Load() {
		t.Fatal("OnStop ran before the request in flight ended: got a stop that did not drain, want the drain first")
	}
	if s := svc.State(); s != core.StateTerminated {
		t.Fatalf("state: got %v, want %v", s, core.StateTerminated)
	}
}

// The stop waits for a request in flight however long it takes within the
// drain budget, and the server accepts no connection meanwhile. The
// *http.Server serves an in-memory listener, so that the test runs in fake
// time.
func TestStopWaitsForTheRequestInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ln := newMemListener()
		h := newBlocking()
		svc := core.NewService(core.Name("api"), core.Logger(coretest.Quiet()), core.StopTimeout(time.Minute),
			serve.New("127.0.0.1:0", memServer{&http.Server{Handler: h}, ln}))
		coretest.MustStart(t, svc)
		tr := &http.Transport{DialContext: ln.DialContext, DisableKeepAlives: true}
		defer tr.CloseIdleConnections()
		c := &http.Client{Transport: tr}
		got := make(chan response, 1)
		go func() { got <- get(context.Background(), c, "http://mem/slow") }()
		<-h.entered

		stopped := make(chan error, 1)
		go func() { stopped <- svc.Stop(context.Background()) }()
		coretest.Advance(50 * time.Second) // fake time, within the drain budget of 54s
		synctest.Wait()
		select {
		case err := <-stopped:
			t.Fatalf("Stop returned while a request was in flight: got %v, want Stop waiting for it", err)
		default:
		}
		if s := svc.State(); s != core.StateStopping {
			t.Fatalf("state while draining: got %v, want %v", s, core.StateStopping)
		}
		if r := get(context.Background(), c, "http://mem/new"); r.err == nil {
			t.Fatalf("new request while draining: got %d %q, want it refused", r.status, r.body)
		}
		h.Release()
		if r := <-got; r.err != nil || r.status != http.StatusOK || r.body != "done" {
			t.Fatalf("request in flight across Stop: got %d %q (%v), want 200 \"done\"", r.status, r.body, r.err)
		}
		if err := <-stopped; err != nil {
			t.Fatalf("Stop: got %v, want nil", err)
		}
	})
}

func TestShutdownPastTheBudgetIsInStopsResult(t *testing.T) {
	ctx := bounded(t)
	h := newBlocking()
	defer h.Release()
	api := serve.HTTP(&http.Server{Addr: "127.0.0.1:0", Handler: h})
	svc := core.NewService(core.Name("api"), core.Logger(coretest.Quiet()), core.StopTimeout(300*time.Millisecond), api)
	coretest.MustStart(t, svc)
	got := make(chan response, 1)
	go func() { got <- get(ctx, client(t), "http://"+api.Addr().String()+"/stuck") }()
	select {
	case <-h.entered:
	case <-ctx.Done():
		t.Fatal("the request never reached the handler")
	}

	err := svc.Stop(ctx) // the handler is released only after Stop
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Stop with a request stuck in flight: got %v, want Shutdown's context.DeadlineExceeded", err)
	}
	want := "stop api: server 127.0.0.1:0: Shutdown: still serving when the drain budget 270ms (of StopTimeout 300ms) ran out"
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("Stop: got %q, want it to contain %q", err, want)
	}
	if errors.Is(err, core.ErrStopTimeout) {
		t.Fatalf("Stop: got %v, want Shutdown's error within the StopTimeout, not a StopTimeoutError", err)
	}
	if svc.Err() != nil {
		t.Fatalf("Err: got %v, want nil (the stop was requested)", svc.Err())
	}
	// The server was closed at the budget: the client's connection is cut.
	if r := <-got; r.err == nil {
		t.Fatalf("request cut by the end of the budget: got %d %q, want an error", r.status, r.body)
	}
}

func TestBusyPortFailsStartNamingTheAddress(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	addr := busy.Addr().String()
	api := serve.HTTP(&http.Server{Addr: addr, Handler: http.HandlerFunc(hello)})
	rec := &coretest.Recorder{}
	svc := core.NewService(core.Name("api"), core.Logger(coretest.Quiet()), api, core.OnStop(rec.Hook("OnStop", nil)))

	err = svc.Start(t.Context())
	se, ok := errorsAs[*core.StartupError](err)
	if !ok || se.Service != "api" || se.Part != "server "+addr {
		t.Fatalf("Start on a busy port: got %v, want a *core.StartupError of api naming part %q", err, "server "+addr)
	}
	if !errors.Is(err, syscall.EADDRINUSE) || !strings.Contains(err.Error(), "listen tcp "+addr) {
		t.Fatalf("Start on a busy port: got %q, want listen tcp %s: ... address already in use", err, addr)
	}
	if s := svc.State(); s != core.StateFailed {
		t.Fatalf("state: got %v, want %v", s, core.StateFailed)
	}
	if a := api.Addr(); a != nil {
		t.Fatalf("Addr after a failed listen: got %v, want nil", a)
	}
	coretest.WantEvents(t, rec.Events(), []string{"OnStop"}) // the start was rolled back
}

func TestHandlerPanicLeavesTheServiceRunning(t *testing.T) {
	ctx := bounded(t)
	mux := http.NewServeMux()
	mux.HandleFunc("/panic", func(http.ResponseWriter, *http.Request) { panic("handler boom") })
	mux.HandleFunc("/hello", hello)
	logs := coretest.NewLogs()
	api := serve.HTTP(&http.Server{Addr: "127.0.0.1:0", Handler: mux})
	svc := core.NewService(core.Name("api"), core.Logger(logs.Logger()), core.MonitorInterval(time.Hour), api)
	coretest.MustStart(t, svc)
	c := client(t)
	base := "http://" + api.Addr().String()

	if r := get(ctx, c, base+"/panic"); r.err == nil {
		t.Fatalf("GET /panic: got %d %q, want the connection aborted", r.status, r.body)
	}
	if s := svc.State(); s != core.StateRunning {
		t.Fatalf("state after a handler panic: got %v, want %v", s, core.StateRunning)
	}
	if r := get(ctx, c, base+"/hello"); r.err != nil || r.status != http.StatusOK || r.body != "hello" {
		t.Fatalf("GET /hello after a handler panic: got %d %q (%v), want 200 \"hello\"", r.status, r.body, r.err)
	}
	// net/http logs the panic before it closes the connection.
	var logged bool
	for _, r := range logs.Records() {
		if strings.Contains(r.Message, "panic serving") && strings.Contains(r.Message, "handler boom") {
			logged = true
			if r.Level != slog.LevelError || r.Attrs["service"] != "api" {
				t.Fatalf("panic record: got level %v service=%q, want ERROR service=api", r.Level, r.Attrs["service"])
			}
		}
	}
	if !logged {
		t.Fatalf("logs: got %v, want the handler's panic logged through the service's logger", logs.Records())
	}
	coretest.MustStop(t, svc)
}

func TestErrorLogSetByTheUserIsKept(t *testing.T) {
	var buf strings.Builder
	own := log.New(&buf, "", 0)
	srv := &http.Server{Addr: "127.0.0.1:0", Handler: http.HandlerFunc(hello), ErrorLog: own}
	svc := core.NewService(core.Name("api"), core.Logger(coretest.Quiet()), serve.HTTP(srv))
	coretest.MustStart(t, svc)
	coretest.MustStop(t, svc)
	if srv.ErrorLog != own {
		t.Fatalf("ErrorLog: got %p, want the user's %p", srv.ErrorLog, own)
	}
}

func TestServeFailureFailsTheService(t *testing.T) {
	errBoom := errors.New("accept: boom")
	fake := newFake(errBoom, nil)
	svc := core.NewService(core.Name("api"), core.Logger(coretest.Quiet()), core.MonitorInterval(time.Hour),
		serve.New("127.0.0.1:0", fake, serve.Name("fake")))
	coretest.MustStart(t, svc)
	close(fake.fail)

	select {
	case <-svc.Done():
	case <-bounded(t).Done():
		t.Fatal("the service did not stop after Serve failed")
	}
	err := svc.Err()
	if !errors.Is(err, errBoom) || err.Error() != "server fake: Serve: accept: boom" {
		t.Fatalf("Err after Serve failed: got %v, want %q", err, "server fake: Serve: accept: boom")
	}
	if s := svc.State(); s != core.StateFailed {
		t.Fatalf("state: got %v, want %v", s, core.StateFailed)
	}
	select {
	case <-fake.closed:
	default:
		t.Fatal("the server was not shut down after Serve failed: got no Shutdown, want the drain")
	}
}

func TestServeFailingAtOnceFailsTheStart(t *testing.T) {
	errBoom := errors.New("boom")
	fake := newFake(errBoom, nil)
	close(fake.fail)
	svc := core.NewService(core.Name("api"), core.Logger(coretest.Quiet()), serve.New("127.0.0.1:0", fake))
	// The start may or may not see the failure before it ends: Start fails,
	// or the service fails right after.
	if err := svc.Start(t.Context()); err != nil {
		if !errors.Is(err, core.ErrStartup) || !errors.Is(err, errBoom) {
			t.Fatalf("Start: got %v, want a startup error wrapping %v", err, errBoom)
		}
	}
	select {
	case <-svc.Done():
	case <-bounded(t).Done():
		t.Fatal("the service did not stop after Serve failed")
	}
	if err := svc.Err(); !errors.Is(err, errBoom) {
		t.Fatalf("Err: got %v, want %v", err, errBoom)
	}
}

func TestServerClosedBySomeoneElseFailsTheService(t *testing.T) {
	srv := &http.Server{Addr: "127.0.0.1:0", Handler: http.HandlerFunc(hello)}
	svc := core.NewService(core.Name("api"), core.Logger(coretest.Quiet()), core.MonitorInterval(time.Hour), serve.HTTP(srv))
	coretest.MustStart(t, svc)
	_ = srv.Close()
	select {
	case <-svc.Done():
	case <-bounded(t).Done():
		t.Fatal("the service kept running after its server was closed")
	}
	if err := svc.Err(); !errors.Is(err, http.ErrServerClosed) || !strings.Contains(err.Error(), "Serve returned while the service was running") {
		t.Fatalf("Err: got %v, want Serve's http.ErrServerClosed, named", err)
	}
}

func TestServeEndsCleanlyAfterShutdown(t *testing.T) {
	cases := []struct {
		name string
		srv  serve.Server
	}{
		{"nil, as gRPC's", newFake(nil, nil)},
		{"http.ErrServerClosed", newFake(http.ErrServerClosed, nil)},
		{"net.ErrClosed from a listener the unit closed", acceptServer{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			svc := core.NewService(core.Name("s"), core.Logger(coretest.Quiet()), serve.New("127.0.0.1:0", tc.srv))
			coretest.MustStart(t, svc)
			coretest.MustStop(t, svc)
			if s := svc.State(); s != core.StateTerminated {
				t.Fatalf("state: got %v, want %v", s, core.StateTerminated)
			}
		})
	}
}

func TestServeErrorAfterShutdownIsInStopsResult(t *testing.T) {
	errLate := errors.New("late")
	svc := core.NewService(core.Name("s"), core.Logger(coretest.Quiet()),
		serve.New("127.0.0.1:0", newFake(errLate, nil), serve.Name("x")))
	coretest.MustStart(t, svc)
	err := svc.Stop(t.Context())
	if !errors.Is(err, errLate) || !strings.Contains(err.Error(), "server x: Serve after Shutdown: late") {
		t.Fatalf("Stop: got %v, want it to hold %q", err, "server x: Serve after Shutdown: late")
	}
}

func TestShutdownErrorIsInStopsResult(t *testing.T) {
	errShut := errors.New("flush failed")
	svc := core.NewService(core.Name("s"), core.Logger(coretest.Quiet()),
		serve.New("127.0.0.1:0", newFake(nil, func(context.Context) error { return errShut }), serve.Name("x")))
	coretest.MustStart(t, svc)
	err := svc.Stop(t.Context())
	if !errors.Is(err, errShut) || err.Error() != "stop s: server x: Shutdown: flush failed" {
		t.Fatalf("Stop: got %v, want %q", err, "stop s: server x: Shutdown: flush failed")
	}
	if svc.Err() != nil {
		t.Fatalf("Err: got %v, want nil", svc.Err())
	}
}

// The drain's budget is counted from the beginning of the stop: 90% of
// StopTimeout, at most a second short of it. The fake server touches no
// socket, so the test runs in fake time.
func TestDrainBudgetIsBoundedByStopTimeout(t *testing.T) {
	cases := []struct {
		stopTimeout, budget time.Duration
	}{
		{2 * time.Second, 1800 * time.Millisecond},
		{core.DefaultStopTimeout, 14 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.stopTimeout.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var budget time.Duration
				fake := newFake(nil, func(ctx context.Context) error {
					deadline, _ := ctx.Deadline()
					budget = time.Until(deadline)
					<-ctx.Done() // requests that never end
					return ctx.Err()
				})
				svc := core.NewService(core.Name("s"), core.Logger(coretest.Quiet()), core.StopTimeout(tc.stopTimeout),
					serve.New("127.0.0.1:0", fake))
				coretest.MustStart(t, svc)
				took, err := coretest.Bounded(t, "Stop", func() error { return svc.Stop(context.Background()) })
				if budget != tc.budget {
					t.Fatalf("Shutdown's budget: got %v, want %v", budget, tc.budget)
				}
				if took != tc.budget {
					t.Fatalf("Stop took %v, want %v (the drain budget)", took, tc.budget)
				}
				if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, core.ErrStopTimeout) {
					t.Fatalf("Stop: got %v, want Shutdown's deadline error and no StopTimeoutError", err)
				}
			})
		})
	}
}

func TestInvalidInputFailsStartNamingServiceAndOption(t *testing.T) {
	shared := serve.New("127.0.0.1:0", acceptServer{}, serve.Name("shared"))
	_ = core.NewService(shared) // given to a first service
	cases := []struct {
		name string
		opts []core.Option
		want string
	}{
		{"nil http.Server", []core.Option{serve.HTTP(nil)},
			`server "": serve.HTTP: nil *http.Server`},
		{"empty Addr", []core.Option{serve.HTTP(&http.Server{})},
			`server "": serve.HTTP: http.Server.Addr: empty address`},
		{"no port", []core.Option{serve.HTTP(&http.Server{Addr: "localhost"})},
			"server localhost: serve.HTTP: http.Server.Addr: address localhost: missing port in address"},
		{"empty port", []core.Option{serve.HTTP(&http.Server{Addr: "127.0.0.1:"})},
			"server 127.0.0.1:: serve.HTTP: http.Server.Addr: address 127.0.0.1:: empty port"},
		{"port out of range", []core.Option{serve.New("127.0.0.1:70000", acceptServer{})},
			"server 127.0.0.1:70000: serve.New: address 127.0.0.1:70000: port 70000 out of range (0 to 65535)"},
		{"unknown port name", []core.Option{serve.New("127.0.0.1:no-such-port", acceptServer{})},
			"server 127.0.0.1:no-such-port: serve.New: address 127.0.0.1:no-such-port: lookup tcp/no-such-port"},
		{"nil Server", []core.Option{serve.New("127.0.0.1:0", nil)},
			"server 127.0.0.1:0: serve.New: nil Server"},
		{"typed nil Server", []core.Option{serve.New("127.0.0.1:0", (*http.Server)(nil))},
			"server 127.0.0.1:0: serve.New: nil Server"},
		{"empty Name", []core.Option{serve.New("127.0.0.1:0", acceptServer{}, serve.Name(""))},
			"server 127.0.0.1:0: serve.New: serve.Name: empty name"},
		{"nil option", []core.Option{serve.New("127.0.0.1:0", acceptServer{}, nil)},
			"server 127.0.0.1:0: serve.New: option 0 is nil"},
		{"two servers on one address", []core.Option{
			serve.New("127.0.0.1:0", acceptServer{}), serve.New("127.0.0.1:0", acceptServer{})},
			`two units named "server 127.0.0.1:0"`},
		{"unit of another service", []core.Option{shared},
			"server shared: serve.New already given to a service"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opts := append([]core.Option{core.Name("api"), core.Logger(coretest.Quiet())}, tc.opts...)
			svc := core.NewService(opts...)
			err := svc.Start(t.Context())
			if !errors.Is(err, core.ErrInvalidOption) || !errors.Is(err, core.ErrStartup) {
				t.Fatalf("Start: got %v, want a startup error matching core.ErrInvalidOption", err)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "start api: options: ") || !strings.Contains(msg, tc.want) {
				t.Fatalf("Start: got %q, want start api: options: ...%s...", msg, tc.want)
			}
		})
	}
}

func TestStringShowsTheConstructorAndOptions(t *testing.T) {
	cases := []struct {
		u    *serve.Unit
		want string
	}{
		{serve.HTTP(&http.Server{Addr: ":8080"}), `serve.HTTP(":8080")`},
		{serve.HTTP(&http.Server{Addr: ":8080"}, serve.Name("api")), `serve.HTTP(":8080", serve.Name("api"))`},
		{serve.New(":9090", acceptServer{}, nil), `serve.New(":9090", serve_test.acceptServer, <nil>)`},
	}
	for _, tc := range cases {
		if got := tc.u.String(); got != tc.want {
			t.Errorf("String: got %s, want %s", got, tc.want)
		}
	}
}

func TestNameDefaultsToTheAddress(t *testing.T) {
	cases := []struct {
		u    *serve.Unit
		want string
	}{
		{serve.HTTP(&http.Server{Addr: "127.0.0.1:8080"}), "server 127.0.0.1:8080"},
		{serve.New(":9090", acceptServer{}, serve.Name("grpc")), "server grpc"},
		{serve.HTTP(nil), `server ""`},
	}
	for _, tc := range cases {
		if got := tc.u.Name(); got != tc.want {
			t.Errorf("Name: got %s, want %s", got, tc.want)
		}
	}
}
