package core

// Requirements chosen while a service runs: a unit acquires a service with
// Host.Acquire and releases it with Host.Release (deps.Supervise and
// leader.Service do), and the service's stop releases what is still held.

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/coreservice/coreservice/internal/names"
	"github.com/coreservice/coreservice/internal/values"
)

// ErrNotHeld is returned by Host.Release for a service that the host does
// not hold (never acquired, or released already).
var ErrNotHeld = errors.New("service not held")

// held is the bookkeeping of the services acquired with Host.Acquire, under
// Base.mu.
type held struct {
	reqs      []*reqState   // in the order they were acquired
	closed    bool          // the stop has begun releasing them: Acquire fails
	acquiring int           // Acquire calls under way
	idle      chan struct{} // closed when acquiring drops to 0; nil while nobody waits
}

// heldRequirement is the Requirement of a service acquired with
// Host.Acquire, as Dependencies lists it.
type heldRequirement struct {
	name string
	svc  Service
}

// Name returns the name given to Acquire.
func (r *heldRequirement) Name() string { return r.name }

// Resolve returns the service acquired.
func (r *heldRequirement) Resolve(context.Context) (Service, error) { return r.svc, nil }

// Owned reports true: the host started the service, or holds it.
func (r *heldRequirement) Owned() bool { return true }

// After returns nil: an acquired service waits for nothing of its host's.
func (r *heldRequirement) After() []Requirement { return nil }

// Known returns the service acquired.
func (r *heldRequirement) Known() Service { return r.svc }

// Acquire starts svc as a requirement of the host's service that a unit
// chose while the service runs, named name in errors, probes and graphs,
// and returns once svc is Running and has passed one Healthcheck, as the
// start of a registered requirement does: a *Base is started by its first
// holder (with that holder's logger and telemetry providers where its
// options set none) or joined when other parents hold it already, and
// bounded by its own StartTimeout; another type's Start is bounded by ctx.
// Acquire also returns when ctx ends, or when the service begins to stop.
// On failure nothing is held: what Acquire started is released before it
// returns the error, which names the requirement.
//
// Unlike a registered requirement, a service acquired here does not fail
// its holder when it fails or stops: the unit that acquired it watches its
// Done and decides (a supervisor restarts it). Dependencies lists it after
// the registered requirements, so the probes and deps.Graph show it, and
// the holder's Healthcheck includes its health, once Acquire has returned
// (not while it starts). It stays held until
// Release, or until the holder's stop releases it, after the OnStop hooks
// and before the registered requirements (what a unit acquired may use
// them).
//
// Acquire is safe for concurrent use; call it from a unit's Launch or one
// of its goroutines. It fails with an error matching ErrInvalidOption for
// an invalid name (empty, not a probe path segment, or taken by another
// requirement), a nil or unusable service, the service itself, or a
// service held already (acquired, or a registered requirement); and with
// a *CycleError when svc requires, directly or not, the host's service.
// A service of another type whose Start returns after Acquire gave up on
// it is stopped then, as the Start of a registered requirement is.
func (h *Host) Acquire(ctx context.Context, name string, svc Service) error {
	b := h.b
	if err := b.validateAcquire(name, svc); err != nil {
		return fmt.Errorf("%w: %s: Host.Acquire(%q): %w", ErrInvalidOption, b.name, name, err)
	}
	st := &reqState{r: &heldRequirement{name: name, svc: svc}, name: name, svc: svc}
	b.mu.Lock()
	if err := b.acquireAllowedLocked(name, svc); err != nil {
		b.mu.Unlock()
		return fmt.Errorf("acquire %s: %w", name, err)
	}
	if b.held == nil {
		b.held = &held{}
	}
	b.held.acquiring++
	b.held.reqs = append(b.held.reqs, st)
	b.mu.Unlock()
	defer b.acquireDone()
	life := b.workers.lifetime()
	if life == nil { // Starting, before its units' context exists
		b.dropHeld(st)
		return fmt.Errorf("acquire %s: %s is not started yet", name, b.name)
	}

	// Ended by the caller, or by the stop (which cancels the lifetime
	// context first), whichever comes first; a context of the service's
	// goroutines (a unit's) ends with the lifetime already.
	if ctx.Done() != life.Done() {
		var cancel context.CancelCauseFunc
		ctx, cancel = context.WithCancelCause(ctx)
		defer cancel(nil)
		defer context.AfterFunc(life, func() { cancel(fmt.Errorf("%s is stopping", b.name)) })()
	}
	if lastInPath(ctx) != b {
		ctx = withPath(ctx, b)
	}
	err := b.startHeld(ctx, st)
	if err == nil {
		return nil
	}
	if b.dropHeld(st) {
		if rerr := b.release(detach(ctx), name, true, svc); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}
	return fmt.Errorf("acquire %s: %w", name, err)
}

// validateAcquire checks what Acquire is given, before anything is held.
func (b *Base) validateAcquire(name string, svc Service) error {
	if err := names.Check(name); err != nil {
		return err
	}
	if values.IsNil(svc) {
		return errors.New("nil service")
	}
	if err := Validate(svc); err != nil {
		return err
	}
	if err := ValidateHealthcheck(svc); err != nil {
		return err
	}
	if sameService(svc, b) {
		return errors.New("a service cannot require itself")
	}
	return nil
}

// acquireAllowedLocked reports why b cannot acquire svc as name now, or
// nil. b.mu is held.
func (b *Base) acquireAllowedLocked(name string, svc Service) error {
	if (b.held != nil && b.held.closed) || (b.state != StateStarting && b.state != StateRunning) {
		return fmt.Errorf("%s is %s", b.name, b.state)
	}
	taken := func(st *reqState) bool { return st.name == name }
	if slices.ContainsFunc(b.reqs, taken) || slices.ContainsFunc(b.heldReqsLocked(), taken) {
		return fmt.Errorf("%w: the name %q is taken by another requirement of %s", ErrInvalidOption, name, b.name)
	}
	same := func(st *reqState) bool { return st.svc != nil && sameService(st.svc, svc) }
	if slices.ContainsFunc(b.heldReqsLocked(), same) || slices.ContainsFunc(b.reqs, same) {
		return fmt.Errorf("%w: service %s is held by %s already", ErrInvalidOption, svc.Name(), b.name)
	}
	return nil
}

// startHeld is Acquire's start of st: the cycle check, then the start (or
// join) and one Healthcheck, as startRequirement does for a registered
// requirement.
func (b *Base) startHeld(ctx context.Context, st *reqState) error {
	if bb, ok := st.svc.(baser); ok {
		if err := checkCycle(ctx, bb.coreBase()); err != nil {
			return err
		}
	}
	b.mu.Lock()
	st.attempted = true // from here on, a release must follow
	b.mu.Unlock()
	if err := b.require(ctx, st.svc); err != nil {
		return err
	}
	if err := b.healthcheck(ctx, st.name, st.svc); err != nil {
		if bb, ok := st.svc.(baser); ok {
			if why := bb.coreBase().notRunning(); why != nil {
				return why
			}
		}
		return err
	}
	b.mu.Lock()
	st.ok = true
	b.mu.Unlock()
	return nil
}

// acquireDone ends an Acquire call.
func (b *Base) acquireDone() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.held.acquiring--; b.held.acquiring == 0 && b.held.idle != nil {
		close(b.held.idle)
		b.held.idle = nil
	}
}

// dropHeld removes st from the services b holds, and reports whether the
// caller is the one to release it: false when the stop took it first.
func (b *Base) dropHeld(st *reqState) (release bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	i := slices.Index(b.heldReqsLocked(), st)
	if i < 0 {
		return false
	}
	b.held.reqs = slices.Delete(b.held.reqs, i, i+1)
	return st.attempted
}

// Release stops svc, which a unit acquired with Acquire, or drops the
// host's hold on it when other parents hold it too, and returns once svc
// is stopped, with its stop errors: as the release of a registered
// requirement, bounded by svc's own StopTimeout steps (a *Base) or by the
// host's StopTimeout (another type's Stop). ctx carries the trace; the
// stop does not end when ctx does. Release of a service the host does not
// hold (never acquired, released already, or whose Acquire has not
// returned yet) returns an error matching ErrNotHeld. It is safe for
// concurrent use: of two calls for one service, one releases it and the
// other returns ErrNotHeld.
func (h *Host) Release(ctx context.Context, svc Service) error {
	b := h.b
	// Found and dropped in one step: of two concurrent calls, one releases
	// and the other gets ErrNotHeld. A service whose Acquire is under way
	// is not held yet.
	b.mu.Lock()
	i := slices.IndexFunc(b.heldReqsLocked(), func(st *reqState) bool {
		return st.ok && !values.IsNil(svc) && sameService(st.svc, svc)
	})
	if i < 0 {
		b.mu.Unlock()
		name := "<nil>"
		if !values.IsNil(svc) {
			name = svc.Name()
		}
		return fmt.Errorf("%s: Host.Release(%s): %w", b.name, name, ErrNotHeld)
	}
	st := b.held.reqs[i]
	b.held.reqs = slices.Delete(b.held.reqs, i, i+1)
	b.mu.Unlock()
	if err := b.release(detach(ctx), st.name, true, st.svc); err != nil {
		return fmt.Errorf("requirement %s: %w", st.name, err)
	}
	return nil
}

// releaseHeld is the stop's release of the services b's units acquired and
// did not release: once the Acquire calls under way have returned (the
// stop has cancelled them), each is released, concurrently, and waited
// for.
func (b *Base) releaseHeld(ctx context.Context) []error {
	b.mu.Lock()
	if b.held == nil { // no unit ever acquired anything; none can now (Stopping)
		b.mu.Unlock()
		return nil
	}
	b.held.closed = true
	var idle chan struct{}
	if b.held.acquiring > 0 {
		if b.held.idle == nil {
			b.held.idle = make(chan struct{})
		}
		idle = b.held.idle
	}
	b.mu.Unlock()
	if idle != nil {
		<-idle // bounded: each Acquire ends when the lifetime context does
	}
	b.mu.Lock()
	reqs := b.held.reqs
	b.held.reqs = nil
	b.mu.Unlock()
	if len(reqs) == 0 {
		return nil
	}
	errs := make([]error, len(reqs))
	done := make(chan struct{})
	for i, st := range reqs {
		go func() {
			defer func() { done <- struct{}{} }()
			if !st.attempted {
				return
			}
			if err := b.release(ctx, st.name, true, st.svc); err != nil {
				errs[i] = fmt.Errorf("requirement %s: %w", st.name, err)
			}
		}()
	}
	for range reqs {
		<-done
	}
	return errs
}

// heldDependenciesLocked returns the services b's units acquired, as
// Dependencies lists them: once Acquire has returned them. b.mu is held.
func (b *Base) heldDependenciesLocked() []Dependency {
	var deps []Dependency
	for _, st := range b.heldLocked() {
		deps = append(deps, Dependency{Requirement: st.r, Service: st.svc})
	}
	return deps
}

// heldLocked returns the services b's units acquired and Acquire returned:
// not those an Acquire under way is starting. b.mu is held.
func (b *Base) heldLocked() []*reqState {
	var out []*reqState
	for _, st := range b.heldReqsLocked() {
		if st.ok {
			out = append(out, st)
		}
	}
	return out
}

// sameService reports whether a and b are one service: the same *Base,
// whatever types they are seen through, or equal values of another type.
func sameService(a, b Service) (same bool) {
	ab, aok := a.(baser)
	bb, bok := b.(baser)
	if aok && bok {
		defer func() {
			if recover() != nil { // a nil embedded *Base: Validate has rejected it
				same = false
			}
		}()
		return ab.coreBase() == bb.coreBase()
	}
	return values.Same(a, b)
}

// heldReqsLocked returns the services b's units acquired, also those an
// Acquire under way is starting. b.mu is held.
func (b *Base) heldReqsLocked() []*reqState {
	if b.held == nil {
		return nil
	}
	return b.held.reqs
}
