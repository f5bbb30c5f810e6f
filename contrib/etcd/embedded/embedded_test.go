package embedded_test

import (
	"context"
	"errors"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/coreservice/coreservice/contrib/etcd/embedded"
)

// A started server serves a client on its endpoint; after Close it is
// gone, and a second Close returns the first one's result.
func TestStartServesClientsUntilClose(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	srv, err := embedded.Start(ctx, t.TempDir())
	if err != nil {
		t.Fatalf("Start: got %v, want nil", err)
	}
	eps := srv.Endpoints()
	if len(eps) != 1 {
		t.Fatalf("Endpoints: got %q, want one URL", eps)
	}
	c, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	defer c.Close()
	if _, err := c.Put(ctx, "k", "v"); err != nil {
		t.Fatalf("Put: got %v, want nil", err)
	}
	resp, err := c.Get(ctx, "k")
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "v" {
		t.Fatalf("Get: got %v, %v; want k=v", resp, err)
	}
	if err := srv.Close(); err != nil {
		t.Fatalf("Close: got %v, want nil", err)
	}
	if err := srv.Close(); err != nil {
		t.Errorf("second Close: got %v, want nil", err)
	}
	gctx, gcancel := context.WithTimeout(ctx, time.Second)
	defer gcancel()
	if _, err := c.Get(gctx, "k"); err == nil {
		t.Errorf("Get after Close: got nil, want an error")
	}
}

// Start with a ctx that has ended returns its error, wrapped, and leaves
// nothing running (goleak checks).
func TestStartWithEndedCtxReturnsItsError(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	srv, err := embedded.Start(ctx, t.TempDir())
	if err == nil {
		_ = srv.Close()
		t.Fatalf("Start: got nil, want context.Canceled")
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Start: got %v, want context.Canceled", err)
	}
}

// An empty data directory is an error, not a member in the working
// directory.
func TestStartWithEmptyDirFails(t *testing.T) {
	if _, err := embedded.Start(t.Context(), ""); err == nil {
		t.Errorf("Start(\"\"): got nil, want an error")
	}
}
