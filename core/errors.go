package core

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Sentinel errors. Match them with errors.Is: the errors the package returns
// wrap them together with the details.
var (
	// ErrStartup matches every error Start returns after the service left
	// StateNew: a part failed to start, the start timed out or was cancelled,
	// or the service's options were invalid. See *StartupError.
	ErrStartup = errors.New("service failed to start")
	// ErrUnhealthy matches the errors of Healthcheck and the monitor.
	ErrUnhealthy = errors.New("service unhealthy")
	// ErrAlreadyStarted is returned by Start on a service that has left
	// StateNew: started before (by Start, or by a parent that requires it),
	// or stopped. (Stop before Start is a no-op: the service stays New.)
	ErrAlreadyStarted = errors.New("service already started")
	// ErrStopTimeout matches a *StopTimeoutError.
	ErrStopTimeout = errors.New("service stop timed out")
	// ErrCycle matches a *CycleError: requirements that require each other.
	ErrCycle = errors.New("dependency cycle")
	// ErrCheckTimeout is matched by the cause (context.Cause) of the
	// context of a health check run that its own Check.Timeout ended, as
	// opposed to its caller: the check took too long. That cause also
	// matches context.DeadlineExceeded.
	ErrCheckTimeout = errors.New("check timed out")
	// ErrInvalidOption matches errors caused by a bad option value, such as
	// a negative duration or a nil function. Start returns them wrapped in a
	// *StartupError.
	ErrInvalidOption = errors.New("invalid option")
)

// StartupError is the error Start returns when the start failed: it names
// the service and the part that failed ("requirement db", "OnStart hook 2",
// "task fetch", "check ping", "options") and wraps the cause, and the errors
// the rollback met, if any. It matches ErrStartup, and errors.Is and
// errors.As see both Err and Rollback.
type StartupError struct {
	Service string // the service being started
	Part    string // what failed; empty when no one part did (the whole start timed out, say)
	Err     error  // the cause
	// Rollback is what the rollback of the failed start met, as Stop would
	// return it (failing OnStop hooks, a *StopTimeoutError naming what was
	// left running, a *StartupError for each call the start left running
	// other than Part, ...); nil if it met nothing, or while it is under way
	// (parents waiting for the service see the error before its rollback).
	Rollback error
}

// Error returns "start <service>: <part>: <cause>", followed by
// "; rollback: <errors>" when the rollback met errors.
func (e *StartupError) Error() string {
	msg := fmt.Sprintf("start %s: %s: %v", e.Service, e.Part, e.Err)
	if e.Part == "" {
		msg = fmt.Sprintf("start %s: %v", e.Service, e.Err)
	}
	if e.Rollback != nil {
		msg += "; rollback: " + e.Rollback.Error()
	}
	return msg
}

// Unwrap returns the cause and, if any, the rollback's errors.
func (e *StartupError) Unwrap() []error {
	if e.Rollback == nil {
		return []error{e.Err}
	}
	return []error{e.Err, e.Rollback}
}

// Is reports whether target is ErrStartup.
func (e *StartupError) Is(target error) bool { return target == ErrStartup }

// StopTimeoutError names the units of work still running when a service's
// StopTimeout ran out. They were told to stop (their context is cancelled)
// but did not return; the service went on with its stop sequence without
// them. It matches ErrStopTimeout.
type StopTimeoutError struct {
	// Service is the service whose stop timed out.
	Service string
	// Timeout is its StopTimeout.
	Timeout time.Duration
	// Units names what was still running: units as given to Host.Go, such
	// as "task fetch#2", or another part of the stop, such as
	// "OnStop hook 1".
	Units []string
}

// Error returns "<units> still running after StopTimeout <timeout>".
func (e *StopTimeoutError) Error() string {
	return fmt.Sprintf("%s still running after StopTimeout %v", strings.Join(e.Units, ", "), e.Timeout)
}

// Is reports whether target is ErrStopTimeout.
func (e *StopTimeoutError) Is(target error) bool { return target == ErrStopTimeout }

// CycleError is a chain of requirements that leads back to its start. Path
// lists the names from the first to the repeated one, so its message reads
// "dependency cycle: a -> b -> a". It matches ErrCycle.
type CycleError struct {
	// Path names the services along the cycle, the first one repeated last.
	Path []string
}

// Error returns "dependency cycle: " and the path joined by " -> ".
func (e *CycleError) Error() string {
	return "dependency cycle: " + strings.Join(e.Path, " -> ")
}

// Is reports whether target is ErrCycle.
func (e *CycleError) Is(target error) bool { return target == ErrCycle }

// TaskError is a failed run of a task worker (package task): the error the
// service fails with when a task's failure is not retried.
type TaskError struct {
	// Service is the service the task belongs to.
	Service string
	// Task is the task's name.
	Task string
	// Worker is the worker whose run failed, from 1.
	Worker int
	// Err is the run's error.
	Err error
	// Run is the number of the failed run in its worker, from 1; 0 when not
	// known (a TaskError built outside package task).
	Run int64
	// Retries is how many failed runs right before this one the task's
	// Retry policy retried: this run is attempt Retries+1 of the streak.
	Retries int
	// Exhausted reports that the Retry policy gave up on this run (its
	// retries ran out, or it failed), rather than the task having no Retry
	// policy or the error being permanent.
	Exhausted bool
}

// Error returns "task <service>/<task> worker <n>: <cause>", or, when the
// Retry policy gave up, "task <service>/<task> worker <n>: run <run>
// (retries exhausted after <retries>): <cause>".
func (e *TaskError) Error() string {
	if e.Exhausted {
		return fmt.Sprintf("task %s/%s worker %d: run %d (retries exhausted after %d): %v",
			e.Service, e.Task, e.Worker, e.Run, e.Retries, e.Err)
	}
	return fmt.Sprintf("task %s/%s worker %d: %v", e.Service, e.Task, e.Worker, e.Err)
}

// Unwrap returns the cause.
func (e *TaskError) Unwrap() error { return e.Err }

// PanicError is a recovered panic. Value is what was passed to panic and
// Stack the goroutine's stack at the panic.
type PanicError struct {
	// Value is what was passed to panic.
	Value any
	// Stack is the panicking goroutine's stack, as runtime/debug.Stack
	// writes it.
	Stack []byte
}

// Error returns "panic: " and Value.
func (e *PanicError) Error() string { return fmt.Sprintf("panic: %v", e.Value) }

// Unwrap returns Value when it is an error, so errors.Is sees through
// panic(err).
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// ErrLeftRunning is wrapped by the error of a call to user code (an
// OnStart hook, a requirement's Start or Stop, a unit's Launch) that did
// not return once its context ended, and that the caller stopped waiting
// for: "did not return and was left running: <why its context ended>".
var ErrLeftRunning = errors.New("did not return and was left running")
