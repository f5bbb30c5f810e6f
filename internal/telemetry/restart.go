package telemetry

import "go.opentelemetry.io/otel/attribute"

// SpanRestart is the prefix of the span of one restart by a supervisor
// (deps.Supervise): "restart <supervisor>".
const SpanRestart = "restart"

// MetricRestarts is a counter ({restart}) of the restarts a supervisor
// began, with AttrService (the supervisor) and, for a restart that
// failed, error.type.
const MetricRestarts = "coreservice.restarts"

// AttrAttempt is the number of a restart in its streak, from 1.
const AttrAttempt = attribute.Key("coreservice.attempt")
