package core

import (
	"context"
	"log/slog"

	"go.opentelemetry.io/otel"

	"github.com/coreservice/coreservice/internal/inline"
	"github.com/coreservice/coreservice/internal/telemetry"
)

// Log returns the logger of the service whose code ctx was given to, with
// service=<name> on every record, as Base.Log and Host.Log return it; or
// slog.Default() when ctx is nil or belongs to no service. It is for the
// code a service runs, which is handed no *Base, so that a hook needs no
// variable declared before NewService to reach its service:
//
//	core.OnStart(func(ctx context.Context) error {
//		core.Log(ctx).InfoContext(ctx, "warming the cache")
//		return nil
//	})
//
// The contexts it knows are those the service gives its own code: the
// OnStart and OnStop hooks', the goroutines of its units (Host.Go, so every
// run of a task), and its checks' (health.Check), at Start, on monitor
// ticks and in Healthcheck calls; and any context derived from them. It
// costs one Value lookup and, on a service's first record, building its
// logger. A context of a service carried into another service's code
// that the library calls (a requirement's Start, say) names the service
// that was given it, not the other.
func Log(ctx context.Context) *slog.Logger {
	if b := fromContext(ctx); b != nil {
		return b.logger()
	}
	return slog.Default()
}

// ServiceName returns the name of the service whose code ctx was given to
// (see Log for the contexts it knows), or "" when ctx is nil or belongs to
// no service.
func ServiceName(ctx context.Context) string {
	if b := fromContext(ctx); b != nil {
		return b.name
	}
	return ""
}

// fromContext is the service that marked ctx as its own (unitKey), or nil.
func fromContext(ctx context.Context) *Base {
	if ctx == nil {
		return nil
	}
	b, _ := ctx.Value(unitKey{}).(*Base)
	return b
}

// own returns ctx marked as b's own, so that Log and ServiceName find b and
// Stop does not wait for its caller; ctx itself when it is marked so
// already, which costs nothing more.
func (b *Base) own(ctx context.Context) context.Context {
	if fromContext(ctx) == b {
		return ctx
	}
	return context.WithValue(ctx, unitKey{}, b)
}

// inherit gives b, a New service that parent is about to start as its
// requirement, parent's logger, tracer and meter where b's options set
// none, and its StartTimeout and StopTimeout when b is part of parent
// (a unit of b's is an inline.Part). b.mu is held; parent is Starting, so its own are resolved.
func (b *Base) inherit(parent *Base) {
	if b.logBaseP.Load() == nil {
		if l := parent.logBaseP.Load(); l != nil {
			b.logBaseP.Store(l)
		}
	}
	if b.tracer == nil && parent.tracer != nil {
		b.tracer, b.spans = parent.tracer, parent.spans
	}
	if b.meter == nil && parent.meter != nil {
		b.meter, b.metrics.gate = parent.meter, parent.metrics.gate
	}
	for _, u := range b.cfg.units {
		if p, ok := u.(inline.Part); ok && p.PartOfParent(inline.Token{}) {
			b.cfg.startTimeout, b.cfg.stopTimeout = parent.cfg.startTimeout, parent.cfg.stopTimeout
			break
		}
	}
}

// resolveTelemetry gives b, about to move to Starting, the defaults for
// what it neither set nor inherited: slog.Default() and the OpenTelemetry
// global providers, as they are now. b.mu is held.
func (b *Base) resolveTelemetry() {
	if b.logBaseP.Load() == nil {
		b.logBaseP.Store(slog.Default())
	}
	if b.tracer == nil {
		b.tracer = otel.GetTracerProvider().Tracer(telemetry.ScopeName)
		b.spans = telemetry.NewSpanGate(b.tracer, telemetry.ScopeName)
	}
	if b.meter == nil {
		b.meter = otel.GetMeterProvider().Meter(telemetry.ScopeName)
		b.metrics.gate = telemetry.NewMeterGate(b.meter, telemetry.ScopeName)
	}
}
