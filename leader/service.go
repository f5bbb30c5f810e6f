package leader

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/internal/inline"
	"github.com/coreservice/coreservice/internal/names"
	"github.com/coreservice/coreservice/internal/values"
)

// RoleStatus is the name of the status a leader.Service sets
// (core.Host.SetStatus), as the probes show it under the requirement:
// /readyz/<parent>/<requirement>/leader, "leader (token N)" or "standby".
const RoleStatus = "leader"

// Requirement is a requirement of a parent service on a service that runs
// only on the replica that leads an election: see Service. It is a
// core.Option: pass it to core.NewService. A Requirement belongs to one
// parent.
type Requirement[S core.Service] struct {
	e       Elector
	build   func(context.Context) (S, error)
	cfg     config
	applied atomic.Bool

	mu   sync.Mutex
	inst S // the instance running while this replica leads; zero otherwise
}

// config is the settings of a Service requirement, built by newConfig.
type config struct {
	name  string
	hooks []func(core.Event)
	errs  []error
}

func newConfig(opts []Option) config {
	var c config
	for i, o := range opts {
		if o == nil {
			c.errs = append(c.errs, fmt.Errorf("option %d is nil", i))
			continue
		}
		o.apply(&c)
	}
	return c
}

// Option configures a Service requirement.
type Option interface {
	apply(*config)
	fmt.Stringer
}

// Name names the requirement in errors, probe paths and graphs (and the
// service that campaigns, in logs and spans). The default is "leader " and
// the service type, such as "leader *report.Mailer". Empty, or a name that
// cannot be a probe path segment, is invalid. Repeats replace.
func Name(name string) Option { return nameOption(name) }

type nameOption string

func (o nameOption) apply(c *config) {
	if err := names.Check(string(o)); err != nil {
		c.errs = append(c.errs, fmt.Errorf("%v: %w", o, err))
		return
	}
	c.name = string(o)
}

func (o nameOption) String() string { return fmt.Sprintf("leader.Name(%q)", string(o)) }

// OnEvent adds fn to the OnEvent hooks of the service that campaigns
// (core.OnEvent): it receives core.LeadershipWon, core.LeadershipLost and
// that service's state changes, in order, never blocking it. The parent's
// logger logs them either way. A nil fn is invalid. Repeats append.
func OnEvent(fn func(core.Event)) Option { return &onEventOption{fn} }

type onEventOption struct{ fn func(core.Event) }

func (o *onEventOption) apply(c *config) {
	if o.fn == nil {
		c.errs = append(c.errs, errors.New("leader.OnEvent: nil function"))
		return
	}
	c.hooks = append(c.hooks, o.fn)
}

func (*onEventOption) String() string { return "leader.OnEvent(func)" }

// Service returns a requirement on the service that build returns, run
// only while this replica leads the election of e: the parent starts a
// service named as the requirement that campaigns with e (Lead) while the
// parent runs; when this replica is elected it calls build with a context
// that carries the term's token (Token: pass it to the service to guard
// its writes) and starts what build returns, as a requirement of its own
// (with the parent's logger and telemetry); when the term is lost it stops
// that service at once and campaigns again; when the parent stops it stops
// the service, then resigns, so that another replica is elected at once.
// build runs once per term: a service cannot be started twice.
//
// The parent's start does not wait for an election: the parent runs on
// every replica, and the service on the leader only. Get returns it while
// this replica leads, the zero S otherwise. The role is the status
// RoleStatus of the campaigning service, "leader (token N)" or "standby",
// shown by the probes (/readyz/<parent>/<requirement>/leader) and
// deps.Graph; both are ready, since a standby replica is as healthy as the
// leader.
//
// The service of one term is stopped before this replica campaigns again,
// so two replicas' services do not overlap as long as the loss is seen
// before the store lets another replica win (contrib/etcd's timing) and
// the service's Start honours its context: a Start that ignores it is
// abandoned at the loss (the next leader may then be elected while it
// runs) and the service is stopped once that Start returns. Guard writes
// with the token.
//
// A failure of build or of the service, while leading, fails the parent,
// as any requirement's failure does (the term is resigned first): restart
// it in place with deps.Supervise inside build if it should not. Bad
// input, reported by the parent's Start naming the requirement: a nil
// elector (also a typed nil) or build, an elector whose Validate fails
// (see Validator), options that are invalid.
func Service[S core.Service](e Elector, build func(context.Context) (S, error), opts ...Option) *Requirement[S] {
	return &Requirement[S]{e: e, build: build, cfg: newConfig(opts)}
}

// Get returns the service this replica runs as leader, or the zero S on a
// standby replica (and before the parent's start). It is safe for
// concurrent use.
func (r *Requirement[S]) Get() S {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.inst
}

// String describes the requirement, such as `leader.Service(report)`.
func (r *Requirement[S]) String() string { return "leader.Service(" + r.Name() + ")" }

// Name names the requirement: its Name option, else "leader " and the
// service type.
func (r *Requirement[S]) Name() string {
	if r.cfg.name != "" {
		return r.cfg.name
	}
	return "leader " + reflect.TypeFor[S]().String()
}

// ApplyTo registers the requirement with the parent being built. It
// implements core.Option; NewService calls it.
func (r *Requirement[S]) ApplyTo(c *core.Config) {
	if !r.applied.CompareAndSwap(false, true) {
		c.AddError(fmt.Errorf("%s: a Requirement belongs to one service; build one per parent", r))
		return
	}
	if r.build == nil {
		c.AddError(fmt.Errorf("%s: nil build function", r))
		return
	}
	if err := Check(r.e); err != nil {
		c.AddError(fmt.Errorf("%s: %w", r, err))
		return
	}
	for _, err := range r.cfg.errs {
		c.AddError(fmt.Errorf("%s: %w", r, err))
	}
	c.AddRequirement((*adapter[S])(r))
}

// adapter is the core.Requirement of a Requirement: each start of the
// parent resolves it to a new campaigning service.
type adapter[S core.Service] Requirement[S]

func (a *adapter[S]) Name() string              { return (*Requirement[S])(a).Name() }
func (a *adapter[S]) Owned() bool               { return true }
func (a *adapter[S]) After() []core.Requirement { return nil }

// ResolveInline implements inline.Resolver: building the campaigning
// service calls no user code.
func (a *adapter[S]) ResolveInline(inline.Token) bool { return true }

// Resolve builds the campaigning service of this start of the parent.
func (a *adapter[S]) Resolve(context.Context) (core.Service, error) {
	r := (*Requirement[S])(a)
	u := &leaderUnit[S]{r: r}
	opts := []core.Option{core.Name(r.Name()), u}
	for _, fn := range r.cfg.hooks {
		opts = append(opts, core.OnEvent(fn))
	}
	return core.NewService(opts...), nil
}

// leaderUnit is the unit of the campaigning service.
type leaderUnit[S core.Service] struct{ r *Requirement[S] }

// ApplyTo registers the unit with the campaigning service.
func (u *leaderUnit[S]) ApplyTo(c *core.Config) { c.AddUnit(u) }

// PartOfParent implements inline.Part: the campaigning service is part of
// its parent, and has the parent's StartTimeout and StopTimeout.
func (u *leaderUnit[S]) PartOfParent(inline.Token) bool { return true }
func (u *leaderUnit[S]) Name() string                   { return "campaign" }

// Validate checks the elector at each start.
func (u *leaderUnit[S]) Validate() error {
	if err := Check(u.r.e); err != nil {
		return fmt.Errorf("%s: %w", u.r, err)
	}
	return nil
}

// Launch begins the campaign loop.
func (u *leaderUnit[S]) Launch(_ context.Context, h *core.Host) error {
	h.SetStatus(RoleStatus, "standby", true)
	h.Go("campaign", func(ctx context.Context) error {
		return Lead(ctx, h, u.r.Name(), u.r.e, func(ctx context.Context) error { return u.term(ctx, h) })
	})
	return nil
}

// term runs the service during one term: built, acquired, and released
// when the term's context ends; a failure of the service ends the term
// with its error.
func (u *leaderUnit[S]) term(ctx context.Context, h *core.Host) error {
	r := u.r
	tok, _ := Token(ctx)
	inst, err := u.callBuild(ctx)
	if ctx.Err() != nil {
		return nil // lost, or stopping, while build ran: what it built is never started
	}
	if err != nil {
		return err
	}
	if err := h.Acquire(ctx, inst.Name(), inst); err != nil {
		if ctx.Err() != nil && !errors.Is(err, core.ErrLeftRunning) {
			return nil // cut short by the loss or the stop
		}
		return err
	}
	r.mu.Lock()
	r.inst = inst
	r.mu.Unlock()
	h.SetStatus(RoleStatus, "leader (token "+strconv.FormatUint(tok, 10)+")", true)
	var failure error
	select {
	case <-ctx.Done():
	case <-inst.Done():
		failure = inst.Err()
		if failure == nil {
			failure = fmt.Errorf("%s stopped", inst.Name())
		}
		failure = fmt.Errorf("%s: %w", r, failure)
	}
	var zero S
	r.mu.Lock()
	r.inst = zero
	r.mu.Unlock()
	h.SetStatus(RoleStatus, "standby", true)
	// Stopped before the term ends (and Lead resigns or campaigns): the
	// next leader's service never overlaps this one.
	// Its stop errors are the term's: in the parent's Stop result when the
	// parent stops, else the parent's failure.
	if err := h.Release(ctx, inst); err != nil {
		failure = errors.Join(failure, fmt.Errorf("%s: %w", r, err))
	}
	return failure
}

// callBuild calls build and checks what it returns; a panic is an error.
func (u *leaderUnit[S]) callBuild(ctx context.Context) (inst S, err error) {
	r := u.r
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("%s: build: %w", r, &core.PanicError{Value: v, Stack: debug.Stack()})
		}
	}()
	inst, err = r.build(ctx)
	if err != nil {
		return inst, fmt.Errorf("%s: build: %w", r, err)
	}
	if values.IsNil(inst) {
		return inst, fmt.Errorf("%w: %s: build returned a nil service", core.ErrInvalidOption, r)
	}
	if st := inst.State(); st != core.StateNew {
		return inst, fmt.Errorf("%w: %s: build returned %s, which is %s: build a new service each term",
			core.ErrInvalidOption, r, inst.Name(), st)
	}
	return inst, nil
}
