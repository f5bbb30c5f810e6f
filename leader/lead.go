package leader

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/internal/telemetry"
	"github.com/coreservice/coreservice/internal/values"
)

// ErrLost is the cause of the context of a term's work once leadership was
// lost (context.Cause(ctx) wraps it, with the reason): match it with
// errors.Is.
var ErrLost = errors.New("leadership lost")

// Delays of the retries of a failed campaign: an exponential backoff
// (github.com/cenkalti/backoff/v4, factor 1.5, randomization 0.5) from
// CampaignRetryInitial up to CampaignRetryMax, retrying for as long as the
// caller's context lasts; a campaign that succeeds resets it.
const (
	CampaignRetryInitial = time.Second
	CampaignRetryMax     = 30 * time.Second
)

// CampaignLogInterval bounds the log of failing campaigns: the first
// failure of a streak is logged at once (WARN, with its error), then at most
// one record per interval, saying how many campaigns failed since the last
// one.
const CampaignLogInterval = time.Minute

type tokenKey struct{}

// Token returns the fencing token of the term that the work given ctx runs
// in (Lead's term function, a task.Leader task's runs), and whether there
// is one. Guard writes with it: a store that rejects a token lower than
// the last one it saw cannot take a write from a leader that was replaced.
func Token(ctx context.Context) (uint64, bool) {
	t, ok := ctx.Value(tokenKey{}).(uint64)
	return t, ok
}

// Check reports an invalid elector, as Lead's start and task.Leader's
// Validate do: a nil one (also a typed nil), or one that is a Validator and
// whose Validate returns an error (or panics, as a *core.PanicError). The
// caller reports it as an invalid option: Lead wraps it with
// core.ErrInvalidOption, the unit and the service.
func Check(e Elector) (err error) {
	if values.IsNil(e) {
		return errors.New("nil leader.Elector")
	}
	v, ok := e.(Validator)
	if !ok {
		return nil
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("leader.Elector %T: Validate: %w", e, &core.PanicError{Value: r, Stack: debug.Stack()})
		}
	}()
	if verr := v.Validate(); verr != nil {
		return fmt.Errorf("leader.Elector %T: %w", e, verr)
	}
	return nil
}

// Lead campaigns with e for the service h on behalf of unit ("task
// report"), and runs term while it leads, until ctx ends. It is the loop of
// task.Leader and Service; call it in a goroutine the service owns (h.Go),
// with that goroutine's context.
//
// Each term won raises core.LeadershipWon and sets the gauge
// coreservice.leader.is_leader to 1; then term runs, with a context that
// carries the term's token (Token) and ends at once when the term is lost
// (its cause wraps ErrLost and the reason) or ctx ends. Lead waits for term
// to return before anything else, so that the work of two terms never
// overlaps on this replica; a term that ignores its context holds
// leadership until it returns. Then:
//
//   - lost: Lead campaigns again at once (core.LeadershipLost, with the
//     reason, and the gauge's 0 come at the loss, not once term returned);
//   - ctx ended: Lead resigns at once, bounded by half h.StopTimeout()
//     (the stop waits StopTimeout for the goroutine running Lead), so that
//     another replica is elected without waiting out the store's session,
//     raises core.LeadershipLost with a nil Err, and returns the resign's
//     error (nil once it succeeded);
//   - term returned an error (other than its context's cancellation):
//     Lead resigns as when ctx ends, unless the term was lost, and returns
//     that error: the service fails with it;
//   - term returned nil while it still leads: the work of the term is
//     done; Lead keeps the leadership, so that no other replica takes the
//     work over, until it is lost (then it campaigns again and runs term
//     anew) or ctx ends.
//
// A Campaign that fails is retried after a backoff (CampaignRetryInitial to
// CampaignRetryMax); after a loss Lead campaigns again at once, unless the
// terms keep being lost within CampaignRetryInitial of their election (from
// the second such term in a row, the campaigns are paced by the same
// backoff). A term already lost when Campaign returns runs no work. The
// failures are logged at WARN, "campaign failed;
// standing by", rate-limited by CampaignLogInterval. Each campaign is a span
// "campaign <service>", the root of its own trace, from its start to the
// election (with the token) or its failure.
//
// An invalid e (see Check) is returned at once, naming unit and the
// service, before any campaign. Lead returns nil once ctx ends, unless the
// resign failed.
func Lead(ctx context.Context, h *core.Host, unit string, e Elector, term func(ctx context.Context) error) error {
	if err := Check(e); err != nil {
		return fmt.Errorf("%s of service %s: %w: %w", unit, h.Name(), core.ErrInvalidOption, err)
	}
	if term == nil {
		return fmt.Errorf("%s of service %s: %w: nil term function", unit, h.Name(), core.ErrInvalidOption)
	}
	l := newLoop(h, unit, e)
	return l.run(ctx, term)
}

// loop is the state of one Lead call, used by its goroutine only.
type loop struct {
	h     *core.Host
	unit  string
	e     Elector
	attrs []attribute.KeyValue
	gauge metric.Int64UpDownCounter
	gopts []metric.AddOption

	bo       *backoff.ExponentialBackOff
	timer    *time.Timer
	failing  int       // campaigns failed in the current streak
	short    int       // terms in a row lost within CampaignRetryInitial of their election
	unlogged int       // of those, failures not logged yet
	loggedAt time.Time // when the last failure record was logged
}

func newLoop(h *core.Host, unit string, e Elector) *loop {
	l := &loop{h: h, unit: unit, e: e,
		attrs: []attribute.KeyValue{telemetry.AttrService.String(h.Name()), telemetry.AttrUnit.String(unit)}}
	l.bo = backoff.NewExponentialBackOff(backoff.WithInitialInterval(CampaignRetryInitial),
		backoff.WithMaxInterval(CampaignRetryMax), backoff.WithMaxElapsedTime(0))
	g, err := h.Meter().Int64UpDownCounter(telemetry.MetricLeaderIsLeader, metric.WithUnit("{leader}"),
		metric.WithDescription("1 while the unit leads its election, else 0"))
	if err != nil {
		h.Log().Warn("cannot make a metric instrument", "unit", unit, "error", err)
	}
	if g == nil {
		g = noop.Int64UpDownCounter{}
	}
	l.gauge = g
	l.gopts = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(l.attrs...))}
	return l
}

func (l *loop) run(ctx context.Context, term func(context.Context) error) error {
	defer func() {
		if l.timer != nil {
			l.timer.Stop()
		}
	}()
	for {
		ls, sctx, err := l.campaign(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if !l.standBy(ctx, err) {
				return nil
			}
			continue
		}
		won := time.Now()
		done, err := l.lead(ctx, sctx, ls, term)
		if done {
			return err
		}
		// Lost: campaign again at once. But terms lost within
		// CampaignRetryInitial of their election, one after the other (a
		// store that ends every session at once), are paced by the backoff
		// from the second on, rather than a loop; a longer term starts
		// afresh.
		if time.Since(won) >= CampaignRetryInitial {
			l.short = 0
			l.bo.Reset()
			continue
		}
		if l.short++; l.short > 1 && !l.wait(ctx, l.bo.NextBackOff()) {
			return nil
		}
	}
}

// campaign campaigns once, under its span; sctx carries the span.
func (l *loop) campaign(ctx context.Context) (ls Leadership, sctx context.Context, err error) {
	sctx, span := l.h.Tracer().Start(ctx, telemetry.SpanName(telemetry.SpanCampaign, l.h.Name()),
		trace.WithNewRoot(), trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithLinks(trace.Link{SpanContext: l.h.StartSpanContext()}), trace.WithAttributes(l.attrs...))
	ls, err = l.e.Campaign(sctx)
	switch {
	case err == nil && values.IsNil(ls):
		err = fmt.Errorf("%T.Campaign returned neither a leadership nor an error", l.e)
		telemetry.End(span, err)
	case err == nil:
		span.SetAttributes(telemetry.AttrToken.Int64(int64(ls.Token())))
		span.End()
	case ctx.Err() != nil:
		span.End() // cut short by the stop: no failure
	default:
		telemetry.End(span, err)
	}
	return ls, sctx, err
}

// standBy logs the failed campaign err, rate-limited, and waits the
// backoff's delay; it reports whether ctx is still on.
func (l *loop) standBy(ctx context.Context, err error) bool {
	now := time.Now()
	l.failing++
	switch {
	case l.failing == 1:
		l.h.Log().WarnContext(ctx, "campaign failed; standing by", "unit", l.unit, "error", err)
		l.loggedAt = now
	case now.Sub(l.loggedAt) >= CampaignLogInterval:
		l.unlogged++
		l.h.Log().WarnContext(ctx, "campaign failed; standing by", "unit", l.unit,
			"failures", l.unlogged, "since", now.Sub(l.loggedAt).Round(time.Second), "error", err)
		l.unlogged, l.loggedAt = 0, now
	default:
		l.unlogged++
	}
	return l.wait(ctx, l.bo.NextBackOff())
}

// wait waits d, and reports whether ctx is still on.
func (l *loop) wait(ctx context.Context, d time.Duration) bool {
	if l.timer == nil {
		l.timer = time.NewTimer(d)
	} else {
		l.timer.Reset(d)
	}
	select {
	case <-ctx.Done():
		return false
	case <-l.timer.C:
		return true
	}
}

// lead runs one term ls: term, then what its end calls for (see Lead). done
// is set when Lead returns, with err.
// sctx carries the campaign's span, for the record of the election.
func (l *loop) lead(ctx, sctx context.Context, ls Leadership, term func(context.Context) error) (done bool, err error) {
	if l.failing > 0 {
		l.h.Log().InfoContext(ctx, "campaign succeeded after failures", "unit", l.unit, "failures", l.failing)
	}
	l.failing, l.unlogged = 0, 0
	tok := ls.Token()
	ectx := context.WithoutCancel(ctx)
	l.gauge.Add(ectx, 1, l.gopts...)
	l.h.Emit(context.WithoutCancel(sctx), core.LeadershipWon{Unit: l.unit, Token: tok})

	tctx, cancel := context.WithCancelCause(context.WithValue(ctx, tokenKey{}, tok))
	// The watcher ends the term's context at once when the term is lost,
	// and reports the loss then, not once term has returned: a term that
	// ignores its context does not delay the record of the loss.
	var wg sync.WaitGroup
	lost := false // set by the watcher, read after wg.Wait
	wg.Go(func() {
		select {
		case <-ls.Lost():
			reason := lossReason(ls)
			cancel(fmt.Errorf("%s: %w (token %d): %w", l.unit, ErrLost, tok, reason))
			l.lost(ectx, tok, reason)
			lost = true
		case <-tctx.Done():
		}
	})
	var termErr error
	select {
	case <-ls.Lost():
		// Lost before its work began (while Campaign returned): no work
		// starts on a term that is over. The loss is recorded below.
	default:
		termErr = callTerm(tctx, term)
	}
	if termErr != nil && tctx.Err() != nil &&
		(errors.Is(termErr, context.Canceled) || errors.Is(termErr, context.Cause(tctx))) {
		termErr = nil // cut short by the loss or by ctx: no failure
	}
	if termErr == nil {
		// The term's work is done: keep the leadership until it is lost
		// or ctx ends.
		select {
		case <-ls.Lost():
		case <-ctx.Done():
		}
	}
	cancel(nil)
	wg.Wait()

	if !lost {
		select {
		case <-ls.Lost(): // after the watcher had ended
			l.lost(ectx, tok, lossReason(ls))
			lost = true
		default:
		}
	}
	if lost {
		if termErr != nil {
			return true, termErr
		}
		return ctx.Err() != nil, nil
	}
	rctx, rcancel := context.WithTimeout(ectx, resignTimeout(l.h.StopTimeout()))
	if rerr := resign(rctx, ls); rerr != nil {
		err = fmt.Errorf("%s: resign (token %d): %w", l.unit, tok, rerr)
	}
	rcancel()
	l.gauge.Add(ectx, -1, l.gopts...)
	l.h.Emit(ectx, core.LeadershipLost{Unit: l.unit, Token: tok})
	return true, errors.Join(termErr, err)
}

// lost records the loss of the term tok, for reason.
func (l *loop) lost(ctx context.Context, tok uint64, reason error) {
	l.gauge.Add(ctx, -1, l.gopts...)
	l.h.Emit(ctx, core.LeadershipLost{Unit: l.unit, Token: tok, Err: reason})
}

// lossReason is why ls, whose Lost is closed, ended: its Err, or, for a
// term resigned by someone other than Lead, an error saying so.
func lossReason(ls Leadership) error {
	if err := ls.Err(); err != nil {
		return err
	}
	return errors.New("resigned by another caller")
}

// resign calls ls.Resign, turning a panic into a *core.PanicError: the
// term is over either way, and is recorded so.
func resign(ctx context.Context, ls Leadership) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &core.PanicError{Value: r, Stack: debug.Stack()}
		}
	}()
	return ls.Resign(ctx)
}

// callTerm calls term, turning a panic into a *core.PanicError.
func callTerm(ctx context.Context, term func(context.Context) error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &core.PanicError{Value: r, Stack: debug.Stack()}
		}
	}()
	return term(ctx)
}

// resignTimeout bounds a resign within a service's stop: half its
// StopTimeout, which bounds the whole goroutine running Lead, so that the
// resign of a store that cannot be reached leaves the goroutine time to
// return within it.
func resignTimeout(stopTimeout time.Duration) time.Duration { return stopTimeout / 2 }
