package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/thejerf/suture/v4"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/deps"
	"github.com/coreservice/coreservice/task"
)

// Crasher is the child of the restart-cost scenario (BenchmarkRestart):
// each start of it runs Body, which signals the start (AwaitStart
// receives it), then blocks until Crash makes it fail with ErrInjected, or
// until its context ends (it then returns nil).
type Crasher struct {
	started chan struct{}
	crash   chan struct{}
	starts  atomic.Int64
}

// NewCrasher returns a Crasher whose body has not started.
func NewCrasher() *Crasher {
	return &Crasher{started: make(chan struct{}), crash: make(chan struct{})}
}

// Body is the child's body: one call per start of the child.
func (c *Crasher) Body(ctx context.Context) error {
	c.starts.Add(1)
	select {
	case c.started <- struct{}{}:
	case <-ctx.Done():
		return nil
	}
	select {
	case <-c.crash:
		return ErrInjected
	case <-ctx.Done():
		return nil
	}
}

// AwaitStart waits for the next start of the body; it returns ctx's
// error if ctx ends first.
func (c *Crasher) AwaitStart(ctx context.Context) error {
	select {
	case <-c.started:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("bench: waiting for the child to start: %w", context.Cause(ctx))
	}
}

// Crash makes the running body fail with ErrInjected, and returns once
// it has taken the crash, or ctx's error if ctx ends first.
func (c *Crasher) Crash(ctx context.Context) error {
	select {
	case c.crash <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("bench: crashing the child: %w", context.Cause(ctx))
	}
}

// Starts returns how many times the body has begun.
func (c *Crasher) Starts() int64 { return c.starts.Load() }

// Restarter is a library (or the bare baseline) supervising one child and
// restarting it each time it fails, under the restart policy its Name
// stands for.
type Restarter interface {
	// Name names the implementation and its policy in benchmarks.
	Name() string
	// Supervise starts a supervisor running body as its child: body is
	// called once per start of the child, and a return of body (an error
	// or nil) is a failure of the child, which the supervisor restarts.
	Supervise(ctx context.Context, body func(context.Context) error) (Supervised, error)
}

// Supervised is a started supervisor of one child.
type Supervised interface {
	// Running returns once the supervisor holds the child's latest start
	// as running: for coreservice, once the requirement's Current returns
	// it (the restarted instance is Running); for suture and the bare
	// baseline at once, since the body's start is all they know of. It
	// returns ctx's error if ctx ends first.
	Running(ctx context.Context) error
	// Done is closed when the supervisor has ended: stopped, or given up.
	Done() <-chan struct{}
	// Stop stops the supervisor and its child and waits for them. It
	// returns the supervisor's failure if it gave up.
	Stop(ctx context.Context) error
}

// RestartImpls are the restarters of BenchmarkRestart, each restarting at
// once, with no delay: the bare baseline, suture with an infinite
// FailureThreshold (it never backs off), and coreservice with
// backoff.ZeroBackOff.
func RestartImpls() []Restarter {
	return []Restarter{
		BareRestarter{},
		SutureRestarter{Label: "suture", Spec: NoBackoffSpec()},
		CoreserviceRestarter{Label: "coreservice", Policy: func() backoff.BackOff { return &backoff.ZeroBackOff{} }},
	}
}

// BareRestarter is the baseline: one goroutine calling the body in a for
// loop, again as soon as it returns, until its context ends.
type BareRestarter struct{}

// Name implements Restarter.
func (BareRestarter) Name() string { return "bare" }

type bareSupervised struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// Supervise implements Restarter.
func (BareRestarter) Supervise(ctx context.Context, body func(context.Context) error) (Supervised, error) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s := &bareSupervised{cancel: cancel, done: make(chan struct{})}
	go func() { // ends when Stop cancels ctx
		defer close(s.done)
		for ctx.Err() == nil {
			_ = body(ctx)
		}
	}()
	return s, nil
}

func (s *bareSupervised) Running(context.Context) error { return nil }
func (s *bareSupervised) Done() <-chan struct{}         { return s.done }
func (s *bareSupervised) Stop(context.Context) error {
	s.cancel()
	<-s.done
	return nil
}

// NoBackoffSpec is the suture Spec of BenchmarkRestart: an infinite
// FailureThreshold (its failure count, however high, never exceeds it, so
// the supervisor never pauses: FailureDecay and FailureBackoff never
// apply), events dropped, defaults otherwise.
func NoBackoffSpec() suture.Spec {
	spec := sutureSpec()
	spec.FailureThreshold = math.Inf(1)
	return spec
}

// SutureRestarter is a suture supervisor with Spec, holding the child as
// a suture.Service whose Serve is the body.
type SutureRestarter struct {
	// Label is the name in benchmarks.
	Label string
	// Spec is the supervisor's Spec, zero fields being suture's defaults.
	Spec suture.Spec
}

// Name implements Restarter.
func (r SutureRestarter) Name() string { return r.Label }

type sutureSupervised struct {
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// Supervise implements Restarter.
func (r SutureRestarter) Supervise(ctx context.Context, body func(context.Context) error) (Supervised, error) {
	sup := suture.New("supervisor", r.Spec)
	sup.Add(&sutureUnit{name: "child", fn: body})
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s := &sutureSupervised{cancel: cancel, done: make(chan struct{})}
	errc := sup.ServeBackground(ctx)
	go func() { // ends when the supervisor does
		s.err = <-errc
		close(s.done)
	}()
	return s, nil
}

func (s *sutureSupervised) Running(context.Context) error { return nil }
func (s *sutureSupervised) Done() <-chan struct{}         { return s.done }
func (s *sutureSupervised) Stop(context.Context) error {
	s.cancel()
	<-s.done
	if s.err != nil && !errors.Is(s.err, context.Canceled) {
		return s.err
	}
	return nil
}

// CoreserviceRestarter is a parent service (core.NewService, logging off)
// requiring deps.Supervise(factory, Policy): factory builds a new service
// whose one task (task.Once) runs the body, so the body's return fails the
// instance, which the supervisor restarts after Policy's next delay.
type CoreserviceRestarter struct {
	// Label is the name in benchmarks.
	Label string
	// Policy is the Supervise policy.
	Policy func() backoff.BackOff
	// AfterRunning makes each instance's task wait until its instance and
	// the parent are Running before it runs the body: a body that fails
	// at once would otherwise fail its instance's start rather than a
	// Running instance, and the first instance's failure would fail the
	// parent's Start (its start checks the supervisor's status, which
	// then says "restarting"), not begin a crash loop.
	AfterRunning bool
}

// Name implements Restarter.
func (r CoreserviceRestarter) Name() string { return r.Label }

type coreSupervised struct {
	parent *core.Base
	child  *deps.Requirement[*core.Base]
}

// Supervise implements Restarter.
func (r CoreserviceRestarter) Supervise(ctx context.Context, body func(context.Context) error) (Supervised, error) {
	var parent *core.Base // set before its Start calls factory
	factory := func(context.Context) (*core.Base, error) {
		var inst *core.Base
		run := body
		if r.AfterRunning {
			run = func(ctx context.Context) error {
				if awaitRunning(ctx, inst) != nil || awaitRunning(ctx, parent) != nil {
					return nil // stopped before it ran
				}
				return body(ctx)
			}
		}
		inst = core.NewService(core.Name("child"), core.Logger(quiet), task.Func("body", run, task.Once()))
		return inst, nil
	}
	child := deps.Supervise(factory, r.Policy, deps.Name("child"))
	parent = core.NewService(core.Name("parent"), core.Logger(quiet), child)
	if err := parent.Start(ctx); err != nil {
		return nil, err
	}
	return &coreSupervised{parent: parent, child: child}, nil
}

// awaitRunning waits until svc is Running, or ctx ends.
func awaitRunning(ctx context.Context, svc *core.Base) error {
	for {
		changed := svc.Changed()
		if svc.State() == core.StateRunning {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (s *coreSupervised) Running(ctx context.Context) error {
	_, err := s.child.Current(ctx)
	return err
}
func (s *coreSupervised) Done() <-chan struct{} { return s.parent.Done() }
func (s *coreSupervised) Stop(ctx context.Context) error {
	if err := s.parent.Stop(ctx); err != nil {
		return err
	}
	return s.parent.Err() // the failure of a parent whose supervisor gave up
}

// Restarts returns how many times the supervisor restarted the child, as
// deps.Requirement.Restarts counts them.
func (s *coreSupervised) Restarts() int { return s.child.Restarts() }

// CrashLoopImpls are the restarters of the crash-loop scenario, under each
// library's default policy: suture's default Spec (FailureDecay 30 s,
// FailureThreshold 5, FailureBackoff 15 s, DefaultJitter: +0-50 %; events
// dropped), and coreservice with backoff.NewExponentialBackOff() (500 ms
// initial, ×1.5, ±50 % jitter, 60 s max interval, MaxElapsedTime 15 min),
// as given, with its jitter drawn from a fixed seed (SeededExponential), and
// with no jitter (RandomizationFactor 0).
func CrashLoopImpls() []Restarter {
	return []Restarter{
		SutureRestarter{Label: "suture/policy=default", Spec: sutureSpec()},
		CoreserviceRestarter{Label: "coreservice/policy=exponential", AfterRunning: true,
			Policy: func() backoff.BackOff { return backoff.NewExponentialBackOff() }},
		CoreserviceRestarter{Label: "coreservice/policy=exponential-seeded", AfterRunning: true,
			Policy: func() backoff.BackOff { return NewSeededExponential(1) }},
		CoreserviceRestarter{Label: "coreservice/policy=exponential-nojitter", AfterRunning: true,
			Policy: func() backoff.BackOff {
				return backoff.NewExponentialBackOff(backoff.WithRandomizationFactor(0))
			}},
	}
}

// SeededExponential is backoff.NewExponentialBackOff() with its jitter
// drawn from a source of a fixed seed: the same settings and the same
// computation as backoff/v4's ExponentialBackOff.NextBackOff (the delay
// drawn from [current × 0.5, current × 1.5], backoff.Stop once the time
// since Reset plus that delay exceeds MaxElapsedTime), whose own jitter
// comes from math/rand's global source, which cannot be seeded.
type SeededExponential struct {
	exp   *backoff.ExponentialBackOff // its RandomizationFactor 0, MaxElapsedTime 0: the intervals alone
	rnd   *rand.Rand
	start time.Time
}

// NewSeededExponential returns a SeededExponential drawing from seed.
func NewSeededExponential(seed uint64) *SeededExponential {
	s := &SeededExponential{
		exp: backoff.NewExponentialBackOff(backoff.WithRandomizationFactor(0), backoff.WithMaxElapsedTime(0)),
		rnd: rand.New(rand.NewPCG(seed, seed)),
	}
	s.Reset()
	return s
}

// NextBackOff implements backoff.BackOff.
func (s *SeededExponential) NextBackOff() time.Duration {
	elapsed := time.Since(s.start)
	current := s.exp.NextBackOff() // the current interval, then the next one
	delta := backoff.DefaultRandomizationFactor * float64(current)
	lo, hi := float64(current)-delta, float64(current)+delta
	next := time.Duration(lo + s.rnd.Float64()*(hi-lo+1))
	if elapsed+next > backoff.DefaultMaxElapsedTime {
		return backoff.Stop
	}
	return next
}

// Reset implements backoff.BackOff.
func (s *SeededExponential) Reset() {
	s.exp.Reset()
	s.start = time.Now()
}

// CrashLoopResult is what a crash-looping child caused in CrashLoop.
type CrashLoopResult struct {
	// Restarts are the times of the child's restarts (every start after
	// the first), from the supervisor's start.
	Restarts []time.Duration
	// GaveUp reports whether the supervisor gave up, at GaveUpAt.
	GaveUp bool
	// GaveUpAt is when the supervisor gave up, from its start.
	GaveUpAt time.Duration
	// Err is the supervisor's failure, when it gave up.
	Err error
}

// CrashLoop supervises with r, for d, a child that fails at once (with
// ErrInjected) each time it is started, and returns its restarts. It
// sleeps d: run it in a testing/synctest bubble, where d is fake time.
func CrashLoop(ctx context.Context, r Restarter, d time.Duration) (CrashLoopResult, error) {
	var (
		mu     sync.Mutex
		starts []time.Duration
	)
	begin := time.Now()
	body := func(context.Context) error {
		mu.Lock()
		starts = append(starts, time.Since(begin))
		mu.Unlock()
		return ErrInjected
	}
	s, err := r.Supervise(ctx, body)
	if err != nil {
		return CrashLoopResult{}, err
	}
	var res CrashLoopResult
	timer := time.NewTimer(d)
	select {
	case <-timer.C:
	case <-s.Done():
		timer.Stop()
		res.GaveUp, res.GaveUpAt = true, time.Since(begin)
	}
	err = s.Stop(ctx)
	if res.GaveUp {
		res.Err, err = err, nil
	}
	mu.Lock()
	defer mu.Unlock()
	if len(starts) > 0 {
		res.Restarts = append(res.Restarts, starts[1:]...)
	}
	return res, err
}
