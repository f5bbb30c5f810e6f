package core

import (
	"context"
	"errors"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"
)

// Event is a typed lifecycle event of one service, given to the hooks of
// OnEvent and logged by the service's logger: StateChanged, TaskRunFailed,
// TaskRetryScheduled, CheckFailed, RequirementFailed, StopTimedOut,
// EventsDropped, and the events of supervision (RestartScheduled,
// Restarted, RestartGaveUp) and leader election (LeadershipWon,
// LeadershipLost). The set is closed (only this package defines events), so
// that every event has its log record; switch on the type, with a default
// case for the kinds later versions add.
//
// Every event is a slog.LogValuer: its value is a group of its fields,
// service first, so that logger.Info("event", "event", e) logs it whole.
type Event interface {
	slog.LogValuer
	// level and message are those of the event's log record.
	level() slog.Level
	message() string
	// attrs are the event's fields, as the log record's attributes: all but
	// the service, which the service's logger carries.
	attrs() []slog.Attr
}

// StateChanged is raised at every state change of a service, in the order
// of the changes: New to Starting, Starting to Running or Stopping, Running
// to Stopping, Stopping to Terminated or Failed.
//
// The change to a final state is delivered before it is applied: a hook
// that receives it still sees StateStopping from State, and Done is closed
// (with the final state and Err) only once every hook has had it, or it was
// dropped (see OnEvent). It is the last event the hooks get, but for an
// EventsDropped counting events dropped just before it.
type StateChanged struct {
	// Service is the name of the service.
	Service string
	// From is the state the service left.
	From State
	// To is the state the service moved to.
	To State
	// Cause is why, when a failure or an aborted start caused the change:
	// on the move to Stopping and to Failed, the failure the service fails
	// with (Err); on the rollback of a start that Stop aborted, the start's
	// error (the service then ends Terminated, and Cause of that last move
	// is nil). Nil otherwise.
	Cause error
	// RequestedBy is, on a move to Stopping that no failure caused, what
	// asked for the stop: "Stop" (Base.Stop), "Host.Stop", or Run's reason
	// ("Run: signal SIGTERM", "Run: api ended", "Run: context done: ...",
	// "Run: start of api failed"); empty otherwise, and when the stop is a
	// release by the last parent holding the service, which then reads the
	// reason of that parent's stop.
	RequestedBy string
}

// TaskRunFailed is raised by a task (package task) for a failed run that
// is not retried. Every failed run raises exactly one of TaskRunFailed and
// TaskRetryScheduled.
type TaskRunFailed struct {
	// Service is the name of the service, set by Host.Emit.
	Service string
	// Task is the name of the task.
	Task string
	// Worker is the worker that ran it, from 1.
	Worker int
	// Run is the number of the run in its worker, from 1.
	Run int64
	// Err is the run's error.
	Err error
	// Fails reports whether the failure is the service's: the service
	// fails with it, or, when it was already stopping, Stop returns it.
	// False for a failure met while the service stops that the task's
	// Retry policy would have retried: it is counted and logged only.
	Fails bool
	// Stopping reports whether the service was already stopping.
	Stopping bool
}

// TaskRetryScheduled is raised by a task (package task) for a failed run
// that its Retry policy retries after Delay.
type TaskRetryScheduled struct {
	// Service is the name of the service, set by Host.Emit.
	Service string
	// Task is the name of the task.
	Task string
	// Worker is the worker that ran it, from 1.
	Worker int
	// Run is the number of the failed run in its worker, from 1.
	Run int64
	// Err is the run's error.
	Err error
	// Delay is the wait before the next run, jitter included.
	Delay time.Duration
}

// CheckFailed is raised by the monitor for each check that fails on one of
// its ticks (not by Healthcheck, nor by the checks of Start, whose failure
// fails the start, nor for a check in its startup grace: see
// StartupGraceCheck), unless the service began to stop during that tick.
// The event with Failures equal to Threshold is the one that fails the
// service.
type CheckFailed struct {
	// Service is the name of the service.
	Service string
	// Check is the name of the check.
	Check string
	// Failures is how many ticks in a row the check has failed, this one
	// included.
	Failures int
	// Threshold is how many failures in a row fail the service.
	Threshold int
	// Err is the check's error.
	Err error
}

// RequirementFailed is raised when a requirement that the service holds,
// once it was Running for the service, fails or stops under it: the
// service fails with it (or, when it was already stopping, Stop returns
// it). A requirement released by the service's own stop raises nothing.
type RequirementFailed struct {
	// Service is the name of the service.
	Service string
	// Requirement is the name of the requirement.
	Requirement string
	// Err is why: the requirement's own failure, or an error saying that it
	// stopped, or what it is now.
	Err error
	// Origin is the name of the service where the failure began, which
	// logged it at ERROR already: the requirement itself (a *Base), or, when
	// it failed because a requirement of its own failed, the service at the
	// bottom of that chain. Empty when the requirement is not a *Base or
	// stopped without failing: the failure is then first logged here, at
	// ERROR; with an Origin, the record is a WARN that names it instead of
	// repeating Err.
	Origin string
}

// StopTimedOut is raised when a step of the service's stop (or of the
// rollback of its start) runs out of its StopTimeout and leaves user code
// running: the units, an OnStop hook, the Stop of a requirement that is not
// a *Base. The stop returns the same in a *StopTimeoutError.
type StopTimedOut struct {
	// Service is the name of the service.
	Service string
	// Timeout is the StopTimeout that ran out.
	Timeout time.Duration
	// Units names what was left running, such as "task fetch#1" or
	// "OnStop hook 2".
	Units []string
}

// EventsDropped is raised when events were dropped because the service's
// OnEvent hooks were EventQueueSize events behind: it counts them, and
// takes their place in the stream, once there is room in the queue again.
// The service's log has every event, dropped or not.
type EventsDropped struct {
	// Service is the name of the service.
	Service string
	// N is the number of events dropped since the last EventsDropped.
	N int
}

// EventQueueSize bounds the events waiting for the OnEvent hooks of one
// service. An event raised while the queue is full is dropped, and counted
// in the next EventsDropped.
const EventQueueSize = 128

// level, message and attrs of each event: the one description of an event
// that both its log record and its LogValue are built from.

var stateMessages = [...]string{"service new", "service starting", "service running", "service stopping",
	"service terminated", "service failed"}

func (e StateChanged) level() slog.Level {
	// A start aborted by Stop is no failure: its cause says why it stopped.
	if e.Cause == nil || errors.Is(e.Cause, errStopRequested) {
		return slog.LevelInfo
	}
	switch e.To {
	case StateStopping:
		if _, ok := e.Cause.(*requirementError); ok {
			// Logged at ERROR where it began: in the requirement, or in this
			// service's RequirementFailed.
			return slog.LevelWarn
		}
		if startOrigin(e.Cause) != "" {
			return slog.LevelWarn // a requirement's failed start, logged at ERROR there
		}
		// Where the failure happens: its one ERROR record, unless an event
		// of the service logged it already (see logEvent).
		return slog.LevelError
	case StateFailed:
		return slog.LevelWarn // logged at ERROR on the way
	}
	return slog.LevelInfo
}

func (e StateChanged) message() string {
	if e.To >= 0 && int(e.To) < len(stateMessages) {
		return stateMessages[e.To]
	}
	return "service " + e.To.String()
}

// attrs are from, state, and, on the moves to Stopping and Failed, reason
// (why: RequestedBy, "failure of task fetch", "requirement db failed", ...)
// and either error (the cause) or, for a failure that began in a
// requirement, origin (the service where it began and was logged).
func (e StateChanged) attrs() []slog.Attr {
	a := []slog.Attr{slog.String("from", e.From.String()), slog.String("state", e.To.String())}
	if e.To != StateStopping && e.To != StateFailed {
		if e.Cause != nil {
			a = append(a, slog.Any("error", e.Cause))
		}
		return a
	}
	requested := e.RequestedBy
	if requested == "" {
		requested = "requested"
	}
	reason, origin := stopReason(e.Cause, requested)
	a = append(a, slog.String("reason", reason))
	switch {
	case origin != "":
		a = append(a, slog.String("origin", origin))
	case e.Cause != nil:
		a = append(a, slog.Any("error", e.Cause))
	}
	return a
}

// stopReason is why a service stops with cause, for the record of its move
// to Stopping or Failed, and the origin of a failure that began in a
// requirement; requested is the reason when cause is nil.
func stopReason(cause error, requested string) (reason, origin string) {
	var (
		se  *StartupError
		te  *TaskError
		pe  *PanicError
		cyc *CycleError
	)
	switch c := cause.(type) {
	case nil:
		return requested, ""
	case *requirementError:
		return "requirement " + c.name + " failed", c.origin
	case *requirementStoppedError:
		return c.Error(), ""
	}
	switch {
	case errors.Is(cause, errStopRequested):
		return "Stop during the start", ""
	case errors.As(cause, &se):
		if se.Part != "" {
			return "start failed: " + se.Part, startOrigin(cause)
		}
		return "start failed", startOrigin(cause)
	case errors.As(cause, &te):
		return "failure of task " + te.Task, ""
	case errors.As(cause, &pe):
		return "panic", ""
	case errors.As(cause, &cyc):
		return "dependency cycle", ""
	}
	return "failure", ""
}

// startOrigin is the service where a failed start began, when cause is the
// *StartupError of one service wrapping that of another (a requirement
// whose start failed, which logged it at ERROR): the innermost one's
// service; "" when the start failed in the service itself.
func startOrigin(cause error) string {
	var outer *StartupError
	if !errors.As(cause, &outer) {
		return ""
	}
	inner := outer
	for {
		var next *StartupError
		if !errors.As(inner.Err, &next) {
			break
		}
		inner = next
	}
	if inner.Service == outer.Service {
		return ""
	}
	return inner.Service
}

// LogValue returns the event as a group: service, from, state (the new
// one) and, on the moves to Stopping and Failed, reason and error (the
// cause) or origin, as its log record has them.
func (e StateChanged) LogValue() slog.Value { return eventValue(e.Service, e.attrs()) }

func (e TaskRunFailed) level() slog.Level {
	if e.Fails {
		return slog.LevelError
	}
	return slog.LevelWarn
}

func (e TaskRunFailed) message() string {
	switch {
	case !e.Fails:
		return "task run failed while the service stops; not retried"
	case e.Stopping:
		return "task run failed while the service stops; Stop returns it"
	}
	return "task run failed; the service fails"
}

func (e TaskRunFailed) attrs() []slog.Attr {
	return []slog.Attr{slog.String("task", e.Task), slog.Int("worker", e.Worker), slog.Int64("run", e.Run),
		slog.Any("error", e.Err)}
}

// LogValue returns the event as a group: service, task, worker, run and
// error.
func (e TaskRunFailed) LogValue() slog.Value { return eventValue(e.Service, e.attrs()) }

func (e TaskRetryScheduled) level() slog.Level { return slog.LevelWarn }
func (e TaskRetryScheduled) message() string   { return "task run failed; retrying" }
func (e TaskRetryScheduled) attrs() []slog.Attr {
	return []slog.Attr{slog.String("task", e.Task), slog.Int("worker", e.Worker), slog.Int64("run", e.Run),
		slog.Any("error", e.Err), slog.Duration("retry_in", e.Delay)}
}

// LogValue returns the event as a group: service, task, worker, run, error
// and retry_in (the delay).
func (e TaskRetryScheduled) LogValue() slog.Value { return eventValue(e.Service, e.attrs()) }

func (e CheckFailed) level() slog.Level {
	if e.Failures >= e.Threshold {
		return slog.LevelError
	}
	return slog.LevelWarn
}

func (e CheckFailed) message() string {
	if e.Failures >= e.Threshold {
		return "health check failed; the service fails"
	}
	return "health check failed"
}

func (e CheckFailed) attrs() []slog.Attr {
	return []slog.Attr{slog.String("check", e.Check), slog.Int("failures", e.Failures),
		slog.Int("threshold", e.Threshold), slog.Any("error", e.Err)}
}

// LogValue returns the event as a group: service, check, failures,
// threshold and error.
func (e CheckFailed) LogValue() slog.Value { return eventValue(e.Service, e.attrs()) }

func (e RequirementFailed) level() slog.Level {
	if e.Origin != "" {
		return slog.LevelWarn // logged at ERROR where it began
	}
	return slog.LevelError
}

func (e RequirementFailed) message() string { return "requirement failed" }

func (e RequirementFailed) attrs() []slog.Attr {
	if e.Origin != "" {
		return []slog.Attr{slog.String("requirement", e.Requirement), slog.String("origin", e.Origin)}
	}
	return []slog.Attr{slog.String("requirement", e.Requirement), slog.Any("error", e.Err)}
}

// LogValue returns the event as a group: service, requirement and, as in
// its log record, origin or error.
func (e RequirementFailed) LogValue() slog.Value { return eventValue(e.Service, e.attrs()) }

func (e StopTimedOut) level() slog.Level { return slog.LevelError }
func (e StopTimedOut) message() string   { return "stop timed out; left running" }
func (e StopTimedOut) attrs() []slog.Attr {
	return []slog.Attr{slog.Duration("timeout", e.Timeout), slog.Any("units", e.Units)}
}

// LogValue returns the event as a group: service, timeout and units.
func (e StopTimedOut) LogValue() slog.Value { return eventValue(e.Service, e.attrs()) }

func (e EventsDropped) level() slog.Level  { return slog.LevelWarn }
func (e EventsDropped) message() string    { return "OnEvent hooks missed events" }
func (e EventsDropped) attrs() []slog.Attr { return []slog.Attr{slog.Int("dropped", e.N)} }

// LogValue returns the event as a group: service and dropped (N).
func (e EventsDropped) LogValue() slog.Value { return eventValue(e.Service, e.attrs()) }

func eventValue(service string, attrs []slog.Attr) slog.Value {
	return slog.GroupValue(append([]slog.Attr{slog.String("service", service)}, attrs...)...)
}

// stopReasonKey is the context key of why a stop was requested, read by the
// move to Stopping for its log record (see withStopReason).
type stopReasonKey struct{}

// withStopReason returns ctx telling the stop it begins that reason asked
// for it, such as "Host.Stop" or "Run: signal SIGTERM".
func withStopReason(ctx context.Context, reason string) context.Context {
	return context.WithValue(ctx, stopReasonKey{}, reason)
}

// logEvent is the library's own consumer of its events: the one place where
// an event becomes a log record, so that the log and the hooks never
// disagree.
//
// A failure is logged once at ERROR, where it happens; the records that
// follow from it reference it: logged reports that an event of the service
// logged the cause of a move to Stopping at ERROR already (the failing task
// run, the check reaching its Threshold), which makes that move a WARN.
func (b *Base) logEvent(ctx context.Context, e Event, logged bool) {
	lvl := e.level()
	if _, isState := e.(StateChanged); isState && logged && lvl > slog.LevelWarn {
		lvl = slog.LevelWarn
	}
	if !b.logEnabled(ctx, lvl) {
		return
	}
	b.logger().LogAttrs(ctx, lvl, e.message(), e.attrs()...)
}

// eventStream is a service's events on their way to the log and to the
// OnEvent hooks. Every event is put, in one step under mu, on both ways, so
// that both see the events of the service in one order:
//
//   - the log: the records wait in logq and are written by flushLog,
//     synchronously, by the goroutine that raised them (or by the one
//     already writing, which takes them in turn), as the library always
//     logged: a slow log handler holds the service as before;
//   - the hooks: a queue of at most EventQueueSize events, drained by one
//     goroutine that exists only while the queue is not empty (no goroutine
//     per idle service), so that a slow hook never holds the service.
//
// Its zero value is ready to use; its state is allocated on the first event
// that the log or a hook wants, so a service nobody listens to pays a mutex
// and a nil pointer.
type eventStream struct {
	mu sync.Mutex
	*eventState
}

// eventState is an eventStream's queues, under its mu.
type eventState struct {
	logq    []pendingLog
	queued  uint64 // sequence number of the last record put on logq
	logged  uint64 // sequence number of the last record written
	logging bool   // a goroutine is writing logq
	wantLog uint64 // awaitLog waits for logged to reach it
	logWait chan struct{}

	queue      []Event
	dropped    int  // events dropped since the last EventsDropped was queued
	delivering bool // the delivery goroutine is running
	closed     bool // the final state change is queued: nothing more is
	hooksIdle  chan struct{}

	// failLogged is the error of the last event logged at ERROR for a
	// failure of the service (a task run, a check, a requirement): the move
	// to Stopping that it causes references it rather than logs it again.
	failLogged error
}

type pendingLog struct {
	ctx    context.Context
	e      Event
	seq    uint64
	logged bool // e is a move to Stopping whose cause was logged at ERROR already (see logEvent)
}

// raise puts e on its way to the log and the hooks; final (for the move to
// a final state) closes the stream behind it. It takes the event as its own
// type and builds the Event only when a hook or the log wants it: while
// nobody listens, raising an event allocates nothing and builds no record.
// It may be called with b.mu held; the caller then calls flushLog, once it
// holds no lock of b's.
func raise[E Event](b *Base, ctx context.Context, e E, final bool) {
	logged := b.logEnabled(ctx, e.level())
	if !logged && len(b.cfg.onEvent) == 0 {
		return
	}
	b.eventsOutbox.put(b, ctx, e, logged, final)
}

// emit is raise and flushLog, for callers that hold no lock of b's.
func emit[E Event](b *Base, ctx context.Context, e E) {
	raise(b, ctx, e, false)
	b.flushLog()
}

// put queues e: for the log when logged, and for the hooks, if any and
// the stream is not closed; final closes the stream behind e.
func (s *eventStream) put(b *Base, ctx context.Context, e Event, logged, final bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.eventState == nil {
		s.eventState = &eventState{}
	}
	if logged {
		s.queued++
		p := pendingLog{ctx: ctx, e: e, seq: s.queued}
		switch v := e.(type) {
		case TaskRunFailed:
			if v.Fails {
				s.failLogged = v.Err
			}
		case CheckFailed:
			if v.Failures >= v.Threshold {
				s.failLogged = v.Err
			}
		case RequirementFailed:
			if v.Origin == "" {
				s.failLogged = v.Err
			}
		case StateChanged:
			p.logged = v.To == StateStopping && v.Cause != nil && s.failLogged != nil && errors.Is(v.Cause, s.failLogged)
		}
		s.logq = append(s.logq, p)
	}
	if len(b.cfg.onEvent) == 0 || s.closed {
		return
	}
	s.closed = final
	if len(s.queue) >= EventQueueSize {
		s.dropped++
		return
	}
	s.queue = append(s.queue, e)
	if !s.delivering {
		s.delivering = true
		go b.deliver()
	}
}

// flushLog writes the records waiting in logq, in order. One goroutine
// writes at a time: a flush while another goroutine writes returns at once,
// and that one writes these records too. It must be called with no lock of
// b's held: log handlers are user code.
func (b *Base) flushLog() {
	s := &b.eventsOutbox
	s.mu.Lock()
	if s.eventState == nil || s.logging || len(s.logq) == 0 {
		s.mu.Unlock()
		return
	}
	s.logging = true
	var writing uint64 // the record being written, while s.mu is not held
	defer func() {
		// Also when a handler panics: that record counts as written (no
		// waiter waits for it), and the next flush writes the rest.
		if writing != 0 {
			s.mu.Lock()
			s.wroteLocked(writing)
		}
		s.logging = false
		if len(s.logq) == 0 {
			s.logq = nil
		}
		s.mu.Unlock()
	}()
	for len(s.logq) > 0 {
		p := s.logq[0]
		s.logq[0] = pendingLog{}
		s.logq = s.logq[1:]
		writing = p.seq
		s.mu.Unlock()
		b.logEvent(p.ctx, p.e, p.logged)
		s.mu.Lock()
		s.wroteLocked(p.seq)
		writing = 0
	}
}

// wroteLocked records that the record seq has been written, waking
// awaitLog when it waits for it. s.mu is held.
func (s *eventStream) wroteLocked(seq uint64) {
	s.logged = seq
	if s.logWait != nil && s.logged >= s.wantLog {
		close(s.logWait)
		s.logWait = nil
	}
}

// awaitLog writes, or waits until another goroutine has written, every
// record raised so far: the final state change is in the log before Done
// is closed. Records raised meanwhile are not waited for.
func (b *Base) awaitLog() {
	b.flushLog()
	s := &b.eventsOutbox
	s.mu.Lock()
	if s.eventState == nil || s.logged >= s.queued {
		s.mu.Unlock()
		return
	}
	s.wantLog = s.queued
	if s.logWait == nil {
		s.logWait = make(chan struct{})
	}
	ch := s.logWait
	s.mu.Unlock()
	<-ch
}

// deliver is the goroutine that gives the queued events to the hooks, in
// order, each event to every hook in the order of the OnEvent options. It
// ends when the queue is empty; the next event starts another. When it
// makes room in a queue that overflowed, it queues an EventsDropped.
func (b *Base) deliver() { b.deliverFrom(nil, 0) }

// deliverFrom is deliver that first gives e to the hooks from the one at
// index next on: where a hook that called runtime.Goexit left it (see
// callHook).
func (b *Base) deliverFrom(e Event, next int) {
	if e != nil {
		for i := next; i < len(b.cfg.onEvent); i++ {
			b.callHook(i, e)
		}
	}
	s := &b.eventsOutbox
	for {
		s.mu.Lock()
		if len(s.queue) == 0 {
			s.queue = nil // an idle service holds no queue
			s.delivering = false
			if s.hooksIdle != nil {
				close(s.hooksIdle)
				s.hooksIdle = nil
			}
			s.mu.Unlock()
			return
		}
		e := s.queue[0]
		s.queue[0] = nil
		s.queue = s.queue[1:]
		var dropped *EventsDropped
		if s.dropped > 0 {
			dropped = &EventsDropped{Service: b.name, N: s.dropped}
			s.queue = append(s.queue, *dropped)
			s.dropped = 0
		}
		s.mu.Unlock()
		if dropped != nil {
			b.emitLogOnly(*dropped)
		}
		for i := range b.cfg.onEvent {
			b.callHook(i, e)
		}
	}
}

// emitLogOnly logs an event that is already on its way to the hooks.
func (b *Base) emitLogOnly(e Event) {
	ctx := context.Background()
	if !b.logEnabled(ctx, e.level()) {
		return
	}
	s := &b.eventsOutbox
	s.mu.Lock()
	s.queued++ // the state exists: the event being delivered was put
	s.logq = append(s.logq, pendingLog{ctx: ctx, e: e, seq: s.queued})
	s.mu.Unlock()
	b.flushLog()
}

// callHook calls hook number i (from 0) with e, recovering and logging a
// panic; a hook that calls runtime.Goexit is logged and the delivery goes on
// in a new goroutine.
func (b *Base) callHook(i int, e Event) {
	returned := false
	defer func() {
		if v := recover(); v != nil {
			b.logger().Error("OnEvent hook panicked", "hook", i+1, "event", e,
				"error", &PanicError{Value: v, Stack: debug.Stack()})
			return
		}
		if !returned {
			// The hook called runtime.Goexit (t.FailNow in a test, say):
			// this goroutine ends, the delivery goes on in another one,
			// which still owns the queue (delivering stays set).
			b.logger().Error("OnEvent hook called runtime.Goexit: the delivery goes on in a new goroutine",
				"hook", i+1, "event", e)
			go b.deliverFrom(e, i+1)
		}
	}()
	b.cfg.onEvent[i](e)
	returned = true
}

// awaitHooks waits until the hooks have had every queued event, for at most
// timeout; then it drops the events still queued, logs how many, and
// returns (the goroutine delivering the current one ends when its hook
// returns). It is called once the final state change is queued, which closed
// the stream: nothing is queued after it.
func (b *Base) awaitHooks(timeout time.Duration) {
	s := &b.eventsOutbox
	s.mu.Lock()
	if s.eventState == nil {
		s.mu.Unlock()
		return
	}
	s.closed = true
	if !s.delivering {
		s.mu.Unlock()
		return
	}
	if s.hooksIdle == nil {
		s.hooksIdle = make(chan struct{})
	}
	idle := s.hooksIdle
	s.mu.Unlock()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-idle:
		return
	case <-t.C:
	}
	s.mu.Lock()
	n := len(s.queue) + s.dropped
	s.queue, s.dropped = nil, 0
	s.mu.Unlock()
	b.logger().Warn("OnEvent hooks still busy after StopTimeout: the events still queued are dropped",
		"dropped", n, "timeout", timeout)
}
