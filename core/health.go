package core

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/coreservice/coreservice/internal/names"
	"github.com/coreservice/coreservice/internal/values"
)

// Check is a named health check hosted by a service. Package health builds
// them (health.Check); register one with Config.AddCheck.
//
// The service runs every check once at start (a failure fails the start,
// unless the check is a StartupGraceCheck in its grace), on every
// Healthcheck, and on every monitor tick while Running; the monitor fails
// the service once a check has failed Threshold times in a row (failures
// in a startup grace do not count).
type Check interface {
	// Name identifies the check within its service; it must be non-empty
	// and unique there.
	Name() string
	// Check returns nil when healthy. ctx carries the check's deadline;
	// when that deadline ends it, context.Cause(ctx) is ErrCheckTimeout,
	// and any other end of ctx comes from the caller.
	Check(ctx context.Context) error
	// Timeout is the deadline of one run, given the service's
	// MonitorInterval. It must be positive.
	Timeout(monitorInterval time.Duration) time.Duration
	// Threshold is how many consecutive failures on monitor ticks fail the
	// service. It must be at least 1.
	Threshold() int
}

// StartupGraceCheck is a Check with a startup grace, as Kubernetes'
// startupProbe: package health builds them (health.StartupGrace).
//
// Until its grace ends, a failure of the check makes the service not ready
// (Healthcheck and the probes report it) but never fails it: the run at
// Start does not gate the start, and failures on monitor ticks count
// towards no Threshold. The grace ends StartupGrace after the service
// became Running (the end of its Start), or at the first run of the check
// that passes, whichever comes first; from then on the check is an
// ordinary one, whose failures the monitor counts from zero against its
// Threshold.
type StartupGraceCheck interface {
	Check
	// StartupGrace is the length of the grace; 0 means none, and the
	// check gates the start as any other does. It must not be negative.
	StartupGrace() time.Duration
}

// graceClock is what the startup grace of a service's checks depends on.
type graceClock struct {
	mu      sync.Mutex
	running time.Time // when the service's monitor started, at the end of Start; zero before
	passed  []bool    // per check: a run has passed, which ended its grace
}

// startupGrace is the startup grace of check i, or 0.
func (b *Base) startupGrace(i int) time.Duration {
	if g, ok := b.cfg.checks[i].(StartupGraceCheck); ok {
		return g.StartupGrace()
	}
	return 0
}

// inGrace reports whether check i is in its startup grace at now.
func (b *Base) inGrace(i int, now time.Time) bool {
	g := b.cfg.grace
	if g == nil {
		return false
	}
	d := b.startupGrace(i)
	if d <= 0 {
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.passed != nil && g.passed[i] {
		return false
	}
	return g.running.IsZero() || now.Sub(g.running) < d
}

// checkPassed ends the startup grace of check i, which has just passed.
func (b *Base) checkPassed(i int) {
	g := b.cfg.grace
	if g == nil || b.startupGrace(i) <= 0 {
		return // no grace to end: inGrace never reads passed[i]
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.passed == nil {
		g.passed = make([]bool, len(b.cfg.checks))
	}
	g.passed[i] = true
}

// InStartupGrace reports whether the check named check is in its startup
// grace now (see StartupGraceCheck): the service is Starting or Running,
// the check has a startup grace that has not run out, and no run of the
// check has passed yet. The probes of package health use it to show a
// failure in grace as "in startup grace: <error>".
func (b *Base) InStartupGrace(check string) bool {
	if b.invalid() != nil {
		return false
	}
	if st := b.State(); st != StateStarting && st != StateRunning {
		return false
	}
	for i, c := range b.cfg.checks {
		if c.Name() == check {
			return b.inGrace(i, time.Now())
		}
	}
	return false
}

// ValidateHealthcheck returns an error matching ErrInvalidOption when s is
// a type embedding *Base that has a Healthcheck method of its own (declared
// by it, or by a type it embeds above the *Base): the monitor and the
// probes, which have only the *Base, would never run that method, and the
// health of s would have two truths. Health of its own is declared as a
// check instead, which Healthcheck, the monitor and the probes all run:
//
//	a := &API{}
//	a.Base = core.NewService(core.Name("api"), health.Check("stats", a.checkStats))
//
// Run, the requirements of package deps (at the parent's Start) and the
// probes of package health call it, so such a type is an error wherever it
// is handed to the library; nil for any other service.
func ValidateHealthcheck(s Service) error {
	if values.IsNil(s) {
		return nil
	}
	if owner := healthcheckOwner(reflect.ValueOf(s)); owner != nil {
		return fmt.Errorf("%w: service %s: type %T embeds *core.Base but its Healthcheck is %v's own, "+
			"which the monitor and the probes would never run: "+
			"drop the method and register its logic as a check (health.Check)", ErrInvalidOption, s.Name(), s, owner)
	}
	return nil
}

var baseType = reflect.TypeFor[*Base]()

// maxEmbedDepth bounds the walk down embedded fields.
const maxEmbedDepth = 32

// healthcheckOwner returns the type whose own Healthcheck method is the
// Healthcheck of v, when v embeds a *Base (at any depth) and that method
// is not Base's; else nil. A method promoted through embedding is a
// wrapper the compiler generates, which runtime.FuncForPC places in the
// file "<autogenerated>"; a declared one is in its source file. So it
// walks down the embedded fields, breadth first as Go resolves selectors,
// to the shallowest one whose Healthcheck is declared by its own type.
func healthcheckOwner(v reflect.Value) reflect.Type {
	if !embeds(v.Type(), maxEmbedDepth) {
		return nil // not built on Base: its Healthcheck is the only one
	}
	level := []reflect.Value{v}
	for depth := 0; len(level) > 0 && depth <= maxEmbedDepth; depth++ {
		var next []reflect.Value
		for _, v := range level {
			for v.Kind() == reflect.Interface && !v.IsNil() {
				v = v.Elem()
			}
			t := v.Type()
			switch {
			case t == baseType || t == baseType.Elem():
				return nil // Base's Healthcheck is the shallowest
			case declaresHealthcheck(t):
				return t
			}
			next = append(next, embedded(v)...)
		}
		level = next
	}
	return nil
}

// embedded returns the embedded fields of the struct v is or points to
// (zero values under a nil pointer, so their types can still be walked).
func embedded(v reflect.Value) []reflect.Value {
	t := v.Type()
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
		if v.IsNil() {
			v = reflect.Zero(t)
		} else {
			v = v.Elem()
		}
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	var out []reflect.Value
	for i := range t.NumField() {
		if t.Field(i).Anonymous {
			out = append(out, v.Field(i))
		}
	}
	return out
}

// embeds reports whether t is, or embeds within depth levels, a Base or
// *Base. The bound stops on a type that embeds a pointer to itself.
func embeds(t reflect.Type, depth int) bool {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == baseType.Elem() {
		return true
	}
	if t.Kind() != reflect.Struct || depth == 0 {
		return false
	}
	for i := range t.NumField() {
		if f := t.Field(i); f.Anonymous && embeds(f.Type, depth-1) {
			return true
		}
	}
	return false
}

// declaresHealthcheck reports whether t, or the type it points to, or a
// pointer to it, has a Healthcheck method that its own code declares (not
// one promoted from a field).
func declaresHealthcheck(t reflect.Type) bool {
	ts := []reflect.Type{t}
	if t.Kind() == reflect.Pointer {
		ts = append(ts, t.Elem())
	} else {
		ts = append(ts, reflect.PointerTo(t))
	}
	for _, t := range ts {
		m, ok := t.MethodByName("Healthcheck")
		if !ok || t.Kind() == reflect.Interface {
			continue
		}
		pc := m.Func.Pointer()
		if fn := runtime.FuncForPC(pc); fn != nil {
			if file, _ := fn.FileLine(pc); file != "<autogenerated>" {
				return true
			}
		}
	}
	return false
}

// validateChecks reports checks with an empty or repeated name, a bad
// timeout or threshold, requirements whose name is not a valid probe path
// segment (internal/names), and names shared by two requirements or by a
// check and a requirement (probes address them by name).
func (b *Base) validateChecks() error {
	var errs []error
	seen := make(map[string]bool, len(b.cfg.checks))
	for _, c := range b.cfg.checks {
		name := c.Name()
		switch {
		case name == "":
			errs = append(errs, errors.New("check with an empty name"))
		case seen[name]:
			errs = append(errs, fmt.Errorf("check %q registered twice", name))
		}
		seen[name] = true
		if d := c.Timeout(b.cfg.monitorInterval); d <= 0 {
			errs = append(errs, fmt.Errorf("check %q: timeout %v, want > 0", name, d))
		}
		if n := c.Threshold(); n < 1 {
			errs = append(errs, fmt.Errorf("check %q: threshold %d, want >= 1", name, n))
		}
		if g, ok := c.(StartupGraceCheck); ok {
			if d := g.StartupGrace(); d < 0 {
				errs = append(errs, fmt.Errorf("check %q: startup grace %v, want >= 0", name, d))
			}
		}
	}
	reqNames := make(map[string]bool, len(b.cfg.requirements))
	for _, r := range b.cfg.requirements {
		name := r.Name()
		switch err := names.Check(name); {
		case err != nil:
			errs = append(errs, fmt.Errorf("requirement %q: %w: name it (deps.Name)", name, err))
		case reqNames[name]:
			errs = append(errs, fmt.Errorf("two requirements named %q: name one of them (deps.Name)", name))
		case seen[name]:
			errs = append(errs, fmt.Errorf("check %q has the name of a requirement: "+
				"probe paths (service/requirement/check) would be ambiguous", name))
		}
		reqNames[name] = true
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrInvalidOption, errors.Join(errs...))
	}
	return nil
}

// checkResolvedName checks the name of a requirement again once it is
// resolved, if it changed: a lazy requirement is named after the service
// it built, a name validateChecks could not know. It must be a valid name
// and differ from the names of the other requirements and of the checks.
// Of two requirements renamed to one name concurrently, the later check
// sees the other's new name.
func (b *Base) checkResolvedName(st *reqState, states []*reqState) error {
	name := st.r.Name()
	if name == st.name {
		return nil
	}
	if err := names.Check(name); err != nil {
		return fmt.Errorf("%w: requirement %s, once resolved: %w", ErrInvalidOption, st.name, err)
	}
	clash := ""
	for _, c := range b.cfg.checks {
		if c.Name() == name {
			clash = "check"
		}
	}
	for _, o := range states {
		if o != st && o.r.Name() == name {
			clash = "requirement"
		}
	}
	if clash != "" {
		return fmt.Errorf("%w: requirement %s, once resolved, is named %q, as a %s of %s: "+
			"probe paths (service/requirement/check) would be ambiguous: name it (deps.Name)",
			ErrInvalidOption, st.name, name, clash, b.name)
	}
	return nil
}

// errCheckTimeout is the cause of a check's context ended by its Timeout:
// it matches both ErrCheckTimeout and context.DeadlineExceeded.
var errCheckTimeout = fmt.Errorf("%w: %w", ErrCheckTimeout, context.DeadlineExceeded)

// runCheck runs one check under its timeout. Callers name the check in
// the error.
// Each run's duration is recorded in MetricHealthcheckDuration.
//
// With ends set, the run also ends when the service begins to stop: ctx is
// then not the service's lifetime context (or derived from it), whose
// children would be remembered by it.
func (b *Base) runCheck(ctx context.Context, i int, ends *workerSet) error {
	c := b.cfg.checks[i]
	var start time.Time
	metered := b.metrics.gate.On()
	if metered {
		start = time.Now()
	}
	cctx, cancel := context.WithTimeoutCause(ctx, c.Timeout(b.cfg.monitorInterval), errCheckTimeout)
	if ends != nil {
		defer ends.dropCloser(ends.onClose(cancel))
	}
	err := protect(func() error { return c.Check(cctx) })
	cancel()
	if metered {
		b.recordCheck(ctx, i, start, err)
	}
	if err == nil {
		b.checkPassed(i)
		return nil
	}
	if ends == nil && b.State() == StateStarting && b.inGrace(i, time.Now()) {
		// The run of Start (Healthcheck and the monitor run checks only
		// while Running): a check in its startup grace does not gate it.
		// Its result is recorded (by the check, for the probes) all the same.
		return nil
	}
	return err
}

// Healthcheck returns nil if the service is Running, every status its
// units set is Ready (Host.SetStatus), every requirement it holds is
// Running and, when it is a *Base, healthy by its own Healthcheck (so that
// a parent is healthy only if its requirements are, as its probe says),
// and every check passes; otherwise an error matching
// ErrUnhealthy that names the service and each failing part. It runs the
// checks (each under its own timeout) and waits for them. It is safe for
// concurrent use and changes nothing: failures here count towards no
// threshold, only the monitor's do.
//
// A type that embeds *Base must not define its own Healthcheck: the
// monitor and the probes, which have only the *Base, would not run it.
// Run, package deps and package health reject such a type
// (ValidateHealthcheck); declare its health as checks (health.Check) with
// its methods, which this Healthcheck, the monitor and the probes all run.
func (b *Base) Healthcheck(ctx context.Context) error { return b.check(ctx, true) }

// startCheck is the Healthcheck of b in a parent's start (of a registered
// requirement, or of one acquired by a unit): without the statuses of its
// units and the services they hold, in b and below it, which say whether
// it is ready, not whether it started.
func (b *Base) startCheck(ctx context.Context) error { return b.check(ctx, false) }

// check is Healthcheck, with (ready) or without the statuses of b's units
// and the services they hold.
func (b *Base) check(ctx context.Context, ready bool) error {
	if err := b.invalid(); err != nil {
		return fmt.Errorf("%w: %w", ErrUnhealthy, err)
	}
	b.mu.Lock()
	state, reqs := b.state, b.reqs
	if ready && len(b.heldReqsLocked()) > 0 {
		reqs = slices.Concat(reqs, b.heldLocked())
	}
	if state == StateRunning {
		b.checking++ // the stop waits for it before its OnStop hooks
		defer b.doneChecking()
	}
	b.mu.Unlock()
	if state != StateRunning {
		return fmt.Errorf("%w: %s is %s", ErrUnhealthy, b.name, state)
	}
	if len(b.cfg.checks) > 0 {
		// The checks end when the caller's ctx does, or when the stop begins.
		// Marked as b's, so that the checks reach b with core.Log(ctx).
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(b.own(ctx))
		defer cancel()
		defer b.workers.dropCloser(b.workers.onClose(cancel))
	}
	var errs []error
	if ready {
		errs = b.notReadyStatuses()
	}
	for _, r := range reqs {
		if st := r.svc.State(); st != StateRunning {
			errs = append(errs, fmt.Errorf("requirement %s is %s", r.name, st))
			continue
		}
		// A *Base requirement's health is its Healthcheck, bounded by its
		// checks' timeouts: a parent is healthy only if its requirements
		// are, as its probe (/readyz/<parent>) says. A requirement of
		// another type has only its State to go by (its Healthcheck is
		// user code that nothing bounds but ctx).
		if bb, ok := r.svc.(baser); ok {
			if err := bb.coreBase().check(ctx, ready); err != nil {
				errs = append(errs, fmt.Errorf("requirement %s: %w", r.name, err))
			}
		}
	}
	for i, c := range b.cfg.checks {
		if st := b.State(); st != StateRunning {
			errs = append(errs, fmt.Errorf("%s is %s", b.name, st))
			break // no check runs once the stop has begun
		}
		if err := b.runCheck(ctx, i, nil); err != nil {
			if b.inGrace(i, time.Now()) {
				err = fmt.Errorf("in startup grace: %w", err)
			}
			errs = append(errs, fmt.Errorf("check %s: %w", c.Name(), err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %s: %w", ErrUnhealthy, b.name, errors.Join(errs...))
	}
	return nil
}

// needsMonitor reports whether the monitor has anything to watch: checks,
// or requirements of a type other than *Base (a *Base tells its parents
// itself when it stops). A service with neither has no monitor timer.
func (b *Base) needsMonitor() bool {
	if len(b.cfg.checks) > 0 {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, r := range b.reqs {
		if _, ok := r.svc.(baser); !ok && r.svc != nil {
			return true
		}
	}
	return false
}

// foreignRequirementsRunning reports a requirement of a type other than
// *Base that is no longer Running: such a service has no way to tell its
// parents, so the monitor looks at each tick (a *Base tells them itself,
// the moment it begins to stop).
func (b *Base) foreignRequirementsRunning() error {
	b.mu.Lock()
	reqs := b.reqs
	b.mu.Unlock()
	for _, r := range reqs {
		if _, ok := r.svc.(baser); ok || r.svc == nil {
			continue
		}
		if st := r.svc.State(); st != StateRunning {
			err := fmt.Errorf("requirement %s is %s", r.name, st)
			emit(b, context.Background(), RequirementFailed{Service: b.name, Requirement: r.name, Err: err})
			return err
		}
	}
	return nil
}

// Checks returns the service's health checks in registration order.
func (b *Base) Checks() []Check {
	if b.invalid() != nil {
		return nil
	}
	return slices.Clone(b.cfg.checks)
}

// MonitorInterval returns how often the monitor runs the checks.
func (b *Base) MonitorInterval() time.Duration {
	if b.invalid() != nil {
		return 0
	}
	return b.cfg.monitorInterval
}
