package otelx

import "github.com/coreservice/coreservice/internal/telemetry"

// ScopeName is the instrumentation scope of every tracer and meter of the
// library: the module path.
const ScopeName = telemetry.ScopeName

// Span name prefixes. A span's name is the prefix, a space, and the service
// name ("start api"); for task runs, the service and task names joined by a
// slash ("task api/fetch"); for checks, the check name ("check ping").
const (
	// SpanStart is a service's Start; its children are the starts of the
	// requirements it starts.
	SpanStart = telemetry.SpanStart
	// SpanStop is a service's stop sequence; its children are the stops of
	// the requirements it releases.
	SpanStop = telemetry.SpanStop
	// SpanTask is one run of a task: a new trace, linked to its service's
	// start span.
	SpanTask = telemetry.SpanTask
	// SpanHealthcheck is one monitor tick of a service: a new trace,
	// linked to its service's start span, the parent of its checks' spans.
	SpanHealthcheck = telemetry.SpanHealthcheck
	// SpanCheck is one run of a health check (package health).
	SpanCheck = telemetry.SpanCheck
	// SpanRestart is one restart by a supervisor (deps.Supervise): a new
	// trace, linked to the span the failed instance was started under,
	// the parent of the new instance's start span.
	SpanRestart = telemetry.SpanRestart
)

// Attribute keys the library puts on its spans and metrics.
const (
	// AttrService is the service's name.
	AttrService = telemetry.AttrService
	// AttrTask is the task's name.
	AttrTask = telemetry.AttrTask
	// AttrWorker is the worker's number within its task, from 1.
	AttrWorker = telemetry.AttrWorker
	// AttrRun is the run's number within its worker, from 1.
	AttrRun = telemetry.AttrRun
	// AttrNextDelay is the wait before the worker's next run, in seconds.
	AttrNextDelay = telemetry.AttrNextDelay
	// AttrCheck is the health check's name.
	AttrCheck = telemetry.AttrCheck
	// AttrState is a service state ("running"), on MetricServiceState.
	AttrState = telemetry.AttrState
	// AttrAttempt is the number of a restart in its streak, from 1.
	AttrAttempt = telemetry.AttrAttempt
)

// Metric names. Units are UCUM; failed runs carry error.type.
const (
	// MetricTaskRunDuration is a histogram (s) of task runs, with
	// AttrService and AttrTask.
	MetricTaskRunDuration = telemetry.MetricTaskRunDuration
	// MetricTaskRetries counts ({retry}) the retries scheduled after
	// failed task runs, with AttrService and AttrTask.
	MetricTaskRetries = telemetry.MetricTaskRetries
	// MetricHealthcheckDuration is a histogram (s) of health check runs,
	// with AttrService and AttrCheck.
	MetricHealthcheckDuration = telemetry.MetricHealthcheckDuration
	// MetricServiceState is an up-down counter ({service}), with
	// AttrService and AttrState: 1 for the state a service is in, 0 for
	// the states it has left.
	MetricServiceState = telemetry.MetricServiceState
	// MetricRestarts counts ({restart}) the restarts supervisors began
	// (deps.Supervise), with AttrService (the supervisor) and error.type
	// on a restart that failed.
	MetricRestarts = telemetry.MetricRestarts
)
