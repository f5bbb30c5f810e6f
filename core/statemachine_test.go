package core_test

// A property-based state-machine test of the lifecycle (pgregory.net/rapid).
//
// The system under test is a small graph of real services built with the
// public API of core, task, health and deps:
//
//	r1: deps.Requires(a), deps.Requires(s)
//	r2: deps.Requires(s), deps.Await(a)
//	a, s: leaves (s is shared by r1 and r2; a is owned by r1, awaited by r2)
//
// Every service has a task whose next run fails on command, a health check
// whose result the test sets, and an OnStop hook that fails on command.
// rapid draws random sequences of actions (Start and Stop of any service,
// task failures, check flips, OnStop failures); requirement failures come
// from the failures of a and s, and from stopping them under their parents.
// A model predicts, after every action, each service's State, its Err (nil,
// or which injected causes it matches with errors.Is, and which it must
// not) and the result of Start and Stop. At the end every service is
// stopped, twice: the model predicts the first result and the second must
// be the same error.
//
// Time: each check runs in a testing/synctest bubble of its own, with
// rapid.SyncTest (rapid v1.3.0): rapid.Check runs outside any bubble (it
// calls t.Deadline, which synctest forbids inside one), and SyncTest runs
// each check's property, and each re-run while shrinking, in a fresh
// bubble whose *rapid.T is backed by the bubble's *testing.T. An action's
// effects are run to quiescence with synctest.Wait, after sleeping (fake
// time) past one task period and one monitor interval, so that a failure
// injected into a running service has fired and propagated. The bubble also
// proves that no goroutine outlives a check: synctest.Test fails when one is
// left blocked.
//
// Where the code may legitimately take one of several paths (two
// requirements of a parent starting concurrently when one of them fails;
// which of two parents releasing a shared service is the last), the model
// allows each, and adopts what it observes.
//
// Bounded: the default run (100 checks of about 30 actions each) takes
// about a second under -race, since fake time costs nothing; run more with
// -rapid.checks=N and longer sequences with -rapid.steps=N. Every Start and
// Stop must return within smCallBound of fake time, so a hang fails the
// check instead of stalling the test.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"pgregory.net/rapid"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/deps"
	"github.com/coreservice/coreservice/health"
	"github.com/coreservice/coreservice/internal/coretest"
	"github.com/coreservice/coreservice/task"
)

type smID int

const (
	smA smID = iota
	smS
	smR1
	smR2
	smN
)

var smNames = [smN]string{"a", "s", "r1", "r2"}

func (x smID) String() string { return smNames[x] }

var smAll = []smID{smA, smS, smR1, smR2}

// The graph, as the model sees it.
var (
	smOwned   = [smN][]smID{smR1: {smA, smS}, smR2: {smS}}
	smAwaited = [smN][]smID{smR2: {smA}}
)

// smDependents returns the parents that fail when x stops: those that own
// it and those that await it.
func smDependents(x smID) []smID {
	var ds []smID
	for _, p := range smAll {
		if slices.Contains(smOwned[p], x) || slices.Contains(smAwaited[p], x) {
			ds = append(ds, p)
		}
	}
	return ds
}

const (
	smEvery   = time.Second     // the task's period
	smMonitor = time.Second     // MonitorInterval
	smTimeout = 5 * time.Second // StartTimeout and StopTimeout
	// smSettle is longer than a task period plus a monitor interval: an
	// injected task failure or bad check has been seen by then.
	smSettle = smEvery + smMonitor + smMonitor/2
	// smCallBound bounds every call: a StartTimeout and the rollback's
	// StopTimeout steps (units, one OnStop hook, each level of requirements),
	// with room to spare.
	smCallBound = 10 * smTimeout
)

// The injected causes, one of each kind per service.
var (
	smTaskErr  = smErrs("task failure")
	smCheckErr = smErrs("bad check")
	smStopErr  = smErrs("OnStop failure")
)

func smErrs(what string) (errs [smN]error) {
	for x := range smN {
		errs[x] = fmt.Errorf("injected %s of %s", what, smNames[x])
	}
	return errs
}

// smUniverse is every sentinel the model tracks: an error may match one
// only where the model says it must or may.
var smUniverse = func() []error {
	u := []error{core.ErrStartup, context.DeadlineExceeded}
	for x := range smN {
		u = append(u, smTaskErr[x], smCheckErr[x], smStopErr[x])
	}
	return u
}()

// smKnobs are what the test sets on one service.
type smKnobs struct {
	failTask atomic.Bool // the task's next run fails
	checkBad atomic.Bool // the check fails
	stopFail atomic.Bool // the OnStop hook fails
}

type smSystem struct {
	svcs  [smN]*core.Base
	knobs [smN]*smKnobs
}

func newSMSystem() *smSystem {
	sys := &smSystem{}
	log := slog.New(slog.DiscardHandler)
	opts := func(x smID) []core.Option {
		k := &smKnobs{}
		sys.knobs[x] = k
		return []core.Option{
			core.Name(smNames[x]), core.Logger(log), core.MonitorInterval(smMonitor),
			core.StartTimeout(smTimeout), core.StopTimeout(smTimeout),
			task.Func("work", func(context.Context) error {
				if k.failTask.CompareAndSwap(true, false) {
					return smTaskErr[x]
				}
				return nil
			}, task.Every(smEvery)),
			health.Check("ok", func(context.Context) error {
				if k.checkBad.Load() {
					return smCheckErr[x]
				}
				return nil
			}),
			core.OnStop(func(context.Context) error {
				if k.stopFail.Load() {
					return smStopErr[x]
				}
				return nil
			}),
		}
	}
	sys.svcs[smA] = core.NewService(opts(smA)...)
	sys.svcs[smS] = core.NewService(opts(smS)...)
	sys.svcs[smR1] = core.NewService(append(opts(smR1),
		deps.Requires(sys.svcs[smA]), deps.Requires(sys.svcs[smS]))...)
	sys.svcs[smR2] = core.NewService(append(opts(smR2),
		deps.Requires(sys.svcs[smS]), deps.Await(sys.svcs[smA]))...)
	return sys
}

// errWant is what the model knows of an error.
type errWant struct {
	all    []error // each must match
	any    []error // at least one must match, when not empty
	may    []error // may match
	nonNil bool    // must be non-nil, also when it matches no sentinel
}

func (w errWant) isNil() bool { return !w.nonNil && len(w.all) == 0 && len(w.any) == 0 }

func (w errWant) String() string {
	if w.isNil() && len(w.may) == 0 {
		return "nil"
	}
	var parts []string
	list := func(label string, errs []error) {
		if len(errs) == 0 {
			return
		}
		names := make([]string, len(errs))
		for i, e := range errs {
			names[i] = fmt.Sprintf("%q", e.Error())
		}
		parts = append(parts, label+" "+strings.Join(names, ", "))
	}
	if w.isNil() {
		parts = append(parts, "nil or")
	} else {
		parts = append(parts, "non-nil")
	}
	list("matching all of", w.all)
	list("matching one of", w.any)
	list("maybe matching", w.may)
	return strings.Join(parts, " ")
}

// match returns why err is not what w says, or "".
func (w errWant) match(err error) string {
	if err == nil {
		if !w.isNil() {
			return "got nil"
		}
		return ""
	}
	explained := w.nonNil || len(w.all) > 0 || len(w.any) > 0
	for _, e := range w.all {
		if !errors.Is(err, e) {
			return fmt.Sprintf("does not match %q", e)
		}
	}
	if len(w.any) > 0 && !slices.ContainsFunc(w.any, func(e error) bool { return errors.Is(err, e) }) {
		return "matches none of the causes it must match one of"
	}
	for _, u := range smUniverse {
		if !errors.Is(err, u) {
			continue
		}
		if !slices.Contains(w.all, u) && !slices.Contains(w.any, u) && !slices.Contains(w.may, u) {
			return fmt.Sprintf("matches %q, which it must not", u)
		}
		explained = true
	}
	if !explained {
		return "got an error, want nil"
	}
	return ""
}

// sentinels of a observed error, as an exact errWant.
func exactWant(err error) errWant {
	if err == nil {
		return errWant{}
	}
	w := errWant{nonNil: true}
	for _, u := range smUniverse {
		if errors.Is(err, u) {
			w.all = append(w.all, u)
		}
	}
	return w
}

// union merges what may be in an error built from parts: a part's must
// stays a must only if must is true.
func (w errWant) with(part errWant, must bool) errWant {
	if must {
		w.all = appendNew(w.all, part.all...)
		w.may = appendNew(w.may, part.any...)
		w.nonNil = w.nonNil || part.nonNil || len(part.all) > 0 || len(part.any) > 0
	} else {
		w.may = appendNew(w.may, part.all...)
		w.may = appendNew(w.may, part.any...)
	}
	w.may = appendNew(w.may, part.may...)
	return w
}

func appendNew(s []error, es ...error) []error {
	for _, e := range es {
		if !slices.Contains(s, e) {
			s = append(s, e)
		}
	}
	return s
}

// smOutcome is one possible result of an action for one service.
type smOutcome struct {
	state       core.State
	err         errWant // Err
	stop        errWant // what Stop returns once final
	pendingTask bool    // of an alternative: the task failure is still to come
}

// smModel is the predicted system. After each action the model adopts what
// it observed (where it allowed several outcomes).
type smModel struct {
	out      [smN]smOutcome
	holders  [smN]int // as *Base counts them: direct Starts and parents' acquires
	failTask [smN]bool
	checkBad [smN]bool
	stopFail [smN]bool
}

// smPred is the prediction of one action.
type smPred struct {
	next smModel
	alts map[smID][]smOutcome // services with several possible outcomes
	ret  *errWant             // the result of the Start or Stop called
}

func (m *smModel) predict() *smPred {
	return &smPred{next: *m, alts: map[smID][]smOutcome{}}
}

// ownStop is what x's own OnStop hook contributes to its stop.
func (m *smModel) ownStop(x smID) errWant {
	if m.stopFail[x] {
		return errWant{all: []error{smStopErr[x]}}
	}
	return errWant{}
}

// startStop is what x's stop, or the rollback of its start, returns when
// the start may have launched x's task with a failure pending: the run may
// fail once the stop has begun, and is then the stop's error.
func (m *smModel) startStop(x smID) errWant {
	w := m.ownStop(x)
	if m.failTask[x] {
		w = w.with(errWant{all: []error{smTaskErr[x]}}, false)
	}
	return w
}

// ownStartFailure reports whether x, its requirements being Running, fails
// its own start (or just after it), and with which Err, leaving out the
// rollback's errors.
func (m *smModel) ownStartFailure(x smID) (bool, errWant, bool) {
	switch {
	case m.checkBad[x] && m.failTask[x]:
		// The check fails the start, unless the task's first run did first.
		return true, errWant{all: []error{core.ErrStartup}, any: []error{smCheckErr[x], smTaskErr[x]},
			may: []error{smCheckErr[x], smTaskErr[x]}}, true
	case m.checkBad[x]:
		return true, errWant{all: []error{core.ErrStartup, smCheckErr[x]}}, true
	case m.failTask[x]:
		// The first run fails at once: during the start, or just after it.
		return true, errWant{all: []error{smTaskErr[x]}, may: []error{core.ErrStartup}}, false
	}
	return false, errWant{}, false
}

// propagated is the cause a parent gets when x fails: x's Err, except that
// the rollback's errors of a failed start may not be in it yet.
func propagated(w errWant) errWant {
	p := errWant{nonNil: true, any: w.any, may: w.may}
	for _, e := range w.all {
		if isStopErr(e) {
			p.may = appendNew(p.may, e)
		} else {
			p.all = append(p.all, e)
		}
	}
	return p
}

func isStopErr(e error) bool { return slices.Contains(smStopErr[:], e) }

// startLeaf predicts a Start of a New leaf with nothing else starting.
func (p *smPred) startLeaf(c smID) {
	m := &p.next
	fails, err, atStart := m.ownStartFailure(c)
	pre := *m
	m.failTask[c] = false
	if !fails {
		m.out[c] = smOutcome{state: core.StateRunning}
		return
	}
	stop := pre.startStop(c)
	m.out[c] = smOutcome{state: core.StateFailed, err: err.with(stop, atStart), stop: stop}
}

// startRoot predicts a Start of a New root r.
func (p *smPred) startRoot(r smID) {
	m := &p.next
	pre := *m
	for _, c := range smOwned[r] {
		m.holders[c]++
	}
	// The failures r's start meets. A certain one fails r's start at its
	// requirements (r's OnStop hook does not run); when all are uncertain
	// (the first run of a task that r's requirement launches fails), r may
	// get to Running first and then fail.
	type source struct {
		cause   errWant
		certain bool
	}
	var sources []source
	var started []smID
	certain, awaitNew := false, false
	for _, c := range smOwned[r] {
		switch st := pre.out[c].state; {
		case st == core.StateNew:
			started = append(started, c)
			if fails, err, atStart := pre.ownStartFailure(c); fails {
				sources = append(sources, source{cause: err.with(pre.ownStop(c), false), certain: atStart})
				certain = certain || atStart
			}
		case st != core.StateRunning: // final
			sources = append(sources, source{cause: propagated(pre.out[c].err), certain: true})
			certain = true
		}
	}
	for _, c := range smAwaited[r] {
		switch st := pre.out[c].state; {
		case st == core.StateNew:
			awaitNew, certain = true, true // nobody starts it: r times out, unless something fails first
		case st != core.StateRunning:
			sources = append(sources, source{cause: propagated(pre.out[c].err), certain: true})
			certain = true
		}
	}

	if len(sources) == 0 && !awaitNew {
		for _, c := range started {
			m.out[c] = smOutcome{state: core.StateRunning}
		}
		fails, err, atStart := pre.ownStartFailure(r)
		m.failTask[r] = false
		if !fails {
			m.out[r] = smOutcome{state: core.StateRunning}
			return
		}
		// r fails on its own once its requirements are up: its rollback (or
		// stop) runs its OnStop hook and releases them.
		p.cascade(r, leftFail, err)
		o := m.out[r]
		o.stop = o.stop.with(pre.startStop(r), false)
		o.err = o.err.with(o.stop, atStart) // a failed start's Err holds the rollback's errors
		m.out[r] = o
		return
	}
	if !certain {
		// r may get past its requirements: then its own failure may come first.
		if fails, own, _ := pre.ownStartFailure(r); fails {
			sources = append(sources, source{cause: own})
		}
	}

	var err errWant
	switch {
	case len(sources) == 0: // awaitNew
		err = errWant{all: []error{core.ErrStartup, context.DeadlineExceeded}}
	case len(sources) == 1:
		err = sources[0].cause
	default:
		// The first failure wins; the others may be in the error (through
		// the rollback) or not.
		anyOK := true
		for _, s := range sources {
			defining := appendNew(slices.Clone(s.cause.all), s.cause.any...)
			defining = slices.DeleteFunc(defining, func(e error) bool { return e == core.ErrStartup || isStopErr(e) })
			if len(defining) == 0 {
				anyOK = false
			}
			err.any = appendNew(err.any, defining...)
			err = err.with(s.cause, false)
		}
		if !anyOK {
			err.any = nil
		}
		err.nonNil = true
	}
	if certain {
		err = err.with(errWant{all: []error{core.ErrStartup}}, true)
	} else {
		err.may = appendNew(err.may, core.ErrStartup)
	}
	var stop errWant
	if !certain {
		stop = stop.with(pre.startStop(r), false) // r's OnStop runs if it got past its requirements
	}
	for _, c := range smOwned[r] {
		m.holders[c] = max(m.holders[c]-1, 0)
		switch {
		case slices.Contains(started, c):
			own := pre.ownStop(c)
			fails, cerr, atStart := pre.ownStartFailure(c)
			m.failTask[c] = false
			failed := smOutcome{state: core.StateFailed, err: cerr.with(pre.startStop(c), atStart), stop: pre.startStop(c)}
			aborted := smOutcome{state: core.StateTerminated, stop: own}
			if pre.failTask[c] {
				// The task's first run may fail while the rollback stops c:
				// the failure is then c's stop error.
				aborted.stop = aborted.stop.with(errWant{all: []error{smTaskErr[c]}}, false)
			}
			// Unless c's failure is the only one, c's start may have been
			// aborted, or never begun (r gave up first): c is then New.
			never := smOutcome{state: core.StateNew, pendingTask: pre.failTask[c]}
			var alts []smOutcome
			switch {
			case fails && len(sources) == 1:
				alts = []smOutcome{failed}
			case fails:
				alts = []smOutcome{failed, aborted, never}
			default:
				alts = []smOutcome{aborted, never}
			}
			p.alts[c] = alts
			// r was c's only holder: its release waits for c's stop.
			both := alts[0].stop
			for _, a := range alts[1:] {
				both = mergeAlternatives(both, a.stop)
			}
			stop = stop.with(both, true)
		case pre.out[c].state != core.StateRunning && m.holders[c] == 0:
			// r was its last holder, if it got to acquire it: certainly so
			// when c's is the only failure.
			stop = stop.with(pre.out[c].stop, len(sources) == 1)
		}
	}
	m.failTask[r] = false
	m.out[r] = smOutcome{state: core.StateFailed, err: err.with(stop, certain), stop: stop}
}

// mergeAlternatives is what is known of an error that is a or b.
func mergeAlternatives(a, b errWant) errWant {
	var w errWant
	for _, e := range a.all {
		if slices.Contains(b.all, e) {
			w.all = append(w.all, e)
		} else {
			w.may = appendNew(w.may, e)
		}
	}
	for _, e := range b.all {
		if !slices.Contains(w.all, e) {
			w.may = appendNew(w.may, e)
		}
	}
	w.may = appendNew(w.may, a.any...)
	w.may = appendNew(w.may, b.any...)
	w.may = appendNew(w.may, a.may...)
	w.may = appendNew(w.may, b.may...)
	w.nonNil = a.nonNil && b.nonNil
	return w
}

// How a service left StateRunning.
const (
	leftFail    = iota // a failure of its own or of a requirement
	leftStop           // Stop called on it
	leftRelease        // its last holder released it
)

// cascade predicts the effects of first leaving StateRunning: every
// dependent still Running fails, each stopping service releases what it
// owns, a service whose last holder released it stops, and each stop
// returns its own OnStop error and those of what it released as last holder.
func (p *smPred) cascade(first smID, how int, cause errWant) {
	m := &p.next
	pre := *m
	type leave struct {
		how   int
		cause errWant
	}
	leaving := map[smID]leave{}
	var order []smID
	releasers := map[smID][]smID{}
	push := func(x smID, l leave) {
		if _, ok := leaving[x]; ok {
			return
		}
		leaving[x] = l
		order = append(order, x)
	}
	if how == leftStop {
		m.holders[first] = 0
	}
	push(first, leave{how, cause})
	for i := 0; i < len(order); i++ {
		x := order[i]
		l := leaving[x]
		for _, d := range smDependents(x) {
			if pre.out[d].state != core.StateRunning {
				continue
			}
			c := errWant{nonNil: true} // "requirement x stopped"
			if l.how == leftFail {
				c = propagated(l.cause)
			}
			push(d, leave{leftFail, c})
		}
		for _, c := range smOwned[x] {
			m.holders[c] = max(m.holders[c]-1, 0)
			releasers[c] = append(releasers[c], x)
			if _, ok := leaving[c]; !ok && pre.out[c].state == core.StateRunning && m.holders[c] == 0 {
				push(c, leave{how: leftRelease})
			}
		}
	}
	// Stop results: leaves first (they release nothing), then roots.
	for _, x := range smAll {
		l, ok := leaving[x]
		if !ok {
			continue
		}
		stop := pre.ownStop(x)
		for _, c := range smOwned[x] {
			lc, ok := leaving[c]
			if !ok {
				continue // still Running: not stopped by x's release
			}
			var must bool
			switch lc.how {
			case leftStop:
				must = true // Stop dropped every hold: each release waits for it
			case leftRelease:
				must = len(releasers[c]) == 1 // else: which release is the last is a race
			case leftFail:
				must = pre.holders[c] == 1 // else: c may have stopped before the release
			}
			stop = stop.with(m.out[c].stop, must)
		}
		o := smOutcome{state: core.StateTerminated, stop: stop}
		if l.how == leftFail {
			o.state, o.err = core.StateFailed, l.cause
		}
		m.out[x] = o
	}
}

// Actions.

func (p *smPred) start(x smID) {
	m := &p.next
	if m.out[x].state != core.StateNew {
		p.ret = &errWant{all: []error{core.ErrAlreadyStarted}}
		return
	}
	m.holders[x]++
	if len(smOwned[x]) == 0 && len(smAwaited[x]) == 0 {
		p.startLeaf(x)
	} else {
		p.startRoot(x)
	}
	p.ret = startResult(m.out[x].err)
}

// startResult is what Start returns for a service whose Err will be w: w
// itself for a failed start, else (a failure just after the start) nil or
// an error with some of w's causes.
func startResult(w errWant) *errWant {
	if slices.Contains(w.all, core.ErrStartup) || w.isNil() {
		return &w
	}
	r := errWant{may: appendNew(appendNew(slices.Clone(w.all), w.any...), w.may...)}
	return &r
}

func (p *smPred) stop(x smID) {
	m := &p.next
	switch st := m.out[x].state; st {
	case core.StateNew:
		p.ret = &errWant{}
	case core.StateRunning:
		p.cascade(x, leftStop, errWant{})
		w := m.out[x].stop
		p.ret = &w
	default:
		m.holders[x] = 0
		w := m.out[x].stop
		p.ret = &w
	}
}

func (p *smPred) failTask(x smID) {
	m := &p.next
	switch m.out[x].state {
	case core.StateRunning:
		p.cascade(x, leftFail, errWant{all: []error{smTaskErr[x]}})
	case core.StateNew:
		m.failTask[x] = true // the first run after its start fails
	}
}

func (p *smPred) checkBad(x smID) {
	m := &p.next
	m.checkBad[x] = true
	if m.out[x].state == core.StateRunning {
		p.cascade(x, leftFail, errWant{all: []error{core.ErrUnhealthy, smCheckErr[x]}})
	}
}

// The machine.

type smMachine struct {
	sys   *smSystem
	model smModel
	log   []string
}

func (sm *smMachine) settle() {
	synctest.Wait()
	coretest.Advance(smSettle)
	synctest.Wait()
}

// verify compares the system with the prediction and adopts it.
func (sm *smMachine) verify(t *rapid.T, p *smPred, what string, ret error) {
	t.Helper()
	if p.ret != nil {
		if why := p.ret.match(ret); why != "" {
			t.Fatalf("%s: returned %v: %s; want %v\nactions: %s", what, ret, why, p.ret, strings.Join(sm.log, "; "))
		}
	}
	for _, x := range smAll {
		svc := sm.sys.svcs[x]
		st, err := svc.State(), svc.Err()
		alts := p.alts[x]
		if alts == nil {
			alts = []smOutcome{p.next.out[x]}
		}
		var why []string
		found := -1
		for i, a := range alts {
			switch w := a.err.match(err); {
			case a.state != st:
				why = append(why, fmt.Sprintf("want %v", a.state))
			case w != "":
				why = append(why, fmt.Sprintf("Err %s, want %v", w, a.err))
			default:
				found = i
			}
			if found >= 0 {
				break
			}
		}
		if found < 0 {
			t.Fatalf("after %s: %s: got %v, Err %v: %s\nactions: %s",
				what, x, st, err, strings.Join(why, "; or "), strings.Join(sm.log, "; "))
		}
		select {
		case <-svc.Done():
			if st != core.StateFailed && st != core.StateTerminated {
				t.Fatalf("after %s: %s: Done closed in %v", what, x, st)
			}
		default:
			if st == core.StateFailed || st == core.StateTerminated {
				t.Fatalf("after %s: %s: %v but Done open", what, x, st)
			}
		}
		o := alts[found]
		o.err = exactWant(err) // adopt: dependents see this very error
		if p.alts[x] != nil {
			p.next.failTask[x] = o.pendingTask
		}
		p.next.out[x] = o
	}
	sm.model = p.next
}

func (sm *smMachine) act(t *rapid.T, what string, fn func(p *smPred), call func() error) {
	sm.log = append(sm.log, what)
	p := sm.model.predict()
	fn(p)
	// Every Start and Stop here returns within its documented bound (a
	// Start's StartTimeout plus its rollback, a Stop's StopTimeout steps
	// along the deepest chain): far less than smCallBound of fake time.
	done := make(chan error, 1)
	go func() { done <- call() }()
	var ret error
	select {
	case ret = <-done:
	case <-time.After(smCallBound):
		t.Fatalf("%s did not return within %v\nactions: %s", what, smCallBound, strings.Join(sm.log, "; "))
	}
	sm.settle()
	sm.verify(t, p, what, ret)
}

func (sm *smMachine) draw(t *rapid.T) smID {
	return rapid.SampledFrom(smAll).Draw(t, "service")
}

func (sm *smMachine) actions() map[string]func(*rapid.T) {
	return map[string]func(*rapid.T){
		"Start": func(t *rapid.T) {
			x := sm.draw(t)
			sm.act(t, "Start("+x.String()+")", func(p *smPred) { p.start(x) },
				func() error { return sm.sys.svcs[x].Start(context.Background()) })
		},
		"Stop": func(t *rapid.T) {
			x := sm.draw(t)
			sm.act(t, "Stop("+x.String()+")", func(p *smPred) { p.stop(x) },
				func() error { return sm.sys.svcs[x].Stop(context.Background()) })
		},
		// One action for the four injections, so that Start and Stop are
		// two thirds of the actions: the graph gets up often enough to fail.
		"Inject": func(t *rapid.T) {
			x := sm.draw(t)
			k := sm.sys.knobs[x]
			switch kind := rapid.SampledFrom([]string{"FailTask", "CheckBad", "CheckGood", "FailOnStop"}).Draw(t, "kind"); kind {
			case "FailTask":
				sm.act(t, kind+"("+x.String()+")", func(p *smPred) { p.failTask(x) },
					func() error { k.failTask.Store(true); return nil })
			case "CheckBad":
				sm.act(t, kind+"("+x.String()+")", func(p *smPred) { p.checkBad(x) },
					func() error { k.checkBad.Store(true); return nil })
			case "CheckGood":
				sm.act(t, kind+"("+x.String()+")", func(p *smPred) { p.next.checkBad[x] = false },
					func() error { k.checkBad.Store(false); return nil })
			case "FailOnStop":
				sm.act(t, kind+"("+x.String()+")", func(p *smPred) { p.next.stopFail[x] = true },
					func() error { k.stopFail.Store(true); return nil })
			}
		},
	}
}

// finish stops every service, as the model predicts, then again: Stop is
// idempotent and returns the same error.
func (sm *smMachine) finish(t *rapid.T) {
	for _, x := range []smID{smR1, smR2, smA, smS} {
		sm.act(t, "final Stop("+x.String()+")", func(p *smPred) { p.stop(x) },
			func() error { return sm.sys.svcs[x].Stop(context.Background()) })
	}
	for _, x := range smAll {
		svc := sm.sys.svcs[x]
		if st := svc.State(); st != core.StateNew && st != core.StateFailed && st != core.StateTerminated {
			t.Fatalf("%s: got %v after every Stop returned, want a final state or New", x, st)
		}
		first, again := svc.Stop(context.Background()), svc.Stop(context.Background())
		if first != again {
			t.Fatalf("%s: Stop returned %v, then %v: want the same error", x, first, again)
		}
	}
}

// TestLifecycleStateMachineMatchesModel drives random sequences of Start,
// Stop, task failures, check flips and OnStop failures over a small graph
// with a shared and an awaited requirement, and checks every state, Err and
// Start/Stop result against a model of the documented lifecycle.
func TestLifecycleStateMachineMatchesModel(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		rapid.SyncTest(rt, func(rt *rapid.T) {
			sm := &smMachine{sys: newSMSystem()}
			// Whatever happens, nothing is left running when the bubble ends.
			defer func() {
				for _, svc := range sm.sys.svcs {
					_ = svc.Stop(context.Background())
				}
			}()
			rt.Repeat(sm.actions())
			sm.finish(rt)
		})
	})
}
