// Package embedded runs a single-member etcd server inside the process, with
// go.etcd.io/etcd/server/v3/embed, for examples, demos and tests that need a
// real etcd but no etcd binary: its client and peer ports are free
// 127.0.0.1 ports chosen at Start, its data lives in the directory the
// caller gives, and it logs nothing.
//
//	srv, err := embedded.Start(ctx, dir)
//	if err != nil { ... }
//	defer srv.Close()
//	client, err := clientv3.New(clientv3.Config{Endpoints: srv.Endpoints()})
//
// It is not meant for production: one member, no TLS, no authentication.
package embedded

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// ReadyTimeout bounds Start's wait for the server to serve, whatever the
// caller's ctx, and Close's wait for it to stop: 20 s.
const ReadyTimeout = 20 * time.Second

// Server is a running embedded etcd member, made by Start. Its methods are
// safe for concurrent use.
type Server struct {
	e         *embed.Etcd
	endpoints []string

	closeOnce sync.Once
	closeErr  error
}

// Start starts an etcd member whose data directory is dir (created if
// missing; an existing member's data is reused), listening for clients and
// peers on free 127.0.0.1 ports, and waits until it serves. The wait is
// bounded by ctx and by ReadyTimeout: if either ends first, or the member
// fails to start, Start stops what it started and returns an error naming
// the cause (ctx's error wrapped when ctx ended). The ports are found free
// just before the member binds them, so another process may take one in
// between; Start then fails, and a retry picks other ports.
func Start(ctx context.Context, dir string) (*Server, error) {
	if dir == "" {
		return nil, errors.New("embedded etcd: empty data directory")
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("embedded etcd: %w", err)
	}
	client, err := freeURL()
	if err != nil {
		return nil, fmt.Errorf("embedded etcd: client port: %w", err)
	}
	peer, err := freeURL()
	if err != nil {
		return nil, fmt.Errorf("embedded etcd: peer port: %w", err)
	}
	cfg := embed.NewConfig()
	cfg.Name = "embedded"
	cfg.Dir = dir
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	cfg.LogLevel = "error"
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{client}, []url.URL{client}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peer}, []url.URL{peer}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)

	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("embedded etcd: start: %w", err)
	}
	timer := time.NewTimer(ReadyTimeout)
	defer timer.Stop()
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("embedded etcd: start: %w", err)
	case <-ctx.Done():
		e.Close()
		return nil, fmt.Errorf("embedded etcd: waiting until it serves: %w", ctx.Err())
	case <-timer.C:
		e.Close()
		return nil, fmt.Errorf("embedded etcd: not serving after %v", ReadyTimeout)
	}
	return &Server{e: e, endpoints: []string{client.String()}}, nil
}

// freeURL returns http://127.0.0.1:<a port free a moment ago>.
func freeURL() (url.URL, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return url.URL{}, err
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		return url.URL{}, err
	}
	return url.URL{Scheme: "http", Host: addr}, nil
}

// Endpoints returns the member's client URL, such as
// "http://127.0.0.1:43127", for clientv3.Config's Endpoints. It stays the
// same after Close (and then refuses connections).
func (s *Server) Endpoints() []string { return append([]string(nil), s.endpoints...) }

// Close stops the member and waits until it has stopped, bounded by
// ReadyTimeout; it returns an error if the member did not stop in time.
// Clients of the member then fail to reach it. Repeated and concurrent
// calls wait for the first one and return its result.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		done := make(chan struct{})
		go func() {
			defer close(done)
			s.e.Close()
		}()
		timer := time.NewTimer(ReadyTimeout)
		defer timer.Stop()
		select {
		case <-done:
		case <-timer.C:
			s.closeErr = fmt.Errorf("embedded etcd: not stopped after %v", ReadyTimeout)
			return
		}
		select {
		case <-s.e.Server.StopNotify():
		case <-timer.C:
			s.closeErr = fmt.Errorf("embedded etcd: not stopped after %v", ReadyTimeout)
		}
	})
	return s.closeErr
}
