package core

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"slices"
	"sync"

	"github.com/coreservice/coreservice/internal/inline"
	"github.com/coreservice/coreservice/internal/values"
)

// Requirement is a service another service needs Running before its own
// OnStart hooks, tasks and checks. Package deps builds them
// (deps.Requires, deps.Lazy, deps.Await); register one with
// Config.AddRequirement.
//
// The parent starts its requirements in dependency order, independent ones
// concurrently; each is followed by one Healthcheck of the required
// service. While the parent runs, a required service that stops fails the
// parent, at once: a *Base tells its parents the moment it begins to stop
// (a failure, or a Stop from elsewhere), and its own stop sequence waits
// until their units have ended and their OnStop hooks have run, so that
// dependents stop before what they use, as in any stop; a service of another
// type is seen when it reaches a final state, or by the parent's monitor at
// its next tick once it is no longer Running. The parent's Stop releases its requirements after its
// tasks and hooks, in reverse dependency order.
//
// An owned requirement whose service is (or embeds) a *Base is shared: every
// parent acquires it, the first starts it, the others wait for it to be
// Running, and it is stopped when its last parent releases it. Its start
// belongs to it, not to the first parent: it keeps that parent's trace but
// not its cancellation, and is bounded by the service's own StartTimeout;
// it is aborted only when every parent waiting for it has given up. The
// hold and the decision to stop are taken under the shared service's lock:
// a parent acquiring it while its last holder releases it either holds it
// (it keeps running) or sees it stopping and fails to start. Parents start
// and stop such a service through its *Base: a Start or Stop method of the
// embedding type is not what they call. A parent's stop waits for every
// owned requirement that is stopping, whoever stopped it, and returns its
// stop errors: once a parent's Stop has returned, nothing below it still
// runs. An owned service of another type is started and stopped by each
// parent, its Start bounded by the parent's start and its Stop by the
// parent's StopTimeout.
//
// A cycle among requirements is a *CycleError: found before anything starts
// for static requirements, and otherwise when a start would wait for a
// service whose start waits, directly or not, for the waiting one.
type Requirement interface {
	// Name names the requirement in errors, graphs and probe paths, also
	// before it is resolved; spans name the service.
	Name() string
	// Resolve returns the required service. The parent calls it once per
	// start, after the requirements listed by After are Running; a lazy
	// requirement builds its service here. A nil service is an error.
	Resolve(ctx context.Context) (Service, error)
	// Owned reports whether the parent starts and stops the service (true),
	// or only waits for it to be Running and watches it (false).
	Owned() bool
	// After lists requirements of the same parent that must be Running
	// before this one is resolved.
	After() []Requirement
}

// StaticRequirement is a Requirement whose service is fixed before Start
// (deps.Requires and deps.Await are). Start walks the static requirements of
// the whole tree before starting anything, so that a cycle among them is a
// *CycleError even when two roots of the cycle are started concurrently.
// Cycles through lazily built services are found as they are built.
type StaticRequirement interface {
	Requirement
	// Known returns the service that Resolve will return.
	Known() Service
}

// reqState is one requirement during one start and the following stop.
type reqState struct {
	r         Requirement
	name      string
	after     []int         // indexes of the requirements it waits for
	started   chan struct{} // closed when it is Running and checked; nil if no requirement comes after it
	released  chan struct{} // closed once released (or never acquired); nil if it comes after none
	svc       Service       // set once resolved
	attempted bool          // acquire was called: release must follow
	ok        bool          // Running and checked
}

// markStarted tells the requirements that come after st that it is Running
// and checked.
func (st *reqState) markStarted() {
	if st.started != nil {
		close(st.started)
	}
}

// markReleased tells the requirements st comes after that it is released.
func (st *reqState) markReleased() {
	if st.released != nil {
		close(st.released)
	}
}

// inlineRun is how many requirements whose start runs no user code are
// worth a goroutine of their own: fewer start on the parent's goroutine.
const inlineRun = 16

// inlineRuns splits the requirements whose start runs no user code into
// runs of at least inlineRun each, one per processor at most: the caller
// starts the first on its own goroutine and each other one in a goroutine
// of its own.
func inlineRuns(inline []*reqState) [][]*reqState {
	n := min(runtime.GOMAXPROCS(0), len(inline)/inlineRun)
	if n <= 1 {
		return [][]*reqState{inline}
	}
	runs := make([][]*reqState, n)
	for i := range runs {
		runs[i] = inline[i*len(inline)/n : (i+1)*len(inline)/n]
	}
	return runs
}

// startsInline reports whether the start of requirement st runs no user
// code and waits for nothing but that start: it is one of the module's
// requirements with a known service (deps.Requires), owned, after no other
// requirement, and the service is a *Base whose own start runs no user
// code (Base.startsInline). Such a requirement's start is run on the
// parent's goroutine; every other one in a goroutine of its own.
func startsInline(st *reqState) bool {
	if len(st.after) > 0 || !st.r.Owned() {
		return false
	}
	if ir, ok := st.r.(inline.Resolver); !ok || !ir.ResolveInline(inline.Token{}) {
		return false
	}
	sr, ok := st.r.(StaticRequirement)
	if !ok {
		return false
	}
	child, ok := sr.Known().(*Base)
	return ok && child.invalid() == nil && child.startsInline()
}

// startRequirements starts b's requirements. On failure it returns the part
// ("requirement <name>") and the cause; what started is released by the
// rollback.
func (b *Base) startRequirements(ctx context.Context) (string, error) {
	reqs := b.cfg.requirements
	if len(reqs) == 0 {
		return "", nil // in a frame of its own: the start of a leaf does not grow its stack for requirements
	}
	return b.startAll(ctx, reqs)
}

// startAll is startRequirements with requirements to start.
//
//go:noinline
func (b *Base) startAll(ctx context.Context, reqs []Requirement) (string, error) {
	states := make([]*reqState, len(reqs))
	backing := make([]reqState, len(reqs)) // one allocation for all of them
	for i, r := range reqs {
		backing[i] = reqState{r: r, name: r.Name()}
		states[i] = &backing[i]
	}
	for i, st := range states {
		for _, a := range st.r.After() {
			j := slices.IndexFunc(reqs, func(r Requirement) bool { return values.Same(r, a) })
			if j < 0 {
				name := "<nil>"
				if !values.IsNil(a) {
					name = a.Name()
				}
				return "requirement " + st.name, fmt.Errorf("%w: After(%s): not a requirement of %s", ErrInvalidOption, name, b.name)
			}
			states[i].after = append(states[i].after, j)
		}
	}
	// The channels along After edges, only where someone waits on them: a
	// requirement's start for those it comes after, and their release for
	// it.
	for _, st := range states {
		if len(st.after) > 0 {
			st.released = make(chan struct{})
		}
		for _, j := range st.after {
			if states[j].started == nil {
				states[j].started = make(chan struct{})
			}
		}
	}
	for _, st := range states {
		if sr, ok := st.r.(StaticRequirement); ok {
			if known := sr.Known(); !values.IsNil(known) {
				if err := Validate(known); err != nil {
					return "requirement " + st.name, err
				}
			}
		}
	}
	if path := afterCycle(states); path != nil {
		return "requirement " + path[0], &CycleError{Path: path}
	}
	if cycle, via := staticCycle(b); cycle != nil {
		part := "requirement"
		for _, st := range states {
			if knownBase(st.r) == via {
				part = "requirement " + st.name
				break
			}
		}
		return part, cycle
	}
	// Only a valid graph is kept for the release: it waits along After edges.
	b.mu.Lock()
	b.reqs = states
	b.mu.Unlock()
	keys := make(serviceSet, len(states)) // under b.mu, while the requirements resolve

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		failed   *reqState
		firstErr error
		others   []error // failures of their own met once the first cancelled the rest
	)
	start := func(st *reqState) {
		err := b.startRequirement(ctx, st, states, keys)
		if err == nil {
			return
		}
		if errors.Is(err, errSkipped) {
			err = context.Cause(ctx)
		}
		mu.Lock()
		switch {
		case failed == nil:
			failed, firstErr = st, err
			cancel(err)
		case !errors.Is(err, context.Canceled) && !errors.Is(err, context.Cause(ctx)):
			// Not the cancellation the first failure caused: a
			// failure of its own, which must not be lost.
			others = append(others, fmt.Errorf("requirement %s: %w", st.name, err))
		}
		mu.Unlock()
	}
	// Each requirement starts in a goroutine of its own, concurrently,
	// except those whose whole start runs no user code: they start one
	// after the other, once the others are under way, in as many runs as
	// there are processors to run them (this goroutine takes the last).
	var inline []*reqState
	for _, st := range states {
		if startsInline(st) {
			inline = append(inline, st)
			continue
		}
		wg.Go(func() { start(st) })
	}
	runs := inlineRuns(inline)
	for _, run := range runs[1:] {
		wg.Go(func() {
			for _, st := range run {
				start(st)
			}
		})
	}
	for _, st := range runs[0] {
		start(st)
	}
	wg.Wait()
	if failed != nil {
		return "requirement " + failed.name, errors.Join(append([]error{firstErr}, others...)...)
	}
	return "", nil
}

var errSkipped = errors.New("skipped")

// startRequirement starts one requirement once those it comes after are up;
// keys, under b.mu, are the services b's requirements resolved to so far.
func (b *Base) startRequirement(ctx context.Context, st *reqState, states []*reqState, keys serviceSet) error {
	for _, j := range st.after {
		select {
		case <-states[j].started:
		case <-ctx.Done():
			return errSkipped
		}
	}
	if ctx.Err() != nil {
		return errSkipped
	}
	svc, err := b.resolve(ctx, st.name, st.r)
	if err != nil {
		return err
	}
	if err := Validate(svc); err != nil {
		return fmt.Errorf("resolved to an unusable service: %w", err)
	}
	if err := b.checkResolvedName(st, states); err != nil {
		return err
	}
	if bb, ok := svc.(baser); ok {
		// Before attempted is set: a service further up the chain must not
		// be released (stopped) by this rollback.
		if err := checkCycle(ctx, bb.coreBase()); err != nil {
			return err
		}
	}
	b.mu.Lock()
	if other := keys.claim(svc, st); other != nil {
		b.mu.Unlock()
		return fmt.Errorf("%w: service %s is required twice by %s", ErrInvalidOption, svc.Name(), b.name)
	}
	st.svc = svc
	_, static := st.r.(StaticRequirement)
	st.attempted = static // its cycles were looked for before anything started
	b.mu.Unlock()
	if !static {
		// Now that it is known, walk again: a cycle may go through it and
		// the After edges of b's requirements.
		if cycle, _ := staticCycle(b); cycle != nil {
			return cycle
		}
		b.mu.Lock()
		st.attempted = true
		b.mu.Unlock()
	}

	if st.r.Owned() {
		err = b.require(ctx, svc)
	} else {
		err = await(ctx, svc)
	}
	if err != nil {
		return err
	}
	if err := b.healthcheck(ctx, st.name, svc); err != nil {
		if bb, ok := svc.(baser); ok {
			if why := bb.coreBase().notRunning(); why != nil {
				return why // it failed meanwhile: its cause, not only "is stopping"
			}
		}
		return err
	}
	if bb, ok := svc.(baser); ok {
		// A *Base tells its parents when it begins to stop (stopAsync).
		if err := bb.coreBase().addDependent(b, st.name); err != nil {
			return err
		}
		st.ok = true
		st.markStarted()
		return nil
	}
	st.ok = true
	st.markStarted()
	b.workers.start(b, "requirement "+st.name, func(ctx context.Context) error {
		select {
		case <-svc.Done():
			if ctx.Err() != nil {
				return nil // b is stopping: the release reports what svc met
			}
			err := svc.Err()
			var failure error = &requirementError{name: st.name, err: err}
			if err == nil {
				err = &requirementStoppedError{name: st.name}
				failure = err
			}
			emit(b, ctx, RequirementFailed{Service: b.name, Requirement: st.name, Err: err})
			return failure
		case <-ctx.Done():
			return nil
		}
	})
	return nil
}

// addDependent records parent as holding b under name, to be told when b
// begins to stop; unless b is no longer Running, which is then the error.
func (b *Base) addDependent(parent *Base, name string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.notRunningLocked(); err != nil {
		return err
	}
	b.dependents.add(parent, name)
	return nil
}

// notRunning returns nil if b is Running, else an error saying what it is
// and wrapping the cause of its failure, if any.
func (b *Base) notRunning() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.notRunningLocked()
}

// notRunningLocked is notRunning with b.mu held.
func (b *Base) notRunningLocked() error {
	if b.state == StateRunning {
		return nil
	}
	if b.cause != nil {
		return fmt.Errorf("%s is %s: %w", b.name, b.state, b.cause)
	}
	return fmt.Errorf("%s is %s", b.name, b.state)
}

// releaseRequirements releases what startRequirements acquired, each after
// the requirements that came after it, independent ones concurrently.
func (b *Base) releaseRequirements(ctx context.Context) []error {
	b.mu.Lock()
	states := b.reqs
	b.mu.Unlock()
	if len(states) == 0 {
		return nil // in a frame of its own: the stop of a leaf does not grow its stack for release
	}
	return b.releaseAll(ctx, states)
}

// releaseAll is releaseRequirements with requirements to release.
//
//go:noinline
func (b *Base) releaseAll(ctx context.Context, states []*reqState) []error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	// waiters[i] are the requirements that came after requirement i: it is
	// released once they are. Without After edges there are none.
	var waiters [][]*reqState
	for _, later := range states {
		for _, i := range later.after {
			if waiters == nil {
				waiters = make([][]*reqState, len(states))
			}
			waiters[i] = append(waiters[i], later)
		}
	}
	waitersOf := func(i int) []*reqState {
		if waiters == nil {
			return nil
		}
		return waiters[i]
	}
	record := func(st *reqState, err error) {
		if err == nil {
			return
		}
		if ste := (*StopTimeoutError)(nil); !errors.As(err, &ste) || ste.Service != b.name {
			err = fmt.Errorf("requirement %s: %w", st.name, err)
		}
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	// A *Base that nothing came after is released on this goroutine: every
	// such stop begins first (its units' context is cancelled), then each
	// stop sequence that would wait for user code is launched in a
	// goroutine of its own, then the others run here, one after the other
	// (stopsInline: their units have ended by then), and then each is
	// waited for. The others are released in goroutines of their own, each
	// once those that came after it are.
	type held struct {
		st     *reqState
		child  *Base
		wait   bool
		launch bool // its stop sequence is still to be run
	}
	inline := make([]held, 0, len(states))
	for i, st := range states {
		b.mu.Lock()
		svc, attempted := st.svc, st.attempted
		b.mu.Unlock()
		if bb, ok := svc.(baser); ok && attempted && len(waitersOf(i)) == 0 {
			inline = append(inline, held{st: st, child: bb.coreBase()})
			continue
		}
		wg.Go(func() {
			defer st.markReleased()
			for _, later := range waitersOf(i) {
				<-later.released
			}
			if attempted {
				record(st, b.release(ctx, st.name, st.r.Owned(), svc))
			}
		})
	}
	for i := range inline {
		h := &inline[i]
		h.wait, h.launch = b.dropHold(ctx, h.child, h.st.r.Owned())
	}
	for i := range inline {
		if h := &inline[i]; h.launch && !h.child.stopsInline() {
			go h.child.stopAsync(ctx)
			h.launch = false
		}
	}
	for _, h := range inline {
		if h.launch {
			h.child.stopAsync(ctx)
		}
	}
	for _, h := range inline {
		if h.wait {
			record(h.st, b.awaitRelease(h.child))
		}
		h.st.markReleased()
	}
	wg.Wait()
	return errs
}

// Dependency is a snapshot of one requirement of a service, for tools that
// show or walk a tree of services (package deps draws graphs, package health
// serves nested probes).
type Dependency struct {
	// Requirement is the requirement as registered.
	Requirement Requirement
	// Service is what it resolved to in the service's start; nil before
	// that start resolved it.
	Service Service
}

// Dependencies returns the service's requirements in registration order,
// with the services they resolved to so far, then the services its units
// hold (Host.Acquire), in the order they were acquired. It is safe for concurrent use.
func (b *Base) Dependencies() []Dependency {
	if b.invalid() != nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	deps := make([]Dependency, len(b.cfg.requirements))
	for i, r := range b.cfg.requirements {
		deps[i].Requirement = r
		if i < len(b.reqs) {
			deps[i].Service = b.reqs[i].svc
		}
	}
	if len(b.heldReqsLocked()) > 0 {
		deps = append(deps, b.heldDependenciesLocked()...)
	}
	return deps
}

// serviceSet finds a service required twice by one parent in constant
// time: it maps each resolved service, by its *Base when it is built on
// one (so that a service seen as *Store and as *Base is one), else by its
// value when that can be a map key, to the requirement that resolved it.
type serviceSet map[any]*reqState

// claim records svc for st and returns the other requirement that resolved
// the same service, if any. A value that cannot be a map key is never the
// same as another.
func (m serviceSet) claim(svc Service, st *reqState) (other *reqState) {
	var key any = svc
	if bb, ok := svc.(baser); ok {
		key = bb.coreBase()
	} else if !reflect.TypeOf(svc).Comparable() {
		return nil
	}
	defer func() {
		if recover() != nil { // a comparable type holding an uncomparable value
			other = nil
		}
	}()
	if o := m[key]; o != nil && o != st {
		return o
	}
	m[key] = st
	return nil
}

// requirementError is the failure of a parent whose requirement failed:
// "requirement <name> failed: <its cause>". Its message is built when read,
// not when the failure goes up a chain of parents, each wrapping the one
// below: going up is then constant time per parent.
type requirementError struct {
	name   string // the requirement's name in the parent
	err    error  // the requirement's cause
	origin string // the service where the failure began, which logged it; "" if none did
}

// failureOrigin is the origin of a failure that a *Base named name fails
// its parents with: where cause began, if in a requirement of name's, else
// name itself.
func failureOrigin(name string, cause error) string {
	if re := (*requirementError)(nil); errors.As(cause, &re) && re.origin != "" {
		return re.origin
	}
	return name
}

// requirementStoppedError is the failure of a parent whose requirement
// stopped under it without failing: "requirement <name> stopped".
type requirementStoppedError struct{ name string }

// Error names the requirement.
func (e *requirementStoppedError) Error() string { return "requirement " + e.name + " stopped" }

// Error names the requirement and its cause.
func (e *requirementError) Error() string {
	return "requirement " + e.name + " failed: " + e.err.Error()
}

// Unwrap returns the requirement's cause.
func (e *requirementError) Unwrap() error { return e.err }
