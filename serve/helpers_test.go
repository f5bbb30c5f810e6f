package serve_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// wait bounds the waits of the tests that use real sockets, which cannot
// run in a synctest bubble: a condition not met by then fails the test.
const wait = 10 * time.Second

// bounded returns a context that ends after wait, or with the test.
func bounded(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	t.Cleanup(cancel)
	return ctx
}

// client returns an HTTP client that keeps no idle connection (so that no
// transport goroutine outlives the test).
func client(t *testing.T) *http.Client {
	t.Helper()
	tr := &http.Transport{DisableKeepAlives: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// response is the outcome of one request.
type response struct {
	status int
	body   string
	err    error
}

// get sends GET url and reads the whole answer.
func get(ctx context.Context, c *http.Client, url string) response {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return response{err: err}
	}
	resp, err := c.Do(req)
	if err != nil {
		return response{err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, body: string(body), err: err}
}

// blocking is a handler that signals each request it gets on entered,
// then answers 200 "done" once release is closed.
type blocking struct {
	entered  chan struct{}
	release  chan struct{}
	once     sync.Once
	finished atomic.Bool // a request has been answered
}

func newBlocking() *blocking {
	return &blocking{entered: make(chan struct{}, 16), release: make(chan struct{})}
}

func (b *blocking) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.entered <- struct{}{}
	<-b.release
	_, _ = io.WriteString(w, "done")
	b.finished.Store(true)
}

// Release lets every request, present and future, through. It may be
// called more than once.
func (b *blocking) Release() { b.once.Do(func() { close(b.release) }) }

// fakeServer is a Server that serves nothing: Serve blocks until Shutdown
// is called or fail is closed, and returns serveErr; Shutdown calls
// shutdown (nil: returns nil at once).
type fakeServer struct {
	serveErr error
	fail     chan struct{} // closed: Serve returns serveErr before any Shutdown
	shutdown func(ctx context.Context) error
	closed   chan struct{} // closed by Shutdown
	once     sync.Once
}

func newFake(serveErr error, shutdown func(context.Context) error) *fakeServer {
	return &fakeServer{serveErr: serveErr, fail: make(chan struct{}), shutdown: shutdown, closed: make(chan struct{})}
}

func (f *fakeServer) Serve(net.Listener) error {
	select {
	case <-f.fail:
	case <-f.closed:
	}
	return f.serveErr
}

func (f *fakeServer) Shutdown(ctx context.Context) error {
	f.once.Do(func() { close(f.closed) })
	if f.shutdown != nil {
		return f.shutdown(ctx)
	}
	return nil
}

// acceptServer is a Server that accepts connections and closes them until
// its listener is closed, and whose Shutdown does nothing: its Serve ends
// only because the unit closes the listener.
type acceptServer struct{}

func (acceptServer) Serve(ln net.Listener) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		_ = c.Close()
	}
}

func (acceptServer) Shutdown(context.Context) error { return nil }

// errorsAs is errors.As returning the target.
func errorsAs[E error](err error) (E, bool) {
	var e E
	ok := errors.As(err, &e)
	return e, ok
}

// memListener is an in-memory net.Listener whose connections are net.Pipe
// pairs: unlike a socket, it works in a synctest bubble.
type memListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newMemListener() *memListener {
	return &memListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *memListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *memListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *memListener) Addr() net.Addr { return memAddr{} }

// DialContext connects to l, as an http.Transport's DialContext.
func (l *memListener) DialContext(ctx context.Context, _, _ string) (net.Conn, error) {
	c, s := net.Pipe()
	select {
	case l.conns <- s:
		return c, nil
	case <-l.done:
		return nil, syscall.ECONNREFUSED
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

type memAddr struct{}

func (memAddr) Network() string { return "mem" }
func (memAddr) String() string  { return "mem" }

// memServer is an *http.Server that serves its memListener instead of the
// listener the unit opened.
type memServer struct {
	*http.Server
	ln *memListener
}

func (m memServer) Serve(net.Listener) error { return m.Server.Serve(m.ln) }
