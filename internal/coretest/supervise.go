package coretest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/coreservice/coreservice/core"
)

// Policy is a scripted backoff.BackOff: NextBackOff returns Delays in turn,
// then backoff.Stop; Reset starts again from the first. It records every
// call, for tests that the policy was followed exactly. It is safe for
// concurrent use.
type Policy struct {
	mu     sync.Mutex
	delays []time.Duration
	next   int
	calls  []string
}

// NewPolicy returns a Policy giving delays.
func NewPolicy(delays ...time.Duration) *Policy { return &Policy{delays: delays} }

// NextBackOff returns the next delay, or backoff.Stop past the last.
func (p *Policy) NextBackOff() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.next >= len(p.delays) {
		p.calls = append(p.calls, "stop")
		return backoff.Stop
	}
	d := p.delays[p.next]
	p.next++
	p.calls = append(p.calls, d.String())
	return d
}

// Reset starts again from the first delay.
func (p *Policy) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.next = 0
	p.calls = append(p.calls, "reset")
}

// Calls returns the calls so far: each delay returned, "stop" and "reset".
func (p *Policy) Calls() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.calls)
}

// Instance is a service that a Flaky factory built: the test fails it
// with Fail.
type Instance struct {
	*core.Base
	// N is its number, from 1 in the order built.
	N    int
	unit *HostUnit
}

// Fail fails the instance with err, as a failing unit of its own would.
func (i *Instance) Fail(err error) { i.unit.Host().Fail(err) }

// Flaky builds Instances, named "<name>#<n>", for deps.Supervise. Before
// each build it asks StartErr, when set, for the error the n-th
// instance's start fails with (nil: it starts). It is safe for concurrent
// use.
type Flaky struct {
	// Name prefixes the instances' names.
	Name string
	// StartErr, if set, returns the error instance n fails to start with.
	StartErr func(n int) error
	// Opts are added to each instance's options.
	Opts []core.Option

	mu    sync.Mutex
	built []*Instance
}

// Factory builds the next instance.
func (f *Flaky) Factory(context.Context) (*Instance, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := len(f.built) + 1
	inst := &Instance{N: n, unit: NewHostUnit("fail")}
	opts := []core.Option{core.Name(fmt.Sprintf("%s#%d", f.Name, n)), core.Logger(Quiet()),
		core.MonitorInterval(time.Hour), inst.unit}
	if f.StartErr != nil {
		if err := f.StartErr(n); err != nil {
			opts = append(opts, core.OnStart(func(context.Context) error { return err }))
		}
	}
	inst.Base = core.NewService(append(opts, f.Opts...)...)
	f.built = append(f.built, inst)
	return inst, nil
}

// Built returns the instances built so far, in order.
func (f *Flaky) Built() []*Instance {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.built)
}

// Last returns the latest instance built, or nil.
func (f *Flaky) Last() *Instance {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.built) == 0 {
		return nil
	}
	return f.built[len(f.built)-1]
}
