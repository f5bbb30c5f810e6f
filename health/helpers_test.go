package health_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/internal/coretest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// toggle is a check function whose result the test sets.
type toggle struct {
	mu  sync.Mutex
	err error
}

func (tg *toggle) set(err error) {
	tg.mu.Lock()
	tg.err = err
	tg.mu.Unlock()
}

func (tg *toggle) fn(context.Context) error {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	return tg.err
}

// req is a core.Option and core.Requirement for a fixed service, owned by
// its parent: a stand-in for package deps.
type req struct {
	name string
	svc  core.Service
}

func requires(name string, svc core.Service) *req { return &req{name: name, svc: svc} }

func (r *req) ApplyTo(c *core.Config)                        { c.AddRequirement(r) }
func (r *req) Name() string                                  { return r.name }
func (r *req) Owned() bool                                   { return true }
func (r *req) After() []core.Requirement                     { return nil }
func (r *req) Resolve(context.Context) (core.Service, error) { return r.svc, nil }

// service builds a quiet service whose monitor never ticks within a test
// (results stay as the test records them, and never stale), so the test
// drives the checks with Healthcheck.
func service(name string, opts ...core.Option) *core.Base {
	return core.NewService(append([]core.Option{core.Name(name), core.Logger(coretest.Quiet()),
		core.MonitorInterval(time.Hour)}, opts...)...)
}

// healthcheck runs svc's checks once, recording their results, and
// expects the error to match want (nil: no error).
func healthcheck(t *testing.T, svc core.Service, want error) {
	t.Helper()
	err := svc.Healthcheck(t.Context())
	if (want == nil) != (err == nil) || (want != nil && !errors.Is(err, want)) {
		t.Fatalf("Healthcheck %s: got %v, want %v", svc.Name(), err, want)
	}
}

// get sends a GET for target to h, with an Accept header when accept is not
// empty.
func get(h http.Handler, target, accept string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, target, nil)
	if accept != "" {
		r.Header.Set("Accept", accept)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// foreignSlow is a core.Check from outside package health (registered with
// Config.AddCheck, as the package documentation allows) that blocks until
// released once armed.
type foreignSlow struct {
	armed   atomic.Bool
	entered chan struct{}
	release chan struct{}
}

func (f *foreignSlow) ApplyTo(c *core.Config)              { c.AddCheck(f) }
func (f *foreignSlow) Name() string                        { return "slow" }
func (f *foreignSlow) Timeout(time.Duration) time.Duration { return time.Minute }
func (f *foreignSlow) Threshold() int                      { return 1 }
func (f *foreignSlow) Check(context.Context) error {
	if f.armed.Load() {
		close(f.entered)
		<-f.release
	}
	return nil
}
