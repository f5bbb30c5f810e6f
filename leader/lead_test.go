package leader_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/internal/coretest"
	"github.com/coreservice/coreservice/leader"
)

// leadUnit is a unit that calls leader.Lead in a goroutine of its service.
type leadUnit struct {
	e    leader.Elector
	term func(ctx context.Context) error
}

func (u leadUnit) Name() string { return "lead" }
func (u leadUnit) Launch(_ context.Context, h *core.Host) error {
	h.Go("lead", func(ctx context.Context) error { return leader.Lead(ctx, h, "lead", u.e, u.term) })
	return nil
}

type unitOption struct{ u core.Unit }

func (o unitOption) ApplyTo(c *core.Config) { c.AddUnit(o.u) }
func (o unitOption) String() string         { return "unit" }

func newService(name string, e leader.Elector, term func(context.Context) error, opts ...core.Option) *core.Base {
	base := []core.Option{core.Name(name), core.Logger(coretest.Quiet()), core.MonitorInterval(time.Hour),
		unitOption{leadUnit{e, term}}}
	return core.NewService(append(base, opts...)...)
}

func advance(d time.Duration) {
	<-time.After(d)
	synctest.Wait()
}

func TestTokenOutsideATerm(t *testing.T) {
	if tok, ok := leader.Token(context.Background()); ok || tok != 0 {
		t.Fatalf("Token: got %d, %v, want 0, false", tok, ok)
	}
}

// The term function runs with its term's token, and its context ends at
// once when the term is lost, with a cause matching ErrLost and the
// reason; Lead then campaigns again and runs the function anew.
func TestLeadRunsTermWithTokenUntilLost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		el := &coretest.Election{}
		errGone := errors.New("keepalive failed")
		var tokens []uint64
		var causes []error
		svc := newService("svc", el.Elector("a"), func(ctx context.Context) error {
			tok, _ := leader.Token(ctx)
			tokens = append(tokens, tok)
			<-ctx.Done()
			causes = append(causes, context.Cause(ctx))
			return ctx.Err()
		})
		coretest.MustStart(t, svc)
		synctest.Wait()
		el.Lose(errGone)
		synctest.Wait()
		// Terms that last: two lost at once in a row would be paced
		// (TestLeadCampaignsAfterRepeatedInstantLossesArePaced).
		advance(leader.CampaignRetryInitial)
		el.Lose(errGone)
		synctest.Wait()
		coretest.MustStop(t, svc)
		if fmt.Sprint(tokens) != "[1 2 3]" {
			t.Fatalf("tokens: got %v, want [1 2 3]", tokens)
		}
		for i, c := range causes[:2] {
			if !errors.Is(c, leader.ErrLost) || !errors.Is(c, errGone) {
				t.Fatalf("cause %d: got %v, want ErrLost and %v", i, c, errGone)
			}
		}
		if errors.Is(causes[2], leader.ErrLost) {
			t.Fatalf("cause at stop: got %v, want the stop's, not ErrLost", causes[2])
		}
		if _, _, ok := el.Leader(); ok {
			t.Fatalf("leader after Stop: got one, want none (resigned)")
		}
	})
}

// A term function that returns nil keeps the leadership until it is lost;
// one that returns an error makes Lead resign and fail the service.
func TestLeadTermEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		el := &coretest.Election{}
		var calls atomic.Int32
		svc := newService("svc", el.Elector("a"), func(context.Context) error { calls.Add(1); return nil })
		coretest.MustStart(t, svc)
		advance(time.Hour)
		if id, tok, _ := el.Leader(); id != "a" || tok != 1 || calls.Load() != 1 {
			t.Fatalf("after a term that returned nil: got leader %q token %d, %d calls; want a, 1, 1 call", id, tok, calls.Load())
		}
		coretest.MustStop(t, svc)

		errBoom := errors.New("boom")
		svc = newService("svc2", el.Elector("b"), func(context.Context) error { return errBoom })
		err := svc.Start(t.Context())
		if err == nil {
			<-svc.Done()
			err = svc.Err()
		}
		if !errors.Is(err, errBoom) {
			t.Fatalf("service whose term failed: got %v, want %v", err, errBoom)
		}
		synctest.Wait()
		if _, _, ok := el.Leader(); ok {
			t.Fatalf("leader after the term failed: got one, want none (resigned)")
		}
	})
}

// Each campaign is a span "campaign <service>", a new root, with the token
// once elected or the error of its failure; the gauge
// coreservice.leader.is_leader is 1 while leading, 0 otherwise.
func TestLeadSpanAndGauge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sr := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
		defer func() { _ = tp.Shutdown(context.Background()) }()
		reader := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
		defer func() { _ = mp.Shutdown(context.Background()) }()
		gauge := func() int64 {
			var rm metricdata.ResourceMetrics
			if err := reader.Collect(context.Background(), &rm); err != nil {
				t.Fatalf("Collect: got %v, want nil", err)
			}
			for _, sm := range rm.ScopeMetrics {
				for _, m := range sm.Metrics {
					if m.Name != "coreservice.leader.is_leader" {
						continue
					}
					dp := m.Data.(metricdata.Sum[int64]).DataPoints
					if len(dp) != 1 {
						t.Fatalf("data points: got %d, want 1", len(dp))
					}
					want := attribute.NewSet(attribute.String("coreservice.service", "svc"), attribute.String("coreservice.unit", "lead"))
					if !dp[0].Attributes.Equals(&want) {
						t.Fatalf("attributes: got %v, want %v", dp[0].Attributes.ToSlice(), want.ToSlice())
					}
					return dp[0].Value
				}
			}
			return -1
		}

		el := &coretest.Election{}
		errDown := errors.New("unreachable")
		el.Fail(errDown)
		svc := newService("svc", el.Elector("a"), func(ctx context.Context) error { <-ctx.Done(); return nil },
			core.TracerProvider(tp), core.MeterProvider(mp))
		coretest.MustStart(t, svc)
		synctest.Wait()
		el.Recover()
		advance(leader.CampaignRetryMax)
		if g := gauge(); g != 1 {
			t.Fatalf("is_leader while leading: got %d, want 1", g)
		}
		el.Fail(errDown) // the next campaign fails: not leading (before the loss, which frees the seat)
		el.Lose(errors.New("gone"))
		advance(time.Millisecond)
		if g := gauge(); g != 0 {
			t.Fatalf("is_leader after the loss: got %d, want 0", g)
		}
		coretest.MustStop(t, svc)

		var failed, won int
		for _, s := range sr.Ended() {
			if !strings.HasPrefix(s.Name(), "campaign") {
				continue // the service's own spans
			}
			if s.Name() != "campaign svc" {
				t.Fatalf("span: got %q, want campaign svc", s.Name())
			}
			if s.Parent().IsValid() {
				t.Fatalf("span parent: got %v, want a new root", s.Parent())
			}
			attrs := map[attribute.Key]attribute.Value{}
			for _, kv := range s.Attributes() {
				attrs[kv.Key] = kv.Value
			}
			if attrs["coreservice.service"].AsString() != "svc" || attrs["coreservice.unit"].AsString() != "lead" {
				t.Fatalf("span attributes: got %v, want service svc and unit lead", s.Attributes())
			}
			switch {
			case s.Status().Code.String() == "Error":
				if !strings.Contains(s.Status().Description, errDown.Error()) {
					t.Fatalf("failed campaign's status: got %q, want the error", s.Status().Description)
				}
				failed++
			case attrs["coreservice.leader.token"].AsInt64() == 1:
				won++
			}
		}
		if failed < 2 || won != 1 {
			t.Fatalf("campaign spans: got %d failed and %d won, want at least 2 failed and 1 won", failed, won)
		}
	})
}

// A nil elector, a typed nil one and one whose Validate fails are reported
// by Lead at once, matching core.ErrInvalidOption and naming the unit and
// the service.
func TestLeadBadInput(t *testing.T) {
	errBad := errors.New("TTL 0s below etcd's minimum")
	for _, e := range []leader.Elector{nil, (*coretest.Elector)(nil), &coretest.Elector{Invalid: errBad}} {
		synctest.Test(t, func(t *testing.T) {
			svc := newService("svc", e, func(context.Context) error { return nil })
			err := svc.Start(t.Context())
			if err == nil {
				<-svc.Done()
				err = svc.Err()
			}
			if !errors.Is(err, core.ErrInvalidOption) {
				t.Fatalf("elector %#v: got %v, want core.ErrInvalidOption", e, err)
			}
			for _, s := range []string{"lead of service svc", "leader.Elector"} {
				if !strings.Contains(err.Error(), s) {
					t.Fatalf("got %q, want it to name %q", err, s)
				}
			}
		})
	}
}

// The loss is recorded when it happens (LeadershipLost, with the reason),
// even while the term's function ignores its context; Lead campaigns again
// only once the function has returned.
func TestLeadRecordsLossAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		el := &coretest.Election{}
		var ev coretest.Events
		release := make(chan struct{})
		var calls atomic.Int32
		svc := newService("svc", el.Elector("a"), func(ctx context.Context) error {
			if calls.Add(1) == 1 {
				<-release // ignores ctx
			}
			<-ctx.Done()
			return nil
		}, core.OnEvent(ev.Hook))
		coretest.MustStart(t, svc)
		synctest.Wait()
		errGone := errors.New("gone")
		el.Lose(errGone)
		synctest.Wait()
		lost := coretest.OfType[core.LeadershipLost](&ev)
		if len(lost) != 1 || !errors.Is(lost[0].Err, errGone) || lost[0].Token != 1 {
			t.Fatalf("LeadershipLost while the term runs on: got %+v, want one, token 1, %v", lost, errGone)
		}
		if _, _, ok := el.Leader(); ok || calls.Load() != 1 {
			t.Fatalf("got a leader or %d calls before the term returned, want none and 1", calls.Load())
		}
		close(release)
		synctest.Wait()
		if _, tok, _ := el.Leader(); tok != 2 || calls.Load() != 2 {
			t.Fatalf("after the term returned: got token %d and %d calls, want 2 and 2", tok, calls.Load())
		}
		coretest.MustStop(t, svc)
	})
}
