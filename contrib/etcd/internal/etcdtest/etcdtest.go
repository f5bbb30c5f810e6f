// Package etcdtest runs a real etcd server in the test process, with
// go.etcd.io/etcd/server/v3/embed, for the tests of package etcd: one
// member on free 127.0.0.1 ports, its data in t.TempDir(), its logs
// discarded. The test stops it (t.Cleanup); it can also be stopped and
// started again on the same ports and data, to make etcd unreachable and
// then back.
package etcdtest

import (
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// ReadyTimeout bounds the wait for a started server to serve, and for a
// closed one to stop.
const ReadyTimeout = 20 * time.Second

// Server is one embedded etcd member.
type Server struct {
	t     testing.TB
	cfg   *embed.Config
	front *front // what clients connect to

	mu sync.Mutex
	e  *embed.Etcd // nil while stopped
}

// Start starts an etcd member and waits until it serves; t.Cleanup stops
// it. It fails t if the member does not serve within ReadyTimeout.
func Start(t testing.TB) *Server {
	t.Helper()
	cfg := embed.NewConfig()
	cfg.Name = "etcdtest"
	cfg.Dir = t.TempDir()
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	cfg.LogLevel = "error"
	client, peer := freeURL(t), freeURL(t)
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{client}, []url.URL{client}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peer}, []url.URL{peer}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	s := &Server{t: t, cfg: cfg, front: &front{addr: freeURL(t).Host, to: client.Host}}
	s.Restart()
	t.Cleanup(s.Stop)
	return s
}

// freeURL returns http://127.0.0.1:<a port free a moment ago>.
func freeURL(t testing.TB) url.URL {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	return url.URL{Scheme: "http", Host: addr}
}

// Endpoints returns the URL clients connect to, for clientv3.Config: a
// relay in front of the member's client port, so that Stop cuts every
// client off at once.
func (s *Server) Endpoints() []string { return []string{"http://" + s.front.addr} }

// Restart starts the member (again, on the same ports and data dir) if it
// is stopped, and waits until it serves, bounded by ReadyTimeout.
func (s *Server) Restart() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.e != nil {
		return
	}
	e, err := embed.StartEtcd(s.cfg)
	if err != nil {
		s.t.Fatalf("start etcd: %v", err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		s.t.Fatalf("start etcd: %v", err)
	case <-time.After(ReadyTimeout):
		e.Close()
		s.t.Fatalf("start etcd: not ready after %v", ReadyTimeout)
	}
	if err := s.front.listen(); err != nil {
		e.Close()
		s.t.Fatalf("start etcd: client relay: %v", err)
	}
	s.e = e
}

// Stop stops the member if it runs, as a crash would for its clients: it
// first drops every client connection, then closes the member and waits
// until it has stopped, bounded by ReadyTimeout. Clients then cannot reach
// it until Restart.
func (s *Server) Stop() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.e == nil {
		return
	}
	e := s.e
	s.e = nil
	s.front.close()
	e.Close()
	select {
	case <-e.Server.StopNotify():
	case <-time.After(ReadyTimeout):
		s.t.Errorf("stop etcd: not stopped after %v", ReadyTimeout)
	}
}

// Client returns a client of the member, closed by t.Cleanup (closing it
// earlier is fine). Its logs are discarded.
func (s *Server) Client(t testing.TB) *clientv3.Client {
	t.Helper()
	return NewClient(t, s.Endpoints())
}

// NewClient returns a client of endpoints, closed by t.Cleanup.
func NewClient(t testing.TB, endpoints []string) *clientv3.Client {
	t.Helper()
	c, err := clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		t.Fatalf("etcd client: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Proxy is a relay in front of the member, for the clients that should be
// cut off from it alone (a network partition).
type Proxy struct{ f *front }

// Proxy starts a relay to the member on a free 127.0.0.1 port; t.Cleanup
// closes it.
func (s *Server) Proxy(t testing.TB) *Proxy {
	t.Helper()
	f := &front{addr: freeURL(t).Host, to: s.cfg.ListenClientUrls[0].Host}
	if err := f.listen(); err != nil {
		t.Fatalf("start proxy: %v", err)
	}
	t.Cleanup(f.close)
	return &Proxy{f: f}
}

// Endpoints returns the proxy's URL, for clientv3.Config.
func (p *Proxy) Endpoints() []string { return []string{"http://" + p.f.addr} }

// Partition discards all traffic through the proxy, both ways, on
// connections that stay open, until Heal.
func (p *Proxy) Partition() { p.f.partition(true) }

// Heal lets traffic through the proxy again.
func (p *Proxy) Heal() { p.f.partition(false) }
