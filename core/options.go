package core

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/coreservice/coreservice/internal/names"
	"github.com/coreservice/coreservice/internal/values"
)

// Option configures a service built by NewService. Options of this package,
// and tasks (package task), requirements (package deps) and checks (package
// health), are all Options, so they are passed to NewService side by side.
//
// A package outside this module implements Option the same way, with public
// API only: ApplyTo calls the methods of *Config.
type Option interface {
	// ApplyTo records the option in c. It is called once, by NewService, in
	// the order the options were given. It must not keep c.
	ApplyTo(c *Config)
}

// Config is the settings of one service while NewService applies its
// options. Its fields are private; options record themselves with its
// methods. It is valid only during ApplyTo.
type Config struct {
	name            string
	onStart         []hook
	onStop          []hook
	monitorInterval time.Duration
	startTimeout    time.Duration
	stopTimeout     time.Duration
	logger          *slog.Logger
	tracerProvider  trace.TracerProvider
	meterProvider   metric.MeterProvider
	units           []Unit
	requirements    []Requirement
	checks          []Check
	grace           *graceClock // the startup grace of the checks; nil when none has one
	onEvent         []func(Event)
	errs            []error
}

type hook struct {
	index int
	fn    func(context.Context) error
}

// Defaults.
const (
	DefaultMonitorInterval = 100 * time.Millisecond
	DefaultStartTimeout    = 15 * time.Second
	DefaultStopTimeout     = 15 * time.Second
)

// AddUnit registers work that the service launches on Start, after its
// OnStart hooks, and stops and waits for on Stop. See Unit.
func (c *Config) AddUnit(u Unit) {
	if values.IsNil(u) {
		c.AddError(errors.New("nil Unit"))
		return
	}
	c.units = append(c.units, u)
}

// AddRequirement registers a service the service needs Running before its
// OnStart hooks. See Requirement.
func (c *Config) AddRequirement(r Requirement) {
	if values.IsNil(r) {
		c.AddError(errors.New("nil Requirement"))
		return
	}
	c.requirements = append(c.requirements, r)
}

// AddCheck registers a health check, run at start, by Healthcheck and by the
// monitor. See Check.
func (c *Config) AddCheck(ch Check) {
	if values.IsNil(ch) {
		c.AddError(errors.New("nil Check"))
		return
	}
	c.checks = append(c.checks, ch)
	if _, ok := ch.(StartupGraceCheck); ok && c.grace == nil {
		c.grace = &graceClock{}
	}
}

// AddError records that an option was invalid. Start then fails with a
// *StartupError wrapping err and ErrInvalidOption, before anything starts.
func (c *Config) AddError(err error) {
	if err != nil {
		c.errs = append(c.errs, err)
	}
}

func newConfig(opts []Option) *Config {
	c := &Config{
		monitorInterval: DefaultMonitorInterval,
		startTimeout:    DefaultStartTimeout,
		stopTimeout:     DefaultStopTimeout,
	}
	for i, o := range opts {
		if values.IsNil(o) {
			c.AddError(fmt.Errorf("option %d is nil", i))
			continue
		}
		o.ApplyTo(c)
	}
	return c
}

// err is all the invalid-option errors joined, wrapped in ErrInvalidOption.
func (c *Config) err() error {
	if len(c.errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrInvalidOption, errors.Join(c.errs...))
}

// Name sets the service's name, used in logs (service=<name>), spans, errors
// and probes. The default is derived from the code that called NewService and
// made unique with a sequence number, such as "main.main#1". The name is a
// path segment of the health probes and a word of their text output: an
// empty name, or one with a '/' or a character that is not graphic (a
// control character such as a newline or a tab, a format character, a line
// separator) or invalid UTF-8, is invalid, and the service keeps its
// default name. Repeats replace.
func Name(name string) Option { return nameOption(name) }

type nameOption string

func (o nameOption) ApplyTo(c *Config) {
	if o == "" {
		c.AddError(errors.New("core.Name: empty name"))
		return
	}
	if err := names.Check(string(o)); err != nil {
		c.AddError(fmt.Errorf("%v: %w", o, err))
		return
	}
	c.name = string(o)
}

func (o nameOption) String() string { return fmt.Sprintf("core.Name(%q)", string(o)) }

// OnStart adds a hook run by Start after the requirements are Running and
// before the tasks are launched. Hooks run in the order given, each with
// Start's context (bounded by StartTimeout); the first error aborts and rolls
// back the start. A hook that ignores its context does not hold Start up:
// when the context ends, Start stops waiting for it and fails with a
// *StartupError naming the hook ("OnStart hook 2: did not return and was
// left running: ..."); the hook goes on in the background (a goroutine stuck
// in user code cannot be stopped) and its result is logged when it returns.
// Stop called from a hook with the hook's context aborts the start and
// returns nil at once. A nil fn is invalid. Repeats append.
func OnStart(fn func(context.Context) error) Option { return &hookOption{fn: fn} }

// OnStop adds a hook run by Stop after the tasks and the monitor have
// returned and before the requirements are stopped. Hooks run in the reverse
// of the order given, each with a context bounded by a StopTimeout of its
// own, whatever the tasks or the other hooks used (see StopTimeout); every
// hook runs even when an earlier one fails, and their errors are joined. A
// hook still running at its StopTimeout is left running in the background,
// named in a *StopTimeoutError ("OnStop hook 1"), and the stop goes on.
// Stop called from a hook with the hook's context returns nil at once. On a rolled-back start they run too, once the start got past the
// requirements (even if no OnStart hook ran), so they must cope with a
// partial start. A nil fn is invalid. Repeats append.
func OnStop(fn func(context.Context) error) Option { return &hookOption{fn: fn, stop: true} }

type hookOption struct {
	fn   func(context.Context) error
	stop bool
}

func (o *hookOption) ApplyTo(c *Config) {
	if o.fn == nil {
		c.AddError(fmt.Errorf("%s: nil function", o))
		return
	}
	if o.stop {
		c.onStop = append(c.onStop, hook{index: len(c.onStop) + 1, fn: o.fn})
	} else {
		c.onStart = append(c.onStart, hook{index: len(c.onStart) + 1, fn: o.fn})
	}
}

func (o *hookOption) String() string {
	if o.stop {
		return "core.OnStop(...)"
	}
	return "core.OnStart(...)"
}

// OnEvent adds a hook that receives the service's lifecycle events (see
// Event): every state change, and the failures of its tasks, checks and
// requirements, its stop timeouts. Repeats append: every hook gets every
// event, in the order the events happened in the service, each event given
// to the hooks in the order of the OnEvent options. A nil fn is invalid.
//
// A slow hook never holds the service up. The events wait for the hooks in
// a queue of at most EventQueueSize per service, drained by one goroutine
// that exists only while the queue is not empty; an event raised while the
// queue is full is dropped, and the hooks get an EventsDropped counting the
// dropped events once there is room again (the service's log has every
// event, dropped or not: the log is written by the service as it goes, the
// queue feeds the hooks only). A hook that panics, or calls runtime.Goexit
// (t.FailNow in a test), is recovered and logged; the next hooks and events
// are delivered as usual.
//
// The move to the final state is the last event delivered (but for an
// EventsDropped counting events dropped just before it), and Done is
// closed, and Stop and Start return, only once every hook has had it or it
// was dropped: the stop waits for the hooks for at most StopTimeout, then
// drops the events still queued, logs how many, and goes on; a hook still
// running then is left to finish in the background, as user code that
// ignores its context is. So a hook must not wait for the service's own
// Stop or Done (it would wait for itself until StopTimeout): start a
// goroutine for that, or call Host.Stop, which does not wait.
//
// Hooks get the events of their own service only: give the same function to
// every service whose events it wants. The events of a service are never
// delivered concurrently: a hook needs no lock for the state it keeps about
// one service.
func OnEvent(fn func(Event)) Option { return eventOption{fn} }

type eventOption struct{ fn func(Event) }

func (o eventOption) ApplyTo(c *Config) {
	if o.fn == nil {
		c.AddError(errors.New("core.OnEvent: nil function"))
		return
	}
	c.onEvent = append(c.onEvent, o.fn)
}

func (o eventOption) String() string { return "core.OnEvent(...)" }

// MonitorInterval sets how often the monitor runs the service's health
// checks once it is Running. Default DefaultMonitorInterval (100 ms, as in
// core-service). Zero or negative is invalid. Repeats replace.
func MonitorInterval(d time.Duration) Option { return durationOption{kind: "MonitorInterval", d: d} }

// StartTimeout bounds the whole Start: requirements, hooks, launching tasks
// and the first health checks. User code that ignores the start's context
// (a hook, a lazy builder, the Start of a requirement that is not a *Base)
// does not extend it: Start stops waiting at StartTimeout and names it in
// its *StartupError. A failed start is then rolled back, which is a stop
// bounded as StopTimeout says, so Start returns within StartTimeout plus
// AbandonGrace plus that rollback. Default DefaultStartTimeout (15 s). Zero or negative is
// invalid. Repeats replace.
func StartTimeout(d time.Duration) Option { return durationOption{kind: "StartTimeout", d: d} }

// StopTimeout bounds each step of the service's stop on its own, so that a
// step that uses up its time never takes it from the next:
//
//   - waiting for the units (task workers), the monitor and Healthcheck
//     calls under way: StopTimeout; those still running then are named in a
//     *StopTimeoutError and left running;
//   - each OnStop hook: a full StopTimeout, even after the units used up
//     theirs, so that flushing a buffer or closing a database always gets its
//     time; a hook still running then is named in a *StopTimeoutError and
//     left running;
//   - each requirement: a *Base stops within its own StopTimeout steps; the
//     Stop of a service of another type is bounded by this StopTimeout;
//   - the OnEvent hooks, if they are behind: StopTimeout to take the move to
//     the final state, after which the events still queued are dropped.
//
// So the stop of a service that holds no requirement returns within
// (1 + number of OnStop hooks) × (StopTimeout + AbandonGrace), plus a
// StopTimeout if its OnEvent hooks are behind, and a tree's
// stop within the sum along its deepest chain of requirements, plus, where
// a service waits for others: a failing requirement first waits for its
// dependents' units and OnStop hooks, and a parent waits for a shared
// requirement that another holder is stopping. Abandoned goroutines (user
// code that ignored its cancelled context) cannot be killed: they finish in
// the background and their result is logged. A rolled-back start is a stop
// with the same bounds. Default DefaultStopTimeout (15 s). Zero or negative
// is invalid. Repeats replace.
func StopTimeout(d time.Duration) Option { return durationOption{kind: "StopTimeout", d: d} }

type durationOption struct {
	kind string
	d    time.Duration
}

func (o durationOption) ApplyTo(c *Config) {
	if o.d <= 0 {
		c.AddError(fmt.Errorf("core.%s: got %v, want > 0", o.kind, o.d))
		return
	}
	switch o.kind {
	case "MonitorInterval":
		c.monitorInterval = o.d
	case "StartTimeout":
		c.startTimeout = o.d
	case "StopTimeout":
		c.stopTimeout = o.d
	}
}

func (o durationOption) String() string { return fmt.Sprintf("core.%s(%v)", o.kind, o.d) }

// Logger sets the logger the service, its tasks and its checks log to;
// Log (and core.Log(ctx) in the service's code) adds service=<name> to it.
// Repeats replace; nil is the same as no Logger option.
//
// Without it, a service takes the logger of the service that starts it as
// a requirement (package deps): the first parent to acquire it, whose own
// logger is its option's, or inherited in turn; the logger is decided then,
// once, and a shared service keeps its first parent's whoever else comes to
// hold it. A service started directly (Start, core.Run) logs to
// slog.Default() as it is at that Start. Either way it adds its own
// service=<name>. TracerProvider and MeterProvider are inherited the same
// way.
//
// A service awaited rather than started (deps.Await) inherits from whoever
// starts it. Before its start, a service without a Logger option logs to
// slog.Default() as it is at each call.
func Logger(l *slog.Logger) Option { return loggerOption{l} }

type loggerOption struct{ l *slog.Logger }

func (o loggerOption) ApplyTo(c *Config) { c.logger = o.l }
func (o loggerOption) String() string    { return "core.Logger(...)" }

// TracerProvider sets where the service's spans go. Without it, a service
// started as a requirement uses the tracer of the parent that starts it
// (see Logger for which parent, and when), and a service started directly
// (Start, core.Run) the OpenTelemetry global provider as it is at that
// Start (otel.GetTracerProvider), which records nothing until a program
// installs one. Nil is invalid. Repeats replace.
func TracerProvider(tp trace.TracerProvider) Option { return tracerProviderOption{tp} }

type tracerProviderOption struct{ tp trace.TracerProvider }

func (o tracerProviderOption) ApplyTo(c *Config) {
	if values.IsNil(o.tp) {
		c.AddError(errors.New("core.TracerProvider: nil provider"))
		return
	}
	c.tracerProvider = o.tp
}
func (o tracerProviderOption) String() string { return "core.TracerProvider(...)" }

// MeterProvider sets where the service's metrics go. Without it, a service
// started as a requirement uses the meter of the parent that starts it
// (see Logger for which parent, and when), and a service started directly
// (Start, core.Run) the OpenTelemetry global provider as it is at that
// Start (otel.GetMeterProvider). The service
// records coreservice.service.state and coreservice.healthcheck.duration
// there, tasks coreservice.task.run.duration and coreservice.task.retries
// (package otelx names them); units get the meter from Host.Meter. While
// the provider records nothing (no SDK installed, or a no-op provider), no
// instrument is made and no clock is read for metrics. Nil is invalid.
// Repeats replace.
func MeterProvider(mp metric.MeterProvider) Option { return meterProviderOption{mp} }

type meterProviderOption struct{ mp metric.MeterProvider }

func (o meterProviderOption) ApplyTo(c *Config) {
	if values.IsNil(o.mp) {
		c.AddError(errors.New("core.MeterProvider: nil provider"))
		return
	}
	c.meterProvider = o.mp
}
func (o meterProviderOption) String() string { return "core.MeterProvider(...)" }
