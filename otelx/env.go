package otelx

import (
	"fmt"
	"math"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
)

// EnvError is a malformed OTEL_* environment variable, reported by New and
// Setup before anything is built.
type EnvError struct {
	// Var is the variable's name, such as OTEL_TRACES_SAMPLER.
	Var string
	// Value is its value.
	Value string
	// Reason says what is wrong and what is accepted.
	Reason string
}

// Error returns "otelx: VAR=value: reason".
func (e *EnvError) Error() string {
	return fmt.Sprintf("otelx: %s=%q: %s", e.Var, e.Value, e.Reason)
}

// env reads one variable, trimmed.
func env(name string) string { return strings.TrimSpace(os.Getenv(name)) }

// checkEnv reports the first malformed variable among those New reads
// itself or hands to a library that would otherwise ignore a bad value (or
// fall back to a default) with no more than a log line.
func checkEnv() error {
	if v := env("OTEL_SDK_DISABLED"); v != "" && !strings.EqualFold(v, "true") && !strings.EqualFold(v, "false") {
		return &EnvError{"OTEL_SDK_DISABLED", v, "want true or false"}
	}
	for _, name := range []string{"OTEL_EXPORTER_OTLP_PROTOCOL",
		"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL"} {
		if v := env(name); v != "" && v != "grpc" && v != "http/protobuf" {
			return &EnvError{name, v, "unknown protocol: want grpc or http/protobuf"}
		}
	}
	for _, name := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT",
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"} {
		if v := env(name); v != "" {
			u, err := url.Parse(v)
			switch {
			case err != nil:
				return &EnvError{name, v, "not a URL: " + err.Error()}
			case u.Scheme != "http" && u.Scheme != "https":
				return &EnvError{name, v, "want an http:// or https:// URL, such as http://localhost:4317"}
			case u.Host == "":
				return &EnvError{name, v, "the URL has no host"}
			}
		}
	}
	if err := checkExporter("OTEL_TRACES_EXPORTER", "otlp", "console", "none"); err != nil {
		return err
	}
	if err := checkExporter("OTEL_METRICS_EXPORTER", "otlp", "console", "none", "prometheus"); err != nil {
		return err
	}
	if err := checkNumbers(); err != nil {
		return err
	}
	return checkSampler()
}

func checkExporter(name string, known ...string) error {
	v := env(name)
	if v != "" && !slices.Contains(known, v) {
		return &EnvError{name, v, "unknown exporter: want one of " + strings.Join(known, ", ")}
	}
	// New builds otlp and none itself, from the trimmed value; the others
	// come from autoexport, which reads the variable as it is and fails on
	// the spaces with an error that names no variable.
	if raw := os.Getenv(name); raw != v && v != "otlp" && v != "none" {
		return &EnvError{name, raw, "leading or trailing space: want exactly one of " + strings.Join(known, ", ")}
	}
	return nil
}

// millisVars are the variables of the SDK and the OTLP exporters that hold
// a number of milliseconds or items, with the least value each accepts.
// Their readers fall back to the default, with no more than a log line, on
// a value that is not such a number.
var millisVars = []struct {
	name string
	min  int64
}{
	{"OTEL_EXPORTER_OTLP_TIMEOUT", 0},
	{"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", 0},
	{"OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", 0},
	{"OTEL_METRIC_EXPORT_INTERVAL", 1},
	{"OTEL_METRIC_EXPORT_TIMEOUT", 1},
	{"OTEL_BSP_SCHEDULE_DELAY", 0},
	{"OTEL_BSP_EXPORT_TIMEOUT", 0},
	{"OTEL_BSP_MAX_QUEUE_SIZE", 1},
	{"OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 1},
}

// checkNumbers checks millisVars. The value must be the bare number: some
// of their readers do not trim spaces.
func checkNumbers() error {
	for _, v := range millisVars {
		raw := os.Getenv(v.name)
		if raw == "" {
			continue
		}
		if n, err := strconv.ParseInt(raw, 10, 64); err != nil || n < v.min || n > math.MaxInt32 {
			return &EnvError{v.name, raw, fmt.Sprintf("want a whole number from %d to %d (milliseconds, or items for a size)",
				v.min, math.MaxInt32)}
		}
	}
	return nil
}

// checkSampler checks OTEL_TRACES_SAMPLER and its argument, which the SDK
// reads; on a bad value the SDK only logs and samples everything.
func checkSampler() error {
	v := strings.ToLower(env("OTEL_TRACES_SAMPLER"))
	known := []string{"always_on", "always_off", "traceidratio",
		"parentbased_always_on", "parentbased_always_off", "parentbased_traceidratio"}
	if v == "" {
		return nil
	}
	if !slices.Contains(known, v) {
		return &EnvError{"OTEL_TRACES_SAMPLER", v, "unknown sampler: want one of " + strings.Join(known, ", ")}
	}
	if !strings.HasSuffix(v, "traceidratio") {
		return nil
	}
	arg := env("OTEL_TRACES_SAMPLER_ARG")
	if arg == "" {
		return nil
	}
	if r, err := strconv.ParseFloat(arg, 64); err != nil || r < 0 || r > 1 {
		return &EnvError{"OTEL_TRACES_SAMPLER_ARG", arg, "want a ratio from 0 to 1"}
	}
	return nil
}

// otlpProtocol is the OTLP protocol of a signal: its own variable, else
// OTEL_EXPORTER_OTLP_PROTOCOL, else grpc.
func otlpProtocol(signalVar string) string {
	if v := env(signalVar); v != "" {
		return v
	}
	if v := env("OTEL_EXPORTER_OTLP_PROTOCOL"); v != "" {
		return v
	}
	return "grpc"
}
