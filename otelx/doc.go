// Package otelx sets up OpenTelemetry for programs built with coreservice,
// and names what the library emits.
//
// It is the only package of the module that imports the OpenTelemetry SDK
// and exporters: the library packages (core, task, deps, health) use the
// OpenTelemetry API alone and record nothing until a program installs an
// SDK. One call in main does that, configured by the standard OTEL_*
// environment and nothing else:
//
//	shutdown, err := otelx.Setup(ctx)
//	if err != nil {
//		log.Fatal(err)
//	}
//	defer shutdown(context.Background())
//	slog.SetDefault(slog.New(otelx.NewLogHandler(slog.NewTextHandler(os.Stderr, nil))))
//
// By default spans and metrics go by OTLP over gRPC to localhost:4317, where a
// Jaeger (for traces) or an OpenTelemetry Collector listens; set
// OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_SERVICE_NAME and the other variables New
// lists to change that.
//
// # What is emitted
//
// Spans (instrumentation scope ScopeName, kind internal): "start <service>"
// with a child for each requirement's start, "stop <service>" likewise,
// "task <service>/<task>" for every task run and "healthcheck <service>" for
// every monitor tick, each run or tick a new trace linked to its service's
// start span, with the checks it ran as children ("check <check>").
// Failures set status Error with the message, error.type and an exception
// event; panics add exception.stacktrace. Attributes are under
// coreservice.* (the Attr constants).
//
// Metrics, through each service's meter provider: MetricTaskRunDuration,
// MetricTaskRetries, MetricHealthcheckDuration and MetricServiceState.
//
// Log records written with a context carry trace_id and span_id through
// NewLogHandler.
//
// # Cost
//
// While no SDK is installed (or with OpenTelemetry's no-op providers), the
// library starts no span, reads no clock for metrics and builds no attribute:
// a task run costs what it costs without telemetry. bench/RESULTS.md has the
// figures with the SDK installed.
package otelx
