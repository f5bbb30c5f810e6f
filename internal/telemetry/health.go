package telemetry

// SpanCheck is the name prefix of the span of one run of a health check
// (package health): "check <check>", a child of the span of whoever ran it,
// such as the monitor's "healthcheck <service>". Its AttrCheck attribute
// names the check.
const SpanCheck = "check"
