package task_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/internal/coretest"
	"github.com/coreservice/coreservice/task"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var errBoom = errors.New("boom")

// afterStart delays a task's first run until Start has returned, in a
// synctest bubble: Start does not wait on the fake clock, so time moves only
// once the test blocks after it. Tests of a failing first run need it: a
// task that fails while the service is still starting fails the Start.
var afterStart = task.Delay(time.Nanosecond)

// newService is a service named "svc" with a quiet logger and a monitor
// that stays out of the way, plus opts.
func newService(opts ...core.Option) *core.Base {
	base := []core.Option{core.Name("svc"), core.Logger(coretest.Quiet()), core.MonitorInterval(time.Hour)}
	return core.NewService(append(base, opts...)...)
}

// waitFailed waits, in a synctest bubble, for svc to fail on its own; it
// gives up after a day of fake time.
func waitFailed(t *testing.T, svc core.Service) {
	t.Helper()
	select {
	case <-svc.Done():
	case <-time.After(24 * time.Hour):
		t.Fatalf("service still %v after a day, want it failed", svc.State())
	}
	if got := svc.State(); got != core.StateFailed {
		t.Fatalf("state: got %v, want failed", got)
	}
}

// advance moves the fake clock of the synctest bubble forward by d, then
// waits until every goroutine of the bubble is blocked again.
func advance(d time.Duration) {
	<-time.After(d)
	synctest.Wait()
}

// stamps records when events happen, as offsets from its creation, on the
// fake clock of a synctest bubble.
type stamps struct {
	t0 time.Time
	mu sync.Mutex
	at []time.Duration
}

func newStamps() *stamps { return &stamps{t0: time.Now()} }

func (s *stamps) add() {
	s.mu.Lock()
	s.at = append(s.at, time.Since(s.t0))
	s.mu.Unlock()
}

func (s *stamps) get() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.at)
}

func wantStamps(t *testing.T, s *stamps, want ...time.Duration) {
	t.Helper()
	if got := s.get(); !slices.Equal(got, want) {
		t.Fatalf("runs started at %v, want %v", got, want)
	}
}

func secs(ns ...int) []time.Duration {
	d := make([]time.Duration, len(ns))
	for i, n := range ns {
		d[i] = time.Duration(n) * time.Second
	}
	return d
}

// sequence is a backoff.BackOff returning its delays in order, then
// backoff.Stop; Reset starts it over. It counts its calls.
type sequence struct {
	mu     sync.Mutex
	delays []time.Duration
	i      int
	nexts  int
	resets int
}

func (s *sequence) NextBackOff() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nexts++
	if s.i >= len(s.delays) {
		return -1 // backoff.Stop
	}
	d := s.delays[s.i]
	s.i++
	return d
}

func (s *sequence) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resets++
	s.i = 0
}

func (s *sequence) counts() (nexts, resets int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nexts, s.resets
}

// capture is a slog.Handler keeping every record with the span context of
// the context it was logged with.
type capture struct {
	mu      sync.Mutex
	records []captured
}

type captured struct {
	level slog.Level
	msg   string
	attrs map[string]string
	span  trace.SpanContext
}

func (c *capture) Enabled(context.Context, slog.Level) bool { return true }

func (c *capture) Handle(ctx context.Context, r slog.Record) error {
	rec := captured{level: r.Level, msg: r.Message, attrs: map[string]string{},
		span: trace.SpanContextFromContext(ctx)}
	r.Attrs(func(a slog.Attr) bool {
		rec.attrs[a.Key] = a.Value.String()
		return true
	})
	c.mu.Lock()
	c.records = append(c.records, rec)
	c.mu.Unlock()
	return nil
}

func (c *capture) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &captureChild{c: c, attrs: attrs}
}

func (c *capture) WithGroup(string) slog.Handler { return c }

func (c *capture) get() []captured {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.records)
}

// find returns the first record whose message is msg.
func (c *capture) find(msg string) (captured, bool) {
	for _, r := range c.get() {
		if r.msg == msg {
			return r, true
		}
	}
	return captured{}, false
}

// captureChild is a capture with attributes added by Logger.With.
type captureChild struct {
	c     *capture
	attrs []slog.Attr
}

func (h *captureChild) Enabled(context.Context, slog.Level) bool { return true }
func (h *captureChild) Handle(ctx context.Context, r slog.Record) error {
	r = r.Clone()
	r.AddAttrs(h.attrs...)
	return h.c.Handle(ctx, r)
}
func (h *captureChild) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &captureChild{c: h.c, attrs: append(slices.Clone(h.attrs), attrs...)}
}
func (h *captureChild) WithGroup(string) slog.Handler { return h }

// panickyPolicy is a backoff.BackOff with a bug.
type panickyPolicy struct{}

func (panickyPolicy) NextBackOff() time.Duration { panic("policy bug") }
func (panickyPolicy) Reset()                     {}

// blockingHandler is a slog.Handler that blocks every record whose message
// is msg until release is closed: a slow log sink.
type blockingHandler struct {
	msg     string
	release chan struct{}
}

func (h *blockingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *blockingHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		<-h.release
	}
	return nil
}
func (h *blockingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *blockingHandler) WithGroup(string) slog.Handler      { return h }

// runChild runs the test named name of this binary in a child process with
// TASK_TEST_CHILD=mode, and returns its output.
func runChild(t *testing.T, name, mode string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^"+name+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "TASK_TEST_CHILD="+mode)
	out, err := cmd.CombinedOutput()
	return string(out), err
}
