package deps

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"

	"github.com/cenkalti/backoff/v4"
	"github.com/samber/lo"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/internal/inline"
	"github.com/coreservice/coreservice/internal/names"
	"github.com/coreservice/coreservice/internal/values"
)

// Requirement is a service that a parent service needs Running, with typed
// access to it. It is a core.Option: pass it to core.NewService. Build one
// with Requires, Lazy, Await or Supervise. A Requirement belongs to one parent.
type Requirement[S core.Service] struct {
	kind    kind
	svc     S                                // Requires, Await
	build   func(context.Context) (S, error) // Lazy
	cfg     config
	adapter *adapter[S]
	applied atomic.Bool

	sv *supervision[S] // Supervise only; nil for the other kinds

	mu    sync.Mutex
	built S // Lazy: the service built; Supervise: the latest instance that ran
}

// supervision is what a Supervise requirement holds beyond the others.
type supervision[S core.Service] struct {
	policy func() backoff.BackOff
	sup    *supervisor[S] // the supervisor of the parent's current start, under Requirement.mu
}

type kind int

const (
	kindRequires kind = iota
	kindLazy
	kindAwait
	kindSupervise
)

var kindNames = [...]string{"deps.Requires", "deps.Lazy", "deps.Await", "deps.Supervise"}

// Requires returns a requirement on s: the parent starts s before its own
// hooks and tasks and stops it after them (or, when s is shared with other
// parents and built on *core.Base, after the last of them). S is inferred
// from s.
func Requires[S core.Service](s S, opts ...Option) *Requirement[S] {
	return newRequirement(kindRequires, s, nil, opts)
}

// Lazy returns a requirement on a service that fn builds when the parent
// starts, once the requirements named with After are Running; fn runs with
// the parent's start context. Get returns the zero S until then. An error
// from fn aborts the parent's start and is wrapped, not replaced; a nil
// service from fn is an error too. Name the requirement with Name for
// errors and graphs; the default is the service type, such as
// "lazy *store.Postgres".
func Lazy[S core.Service](fn func(context.Context) (S, error), opts ...Option) *Requirement[S] {
	var zero S
	return newRequirement(kindLazy, zero, fn, opts)
}

// Await returns a requirement on a service that someone else starts and
// stops: the parent waits, bounded by its StartTimeout, for s to be
// Running, fails when s fails or stops, and never starts or stops s.
func Await[S core.Service](s S, opts ...Option) *Requirement[S] {
	return newRequirement(kindAwait, s, nil, opts)
}

func newRequirement[S core.Service](k kind, s S, fn func(context.Context) (S, error), opts []Option) *Requirement[S] {
	r := &Requirement[S]{kind: k, svc: s, build: fn, cfg: newConfig(opts)}
	r.adapter = &adapter[S]{r: r}
	return r
}

// Get returns the required service: for Requires and Await the one given;
// for Lazy the one built, or the zero S before the parent's start built it;
// for Supervise the latest instance that was Running (during a restart,
// the one that failed: see Current), or the zero S before the first.
// It is safe for concurrent use.
func (r *Requirement[S]) Get() S {
	if r.kind != kindLazy && r.kind != kindSupervise {
		return r.svc
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.built
}

// ApplyTo registers the requirement with the parent being built. It
// implements core.Option; NewService calls it.
func (r *Requirement[S]) ApplyTo(c *core.Config) {
	if !r.applied.CompareAndSwap(false, true) {
		c.AddError(fmt.Errorf("%s: a Requirement belongs to one service; build one per parent", r))
		return
	}
	built := r.kind == kindLazy || r.kind == kindSupervise
	switch {
	case r.build == nil && r.kind == kindLazy:
		c.AddError(fmt.Errorf("%s: nil function", r))
		return
	case r.build == nil && r.kind == kindSupervise:
		c.AddError(fmt.Errorf("%s: nil factory", r))
		return
	case r.kind == kindSupervise && r.sv.policy == nil:
		c.AddError(fmt.Errorf("%s: nil policy", r))
		return
	case !built && values.IsNil(r.svc):
		c.AddError(fmt.Errorf("%s: nil service", r))
		return
	}
	for _, err := range r.cfg.errs {
		c.AddError(fmt.Errorf("%s: %w", r, err))
	}
	if r.kind != kindSupervise && r.cfg.sv != nil {
		for _, o := range r.cfg.sv.given {
			c.AddError(fmt.Errorf("%s: %s: only for deps.Supervise", r, o))
		}
	}
	c.AddRequirement(r.coreRequirement())
}

// String describes the requirement, such as `deps.Requires(db)`.
func (r *Requirement[S]) String() string {
	return fmt.Sprintf("%s(%s)", kindNames[r.kind], r.name())
}

func (r *Requirement[S]) name() string {
	if r.cfg.name != "" {
		return r.cfg.name
	}
	switch r.kind {
	case kindLazy:
		if s := r.Get(); !values.IsNil(s) {
			return s.Name()
		}
		return "lazy " + reflect.TypeFor[S]().String()
	case kindSupervise:
		return "supervised " + reflect.TypeFor[S]().String()
	}
	if values.IsNil(r.svc) {
		return "<nil>"
	}
	return r.svc.Name()
}

func (r *Requirement[S]) coreRequirement() core.Requirement {
	switch r.kind {
	case kindLazy:
		return r.adapter
	case kindSupervise:
		return superviseAdapter[S]{r.adapter}
	}
	return staticAdapter[S]{r.adapter}
}

// AnyRequirement is a *Requirement[S] of any S, as After takes them.
type AnyRequirement interface {
	coreRequirement() core.Requirement
}

// adapter is the core.Requirement of a Requirement.
type adapter[S core.Service] struct{ r *Requirement[S] }

func (a *adapter[S]) Name() string { return a.r.name() }
func (a *adapter[S]) Owned() bool  { return a.r.kind != kindAwait }
func (a *adapter[S]) After() []core.Requirement {
	return lo.Map(a.r.cfg.after, func(o AnyRequirement, _ int) core.Requirement { return o.coreRequirement() })
}

func (a *adapter[S]) Resolve(ctx context.Context) (core.Service, error) {
	r := a.r
	if r.kind != kindLazy {
		if err := core.ValidateHealthcheck(r.svc); err != nil {
			return nil, fmt.Errorf("%s: %w", r, err)
		}
		return r.svc, nil
	}
	s, err := r.build(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r, err)
	}
	if values.IsNil(s) {
		return nil, fmt.Errorf("%s: %w", r, errNilBuilt)
	}
	if err := core.Validate(s); err != nil {
		return nil, fmt.Errorf("%s: %w", r, err)
	}
	if err := core.ValidateHealthcheck(s); err != nil {
		return nil, fmt.Errorf("%s: %w", r, err)
	}
	if r.cfg.name == "" {
		if err := names.Check(s.Name()); err != nil {
			return nil, fmt.Errorf("%w: %s: the service it built: %w: name it (deps.Name)", core.ErrInvalidOption, r, err)
		}
	}
	r.mu.Lock()
	r.built = s
	r.mu.Unlock()
	return s, nil
}

var errNilBuilt = errors.New("function returned a nil service")

// staticAdapter is the core.Requirement of a Requires or an Await: its
// service is known before start, so core can look for cycles first. It is
// comparable (one pointer), so After finds it among the parent's.
type staticAdapter[S core.Service] struct{ *adapter[S] }

func (a staticAdapter[S]) Known() core.Service { return a.r.svc }

// ResolveInline implements inline.Resolver: the Resolve of Requires and
// Await returns the service given, calling no user code, so the parent
// calls it on its own goroutine. Lazy's runs its builder, bounded.
func (a staticAdapter[S]) ResolveInline(inline.Token) bool { return true }
