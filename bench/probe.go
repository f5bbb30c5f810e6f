package bench

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// CheckInterval is the period of every implementation's health check: the
// default core.MonitorInterval.
const CheckInterval = 100 * time.Millisecond

// ErrInjected is the failure that a chain's bottom service returns when
// Chain.Fail is called.
var ErrInjected = errors.New("bench: injected failure")

// Spec is the work of one service: its task and, with Check, a health check.
type Spec struct {
	// Period is the task's period: 0 makes it block until the service
	// stops; a positive Period makes it run an empty function at once and
	// then Period after each run ends, until the service stops.
	Period time.Duration
	// Check adds a passing health check, run once at start and then every
	// CheckInterval.
	Check bool
}

// units is how many units of this spec signal the Probe when they begin.
func (s Spec) units() int {
	if s.Check {
		return 2
	}
	return 1
}

// Probe counts what the units of one scenario do, so that every
// implementation is seen to do the same work. It is safe for concurrent use.
type Probe struct {
	want    int64
	entered atomic.Int64
	exited  atomic.Int64
	runs    atomic.Int64
	checks  atomic.Int64
	ready   chan struct{}
	// Shared only: whether the shared service has started, how many
	// parents began before it had, and how many parents had returned when
	// it returned (-1 until then).
	sharedUp           atomic.Bool
	outOfOrder         atomic.Int64
	exitedBeforeShared atomic.Int64
}

// NewProbe returns a Probe for n services of spec.
func NewProbe(n int, spec Spec) *Probe {
	return newProbe(int64(n * spec.units()))
}

func newProbe(want int64) *Probe {
	p := &Probe{want: want, ready: make(chan struct{})}
	p.exitedBeforeShared.Store(-1)
	if want == 0 {
		close(p.ready)
	}
	return p
}

// Enter records that a unit has begun; the last one closes Ready.
func (p *Probe) Enter() {
	if p.entered.Add(1) == p.want {
		close(p.ready)
	}
}

// Exit records that a blocking task has returned.
func (p *Probe) Exit() { p.exited.Add(1) }

// Ready is closed once every unit has begun.
func (p *Probe) Ready() <-chan struct{} { return p.ready }

// WaitReady waits for Ready, for at most timeout.
func (p *Probe) WaitReady(timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.ready:
		return nil
	case <-t.C:
		return errors.New("bench: units did not all begin in time: " +
			strconv.FormatInt(p.entered.Load(), 10) + " of " + strconv.FormatInt(p.want, 10))
	}
}

// Entered, Exited, Runs and Checks return the counts so far.
func (p *Probe) Entered() int64 { return p.entered.Load() }

// Exited returns how many blocking tasks have returned.
func (p *Probe) Exited() int64 { return p.exited.Load() }

// Runs returns how many runs of periodic tasks have ended.
func (p *Probe) Runs() int64 { return p.runs.Load() }

// Checks returns how many check runs have ended.
func (p *Probe) Checks() int64 { return p.checks.Load() }

// blockUntilStop is the trivial task: signal, block until ctx ends, return nil.
func blockUntilStop(ctx context.Context, p *Probe) error {
	p.Enter()
	<-ctx.Done()
	p.Exit()
	return nil
}

// periodic runs an empty function at once and then period after each run
// ends, until ctx ends: what a peer's user writes for a periodic task.
func periodic(ctx context.Context, p *Probe, period time.Duration) error {
	t := time.NewTimer(0)
	defer t.Stop()
	<-t.C
	first := true
	for {
		p.runs.Add(1) // the empty run
		if first {
			p.Enter()
			first = false
		}
		t.Reset(period)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// sharedUntilStop is the shared service of Impl.Shared: a trivial task
// that marks the shared service started when it begins (then calls
// running, if not nil), and records how many parents had returned when it
// returns.
func sharedUntilStop(ctx context.Context, p *Probe, running func()) error {
	p.sharedUp.Store(true)
	p.Enter()
	if running != nil {
		running()
	}
	<-ctx.Done()
	p.exitedBeforeShared.Store(p.exited.Load())
	p.Exit()
	return nil
}

// parentUntilStop is a parent of Impl.Shared: a trivial task that counts
// itself out of order if it begins before the shared service has started,
// as told by started (nil: the shared service's task has begun).
func parentUntilStop(ctx context.Context, p *Probe, started func() bool) error {
	if started == nil {
		started = p.sharedUp.Load
	}
	if !started() {
		p.outOfOrder.Add(1)
	}
	return blockUntilStop(ctx, p)
}

// SharedOrder returns how many parents began before the shared service
// had started, and how many had returned when it returned: 0 and every
// parent when it starts first and stops last (-1 before it returned).
func (p *Probe) SharedOrder() (beganBefore, exitedBefore int64) {
	return p.outOfOrder.Load(), p.exitedBeforeShared.Load()
}

// okCheck is the passing health check.
func (p *Probe) okCheck(context.Context) error {
	p.checks.Add(1)
	return nil
}

// monitor is a peer's health monitor: run the check at once, then on every
// tick; a failure would end the unit with that error.
func monitor(ctx context.Context, p *Probe) error {
	if err := p.okCheck(ctx); err != nil {
		return err
	}
	p.Enter()
	t := time.NewTicker(CheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := p.okCheck(ctx); err != nil {
				return err
			}
		}
	}
}

// Units returns the bodies of a peer's service of spec: the task, then the
// monitor when spec has a check. Each returns nil once ctx ends.
func (s Spec) Units(p *Probe) []func(context.Context) error {
	task := func(ctx context.Context) error { return blockUntilStop(ctx, p) }
	if s.Period > 0 {
		task = func(ctx context.Context) error { return periodic(ctx, p, s.Period) }
	}
	if !s.Check {
		return []func(context.Context) error{task}
	}
	return []func(context.Context) error{task, func(ctx context.Context) error { return monitor(ctx, p) }}
}

// Shape is how a group's services hang under its root.
type Shape string

const (
	// Flat puts every service directly under the root.
	Flat Shape = "flat"
	// Tree puts services 1..n in a tree 10 wide under the root: the parent
	// of service i is service (i-1)/10, service 0 being the root, which is a
	// container without work of its own in both shapes.
	Tree Shape = "tree"
)

// Parent returns the index of service i's parent (0 is the root) in shape.
func (s Shape) Parent(i int) int {
	if s == Tree {
		return (i - 1) / 10
	}
	return 0
}

// Group is a set of services built by one implementation under one root.
type Group interface {
	// Start starts the group; it may return before every unit has begun
	// (Probe.Ready tells when they have).
	Start(ctx context.Context) error
	// Stop stops the group and returns once every unit has returned.
	Stop(ctx context.Context) error
}

// Chain is a chain of services: a bottom one that fails when Fail is
// called, and depth dependents above it, each depending on the one below.
type Chain interface {
	Group
	// Fail makes the bottom service's task fail with ErrInjected.
	Fail()
	// Done is closed once the top service has stopped and nothing below it
	// still runs.
	Done() <-chan struct{}
	// Err returns the top's error once Done is closed: one that matches
	// ErrInjected when the failure reached it.
	Err() error
}

// Impl is one implementation: coreservice, a peer or the bare baseline.
type Impl interface {
	// Name is the implementation's name in benchmark names and tables.
	Name() string
	// Group builds n services of spec under one root, in shape; names[i-1]
	// is the name of service i.
	Group(shape Shape, names []string, spec Spec, p *Probe) (Group, error)
	// Chain builds a chain of depth dependents over a failing service, each
	// a trivial service; p counts depth+1 units.
	Chain(depth int, p *Probe) (Chain, error)
	// Shared builds len(names) trivial parents under one root, each
	// requiring one shared trivial service, which starts before every
	// parent and stops after every parent; p counts len(names)+1 units.
	Shared(names []string, p *Probe) (Group, error)
}

// failOnce is the bottom of a chain: it blocks until stop or until fail is
// closed, and then returns ErrInjected.
func failOnce(ctx context.Context, p *Probe, fail <-chan struct{}) error {
	p.Enter()
	defer p.Exit()
	select {
	case <-ctx.Done():
		return nil
	case <-fail:
		return ErrInjected
	}
}

// closer closes a channel once.
type closer struct {
	once sync.Once
	ch   chan struct{}
}

func newCloser() *closer { return &closer{ch: make(chan struct{})} }

func (c *closer) close() { c.once.Do(func() { close(c.ch) }) }
