package etcdtest

import (
	"net"
	"sync"
)

// front is a TCP relay from a fixed 127.0.0.1 address to the member's
// client port. Clients connect through it so that the test can cut them
// off at once: close drops every connection (as a crashed host does, where
// etcd's own graceful stop would keep serving open streams for seconds),
// and a partition discards every byte both ways on connections that stay
// open (as a dead network does).
type front struct {
	addr, to string

	mu     sync.Mutex
	l      net.Listener // nil while closed
	conns  map[net.Conn]struct{}
	cut    bool
	closed bool
	wg     sync.WaitGroup // the accept loop and the pipes
}

// listen starts relaying on f.addr.
func (f *front) listen() error {
	l, err := net.Listen("tcp", f.addr)
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.l, f.closed, f.conns = l, false, map[net.Conn]struct{}{}
	f.mu.Unlock()
	f.wg.Go(func() { f.accept(l) })
	return nil
}

func (f *front) accept(l net.Listener) {
	for {
		in, err := l.Accept()
		if err != nil {
			return // closed
		}
		out, err := net.Dial("tcp", f.to)
		if err != nil {
			_ = in.Close()
			continue
		}
		f.mu.Lock()
		if f.closed {
			f.mu.Unlock()
			_ = in.Close()
			_ = out.Close()
			continue
		}
		f.conns[in], f.conns[out] = struct{}{}, struct{}{}
		f.mu.Unlock()
		f.wg.Go(func() { f.pipe(out, in) })
		f.wg.Go(func() { f.pipe(in, out) })
	}
}

// pipe copies src to dst (discarding while cut) until either fails.
func (f *front) pipe(dst, src net.Conn) {
	defer func() { _ = dst.Close(); _ = src.Close() }()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if err != nil {
			return
		}
		f.mu.Lock()
		cut := f.cut
		f.mu.Unlock()
		if cut {
			continue
		}
		if _, err := dst.Write(buf[:n]); err != nil {
			return
		}
	}
}

// partition sets whether bytes are discarded.
func (f *front) partition(cut bool) {
	f.mu.Lock()
	f.cut = cut
	f.mu.Unlock()
}

// close stops listening, drops every connection and waits for the pipes.
func (f *front) close() {
	f.mu.Lock()
	if f.l == nil {
		f.mu.Unlock()
		return
	}
	_ = f.l.Close()
	f.l, f.closed = nil, true
	for c := range f.conns {
		_ = c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}
