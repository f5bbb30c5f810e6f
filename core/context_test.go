package core_test

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/internal/coretest"
)

// hostUnit is a core.Option and core.Unit that hands its Host to launch.
type hostUnit struct {
	name   string
	launch func(ctx context.Context, h *core.Host)
}

func (u *hostUnit) ApplyTo(c *core.Config) { c.AddUnit(u) }
func (u *hostUnit) Name() string           { return u.name }
func (u *hostUnit) Launch(ctx context.Context, h *core.Host) error {
	u.launch(ctx, h)
	return nil
}

// seen records the service names core.ServiceName found, by caller.
type seen struct {
	mu    sync.Mutex
	names map[string][]string
}

func (s *seen) add(who string, ctx context.Context) {
	core.Log(ctx).InfoContext(ctx, who)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.names == nil {
		s.names = map[string][]string{}
	}
	s.names[who] = append(s.names[who], core.ServiceName(ctx))
}

func (s *seen) get(who string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.names[who])
}

func TestLogAndServiceNameFromTheContextsOfHooksUnitsAndChecks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		logs := coretest.NewLogs()
		var got seen
		unitRan := make(chan struct{})
		svc := core.NewService(core.Name("svc"), core.Logger(logs.Logger()), core.MonitorInterval(time.Second),
			core.OnStart(func(ctx context.Context) error { got.add("OnStart", ctx); return nil }),
			core.OnStop(func(ctx context.Context) error { got.add("OnStop", ctx); return nil }),
			&unit{name: "u", fn: func(ctx context.Context) error {
				got.add("unit", ctx)
				close(unitRan)
				<-ctx.Done()
				return nil
			}},
			&check{name: "c", fn: func(ctx context.Context) error { got.add("check", ctx); return nil }},
		)
		// Another service whose unit calls svc's Healthcheck with its own
		// context: the checks still belong to svc.
		other := core.NewService(core.Name("other"), core.Logger(coretest.Quiet()),
			&unit{name: "hc", fn: func(ctx context.Context) error {
				if err := svc.Healthcheck(ctx); err != nil {
					t.Errorf("Healthcheck: got %v, want nil", err)
				}
				got.add("other unit", ctx)
				return nil
			}})
		coretest.MustStart(t, svc) // the check's run at Start
		<-unitRan
		if err := svc.Healthcheck(context.Background()); err != nil { // a Healthcheck call
			t.Fatalf("Healthcheck: got %v, want nil", err)
		}
		coretest.MustStart(t, other) // a Healthcheck call with other's context
		synctest.Wait()
		coretest.Advance(time.Second) // a monitor tick
		synctest.Wait()
		coretest.MustStop(t, other)
		coretest.MustStop(t, svc)

		for who, n := range map[string]int{"OnStart": 1, "OnStop": 1, "unit": 1, "check": 4, "other unit": 1} {
			want := "svc"
			if who == "other unit" {
				want = "other"
			}
			names := got.get(who)
			if len(names) < n {
				t.Errorf("%s: got %d calls, want at least %d", who, len(names), n)
			}
			for _, name := range names {
				if name != want {
					t.Errorf("%s: ServiceName got %q, want %q", who, name, want)
				}
			}
		}
		for _, who := range []string{"OnStart", "OnStop", "unit", "check"} {
			recs := logs.Find(who)
			if len(recs) == 0 {
				t.Errorf("no record %q in svc's logger", who)
			}
			for _, r := range recs {
				if r.Attrs["service"] != "svc" {
					t.Errorf("record %q: got service=%q, want svc", who, r.Attrs["service"])
				}
			}
		}
	})
}

func TestLogOutsideAnyServiceIsTheDefault(t *testing.T) {
	if got := core.Log(context.Background()); got != slog.Default() {
		t.Errorf("Log(Background): got %v, want slog.Default()", got)
	}
	var none context.Context // nil: tolerated, as documented
	if got := core.Log(none); got != slog.Default() {
		t.Errorf("Log(nil): got %v, want slog.Default()", got)
	}
	if got := core.ServiceName(context.Background()); got != "" {
		t.Errorf("ServiceName(Background): got %q, want \"\"", got)
	}
}

// serviceRecords are the records of logs that carry service=name.
func serviceRecords(logs *coretest.Logs, name string) []coretest.Record {
	var out []coretest.Record
	for _, r := range logs.Records() {
		if r.Attrs["service"] == name {
			out = append(out, r)
		}
	}
	return out
}

func TestRequirementWithoutLoggerLogsThroughItsParents(t *testing.T) {
	logs := coretest.NewLogs()
	var hostLog *slog.Logger
	child := core.NewService(core.Name("child"),
		core.OnStart(func(ctx context.Context) error { core.Log(ctx).InfoContext(ctx, "child hook"); return nil }),
		&hostUnit{name: "u", launch: func(_ context.Context, h *core.Host) { hostLog = h.Log() }})
	parent := core.NewService(core.Name("parent"), core.Logger(logs.Logger()), requires(child))
	coretest.MustStart(t, parent)
	hostLog.Info("from the host")
	coretest.MustStop(t, parent)

	recs := serviceRecords(logs, "child")
	var msgs []string
	for _, r := range recs {
		msgs = append(msgs, r.Message)
	}
	for _, want := range []string{"child hook", "from the host", "service running"} {
		if !slices.Contains(msgs, want) {
			t.Errorf("parent's logger: no record %q with service=child; got %q", want, msgs)
		}
	}
}

func TestRequirementWithItsOwnLoggerKeepsIt(t *testing.T) {
	parentLogs, childLogs := coretest.NewLogs(), coretest.NewLogs()
	child := core.NewService(core.Name("child"), core.Logger(childLogs.Logger()))
	parent := core.NewService(core.Name("parent"), core.Logger(parentLogs.Logger()), requires(child))
	coretest.MustStart(t, parent)
	coretest.MustStop(t, parent)
	if got := serviceRecords(parentLogs, "child"); len(got) != 0 {
		t.Errorf("parent's logger: got %d records of child, want 0: %v", len(got), got)
	}
	if got := serviceRecords(childLogs, "child"); len(got) == 0 {
		t.Errorf("child's logger: got no record of child, want its own")
	}
}

func TestSharedRequirementTakesItsFirstParentsLogger(t *testing.T) {
	first, second := coretest.NewLogs(), coretest.NewLogs()
	shared := core.NewService(core.Name("shared"))
	p1 := core.NewService(core.Name("p1"), core.Logger(first.Logger()), requires(shared))
	p2 := core.NewService(core.Name("p2"), core.Logger(second.Logger()), requires(shared))
	coretest.MustStart(t, p1)
	coretest.MustStart(t, p2)
	shared.Log().Info("after both")
	coretest.MustStop(t, p1)
	coretest.MustStop(t, p2)
	if got := serviceRecords(second, "shared"); len(got) != 0 {
		t.Errorf("second parent's logger: got %d records of shared, want 0: %v", len(got), got)
	}
	if got := serviceRecords(first, "shared"); !slices.ContainsFunc(got, func(r coretest.Record) bool { return r.Message == "after both" }) {
		t.Errorf("first parent's logger: no record \"after both\" of shared among %v", got)
	}
}

// TestDirectStartTakesTheDefaultLoggerAtStart is not parallel: it sets
// slog's default logger.
func TestDirectStartTakesTheDefaultLoggerAtStart(t *testing.T) {
	logs := coretest.NewLogs()
	svc := core.NewService(core.Name("direct"))
	old := slog.Default()
	defer slog.SetDefault(old)
	slog.SetDefault(logs.Logger()) // after NewService, before Start
	coretest.MustStart(t, svc)
	slog.SetDefault(old)
	svc.Log().Info("after start")
	coretest.MustStop(t, svc)
	var msgs []string
	for _, r := range serviceRecords(logs, "direct") {
		msgs = append(msgs, r.Message)
	}
	for _, want := range []string{"service running", "after start"} {
		if !slices.Contains(msgs, want) {
			t.Errorf("default logger at Start: no record %q with service=direct; got %q", want, msgs)
		}
	}
}

func TestRequirementInheritsItsParentsTracerProvider(t *testing.T) {
	sr, own := tracetest.NewSpanRecorder(), tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	ownTP := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(own))
	defer func() { _ = tp.Shutdown(context.Background()); _ = ownTP.Shutdown(context.Background()) }()
	child := core.NewService(core.Name("child"), core.Logger(coretest.Quiet()),
		&hostUnit{name: "u", launch: func(ctx context.Context, h *core.Host) {
			_, span := h.Tracer().Start(ctx, "child work")
			span.End()
		}})
	keeper := core.NewService(core.Name("keeper"), core.Logger(coretest.Quiet()), core.TracerProvider(ownTP))
	parent := core.NewService(core.Name("parent"), core.Logger(coretest.Quiet()), core.TracerProvider(tp),
		requires(child), requires(keeper))
	coretest.MustStart(t, parent)
	coretest.MustStop(t, parent)
	spans := spansByName(sr.Ended())
	for _, name := range []string{"start parent", "start child", "child work", "stop child"} {
		if _, ok := spans[name]; !ok {
			t.Errorf("parent's provider: no span %q among %d", name, len(spans))
		}
	}
	for _, name := range []string{"start keeper", "stop keeper"} {
		if _, ok := spans[name]; ok {
			t.Errorf("parent's provider: got span %q of a service with its own provider", name)
		}
		if _, ok := spansByName(own.Ended())[name]; !ok {
			t.Errorf("keeper's own provider: no span %q", name)
		}
	}
}

func TestRequirementInheritsItsParentsMeterProvider(t *testing.T) {
	reader, ownReader := sdkmetric.NewManualReader(), sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	ownMP := sdkmetric.NewMeterProvider(sdkmetric.WithReader(ownReader))
	defer func() { _ = mp.Shutdown(context.Background()); _ = ownMP.Shutdown(context.Background()) }()
	child := core.NewService(core.Name("child"), core.Logger(coretest.Quiet()),
		&hostUnit{name: "u", launch: func(ctx context.Context, h *core.Host) {
			c, err := h.Meter().Int64Counter("child.work")
			if err != nil {
				t.Errorf("Int64Counter: got %v, want nil", err)
				return
			}
			c.Add(ctx, 1)
		}})
	keeper := core.NewService(core.Name("keeper"), core.Logger(coretest.Quiet()), core.MeterProvider(ownMP))
	parent := core.NewService(core.Name("parent"), core.Logger(coretest.Quiet()), core.MeterProvider(mp),
		requires(child), requires(keeper))
	coretest.MustStart(t, parent)
	defer coretest.MustStop(t, parent)
	states := metricPoints[int64](t, reader, "coreservice.service.state")
	if got := states["coreservice.service=child,coreservice.state=running"]; got != int64(1) {
		t.Errorf("parent's provider: child running: got %v, want 1 (all: %v)", got, states)
	}
	if got, ok := states["coreservice.service=keeper,coreservice.state=running"]; ok {
		t.Errorf("parent's provider: keeper running: got %v, want no point (it has its own provider)", got)
	}
	if got := metricPoints[int64](t, ownReader, "coreservice.service.state")["coreservice.service=keeper,coreservice.state=running"]; got != int64(1) {
		t.Errorf("keeper's own provider: keeper running: got %v, want 1", got)
	}
	if got := metricPoints[int64](t, reader, "child.work")[""]; got != int64(1) {
		t.Errorf("parent's provider: child.work via Host.Meter: got %v, want 1", got)
	}
}
