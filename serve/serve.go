package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"reflect"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreservice/coreservice/core"
)

// Server is what a Unit hosts: anything that serves the connections of a
// listener until it is shut down. *http.Server implements it; so does a
// gRPC server behind the adapter shown in New's documentation.
type Server interface {
	// Serve serves the connections of ln, a listener the unit opened, and
	// blocks until the server stops serving. It is called once, in a
	// goroutine of the service. Before Shutdown is called, any return is
	// the service's failure; after it, a nil error, http.ErrServerClosed
	// or net.ErrClosed is the expected end, and any other error is in the
	// service's Stop result.
	Serve(ln net.Listener) error
	// Shutdown is called once, when the service stops: it stops accepting
	// connections, lets those in progress finish, and returns once they
	// have, or once ctx ends (then with an error), as
	// http.Server.Shutdown does. Its error is in the service's Stop
	// result. The unit closes the listener after Shutdown returns, in case
	// Shutdown did not, and then waits for Serve to return.
	Shutdown(ctx context.Context) error
}

// Unit is a server hosted by a service: the service's Start opens the
// server's listener and makes it serve, the service's Stop drains it. A
// *Unit is a core.Option: give it to core.NewService.
//
// A Unit belongs to one service: giving it to a second one, or twice to the
// same one, is an invalid option, reported by that service's Start. Its
// methods are safe for concurrent use.
type Unit struct {
	ctor string // "serve.HTTP" or "serve.New", for errors and String
	addr string
	srv  Server
	opts []Option
	cfg  config
	err  error // invalid arguments or options, reported by Start

	applied atomic.Bool

	mu    sync.Mutex
	bound net.Addr // set by Launch once the listener is open
}

// HTTP returns a unit that serves srv on srv.Addr (read now, when HTTP is
// called): plain HTTP, through srv.Serve. srv.Addr must be host:port, such
// as "127.0.0.1:8080", ":8080", or "127.0.0.1:0" for any free port (see
// Unit.Addr for the one chosen); an empty Addr, which net/http takes to
// mean ":http", is invalid here, so that no server listens on port 80 by
// accident.
//
// If srv.ErrorLog is nil when the service starts, the unit sets it to a
// logger writing to the service's slog logger at level Error, so that what
// net/http reports (a handler's panic, which net/http recovers, with its
// stack; failed TLS handshakes; accept errors) is logged with
// service=<name>. Otherwise srv is used as given.
//
// A nil srv, an invalid address and invalid options are not reported here
// but by the service's Start, as a *core.StartupError matching
// core.ErrInvalidOption that names the unit and serve.HTTP. For TLS, give
// New a type that embeds *http.Server and whose Serve calls ServeTLS (and
// set its ErrorLog: the unit sets it only on an *http.Server itself).
func HTTP(srv *http.Server, opts ...Option) *Unit {
	if srv == nil {
		return newUnit("serve.HTTP", "", nil, errors.New("nil *http.Server"), opts)
	}
	var err error
	if aerr := checkAddr(srv.Addr); aerr != nil {
		err = fmt.Errorf("http.Server.Addr: %w", aerr)
	}
	return newUnit("serve.HTTP", srv.Addr, srv, err, opts)
}

// New returns a unit that serves srv on addr, a TCP host:port such as
// "127.0.0.1:9090", ":9090", or "127.0.0.1:0" for any free port (see
// Unit.Addr for the one chosen). An *http.Server given to New gets the same
// treatment as with HTTP (its ErrorLog), but addr is used, not its Addr.
//
// A gRPC server fits behind a small adapter, whose Shutdown stops
// gracefully within the drain budget and forcibly after it:
//
//	type grpcServer struct{ *grpc.Server }
//
//	func (s grpcServer) Shutdown(ctx context.Context) error {
//		done := make(chan struct{})
//		go func() { s.GracefulStop(); close(done) }()
//		select {
//		case <-done:
//			return nil
//		case <-ctx.Done():
//			s.Stop() // closes the connections; GracefulStop then returns
//			<-done
//			return ctx.Err()
//		}
//	}
//
//	api := serve.New(":9090", grpcServer{grpc.NewServer()})
//
// A nil srv, an invalid addr and invalid options are not reported here but
// by the service's Start, as a *core.StartupError matching
// core.ErrInvalidOption that names the unit and serve.New.
func New(addr string, srv Server, opts ...Option) *Unit {
	if isNil(srv) {
		return newUnit("serve.New", addr, nil, errors.New("nil Server"), opts)
	}
	var err error
	if aerr := checkAddr(addr); aerr != nil {
		err = aerr
	}
	return newUnit("serve.New", addr, srv, err, opts)
}

func newUnit(ctor, addr string, srv Server, err error, opts []Option) *Unit {
	cfg, oerr := newConfig(opts)
	if err = errors.Join(err, oerr); err != nil {
		err = fmt.Errorf("%s: %w", ctor, err)
	}
	return &Unit{ctor: ctor, addr: addr, srv: srv, opts: slices.Clone(opts), cfg: cfg, err: err}
}

// checkAddr reports an address that cannot be listened on: not host:port,
// or a port that is neither a number from 0 to 65535 nor a service name
// known to the system.
func checkAddr(addr string) error {
	if addr == "" {
		return errors.New("empty address: want host:port, such as 127.0.0.1:8080 (port 0: any free port)")
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err // "address x: missing port in address"
	}
	if port == "" {
		return fmt.Errorf("address %s: empty port (port 0: any free port)", addr)
	}
	if n, err := strconv.ParseUint(port, 10, 64); err == nil {
		if n > 65535 {
			return fmt.Errorf("address %s: port %d out of range (0 to 65535)", addr, n)
		}
		return nil
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		return fmt.Errorf("address %s: %w", addr, err) // "lookup tcp/x: unknown port"
	}
	return nil
}

// Name returns the name of the server's unit in the service's errors and
// logs: "server <name>", where name is the one given with Name, or else
// the address, such as "server 127.0.0.1:8080".
func (u *Unit) Name() string {
	switch {
	case u.cfg.name != "":
		return "server " + u.cfg.name
	case u.addr == "":
		return `server ""`
	}
	return "server " + u.addr
}

// Addr returns the address the server listens on, such as 127.0.0.1:43127
// for an address with port 0. The service's Start sets it when it opens the
// listener, before it returns; it stays set after the stop. Before that,
// and if the listener could not be opened, Addr returns nil.
func (u *Unit) Addr() net.Addr {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.bound
}

// String describes the unit, such as serve.HTTP("127.0.0.1:8080",
// serve.Name("api")) or serve.New(":9090", main.grpcServer).
func (u *Unit) String() string {
	var b strings.Builder
	if u.ctor == "serve.HTTP" {
		fmt.Fprintf(&b, "serve.HTTP(%q", u.addr)
	} else {
		fmt.Fprintf(&b, "serve.New(%q, %T", u.addr, u.srv)
	}
	for _, o := range u.opts {
		b.WriteString(", ")
		if isNil(o) {
			b.WriteString("<nil>")
		} else {
			b.WriteString(o.String())
		}
	}
	b.WriteString(")")
	return b.String()
}

// ApplyTo adds the server to the service's units, so that the service
// opens its listener and serves on Start and drains it on Stop. It
// implements core.Option and is meant to be called by core.NewService only.
func (u *Unit) ApplyTo(c *core.Config) {
	if !u.applied.CompareAndSwap(false, true) {
		c.AddError(fmt.Errorf("%s: %s already given to a service; a server unit belongs to one service", u.Name(), u.ctor))
		return
	}
	c.AddUnit(unit{u})
}

// unit is the core.Unit of a server. It is a core.UnitValidator: the
// service's Start reports the unit's invalid arguments before it starts
// anything.
type unit struct{ u *Unit }

func (x unit) Name() string { return x.u.Name() }

// Validate reports the arguments and options HTTP or New found invalid.
func (x unit) Validate() error { return x.u.err }

// Launch opens the listener, so that a busy port fails the start, and
// serves on it in a goroutine of the service.
func (x unit) Launch(ctx context.Context, h *core.Host) error {
	u := x.u
	if u.err != nil { // Validate said so: not reached
		return fmt.Errorf("%w: %w", core.ErrInvalidOption, u.err)
	}
	if hs, ok := u.srv.(*http.Server); ok && hs.ErrorLog == nil {
		hs.ErrorLog = slog.NewLogLogger(h.Log().Handler(), slog.LevelError)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", u.addr)
	if err != nil {
		return err // "listen tcp 127.0.0.1:8080: bind: address already in use"
	}
	if err := ctx.Err(); err != nil {
		// The start has ended meanwhile: nothing would serve or close ln.
		_ = ln.Close()
		return context.Cause(ctx)
	}
	u.mu.Lock()
	u.bound = ln.Addr()
	u.mu.Unlock()
	h.Log().InfoContext(ctx, "server listening", "unit", u.Name(), "addr", ln.Addr().String())
	// Launch runs while the service starts, when Go always runs its
	// function: serve owns ln from here on.
	h.Go(u.Name(), func(ctx context.Context) error { return u.serve(ctx, h, ln) })
	return nil
}

// serve runs the server on ln until the service stops, then drains it. A
// return of Serve before the stop fails the service at once; the drain
// still runs, when the stop that failure causes begins. serve returns what
// the drain met (Shutdown's error; what Serve returned after Shutdown,
// unless it is the expected end), which the service's Stop returns.
func (u *Unit) serve(ctx context.Context, h *core.Host, ln net.Listener) error {
	served := make(chan error, 1) // Serve's result; its goroutine is waited for below
	go func() { served <- callServe(u.srv, ln) }()
	var early bool // Serve returned before the stop
	select {
	case err := <-served:
		early = true
		h.Fail(u.serveFailure(err))
		<-ctx.Done() // the failure stops the service (or aborts its start)
	case <-ctx.Done():
	}

	timeout := h.StopTimeout()
	budget := drainBudget(timeout)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), budget)
	defer cancel()
	begin := time.Now()
	h.Log().InfoContext(sctx, "server draining", "unit", u.Name(), "budget", budget)
	var errs []error
	if err := callShutdown(sctx, u.srv); err != nil {
		if errors.Is(err, context.DeadlineExceeded) && sctx.Err() != nil {
			err = fmt.Errorf("still serving when the drain budget %v (of StopTimeout %v) ran out: %w", budget, timeout, err)
		}
		errs = append(errs, fmt.Errorf("%s: Shutdown: %w", u.Name(), err))
		if c, ok := u.srv.(interface{ Close() error }); ok {
			_ = c.Close() // *http.Server: close the connections left open
		}
	}
	_ = ln.Close() // for a Server whose Shutdown does not: its Serve returns
	if !early {
		if err := <-served; !closedByShutdown(err) {
			errs = append(errs, fmt.Errorf("%s: Serve after Shutdown: %w", u.Name(), err))
		}
	}
	if len(errs) == 0 {
		h.Log().InfoContext(sctx, "server drained", "unit", u.Name(), "took", time.Since(begin).Round(time.Millisecond))
	}
	return errors.Join(errs...)
}

// serveFailure is the service's failure when Serve returned while the
// service was running.
func (u *Unit) serveFailure(err error) error {
	if err == nil {
		return fmt.Errorf("%s: Serve returned while the service was running", u.Name())
	}
	if errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("%s: Serve returned while the service was running (the server was shut down or closed by someone else): %w", u.Name(), err)
	}
	return fmt.Errorf("%s: Serve: %w", u.Name(), err)
}

// closedByShutdown reports whether err, returned by Serve after Shutdown,
// is the expected end of serving.
func closedByShutdown(err error) bool {
	return err == nil || errors.Is(err, http.ErrServerClosed) || errors.Is(err, net.ErrClosed)
}

// drainBudget is how long Shutdown may drain, counted from the start of
// the stop: 90% of StopTimeout, and at most a second short of it, so that
// Shutdown's own error (and not a *core.StopTimeoutError) tells what was
// left, with time to close it before the stop stops waiting for the unit.
func drainBudget(stopTimeout time.Duration) time.Duration {
	return stopTimeout - min(stopTimeout/10, time.Second)
}

// callServe calls srv.Serve, turning a panic into a *core.PanicError.
func callServe(srv Server, ln net.Listener) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &core.PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	return srv.Serve(ln)
}

// callShutdown calls srv.Shutdown, turning a panic into a *core.PanicError.
func callShutdown(ctx context.Context, srv Server) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &core.PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	return srv.Shutdown(ctx)
}

// isNil reports whether v is nil, or an interface holding a nil pointer,
// map, slice, function or channel.
func isNil(v any) bool {
	if v == nil {
		return true
	}
	switch rv := reflect.ValueOf(v); rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Func, reflect.Chan, reflect.Interface:
		return rv.IsNil()
	}
	return false
}
