package otelx_test

import (
	"errors"
	"testing"

	"github.com/coreservice/coreservice/otelx"
)

// wantEnvError checks that New fails with an *EnvError naming name, and
// shuts down whatever it built if it did not.
func wantEnvError(t *testing.T, name string) {
	t.Helper()
	tel, err := otelx.New(t.Context())
	var ee *otelx.EnvError
	if !errors.As(err, &ee) || ee.Var != name {
		if tel != nil {
			_ = tel.Shutdown(t.Context())
		}
		t.Fatalf("New: got %v, want an *EnvError naming %s", err, name)
	}
}

// The SDK and the exporters read these themselves and, on a value that is
// not a number, log a line and use their default: New says so instead.
func TestMalformedNumberVariableIsAnEnvError(t *testing.T) {
	for _, tc := range []struct{ name, value string }{
		{"OTEL_EXPORTER_OTLP_TIMEOUT", "10s"},
		{"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "-1"},
		{"OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "ten"},
		{"OTEL_METRIC_EXPORT_INTERVAL", "soon"},
		{"OTEL_METRIC_EXPORT_INTERVAL", "0"},
		{"OTEL_METRIC_EXPORT_TIMEOUT", "1.5"},
		{"OTEL_BSP_SCHEDULE_DELAY", "5 "},
		{"OTEL_BSP_EXPORT_TIMEOUT", "1e3"},
		{"OTEL_BSP_MAX_QUEUE_SIZE", "0"},
		{"OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "99999999999"},
	} {
		t.Run(tc.name+"="+tc.value, func(t *testing.T) {
			t.Setenv("OTEL_TRACES_EXPORTER", "none")
			t.Setenv("OTEL_METRICS_EXPORTER", "none")
			t.Setenv(tc.name, tc.value)
			wantEnvError(t, tc.name)
		})
	}
}

func TestWellFormedNumberVariablesAreAccepted(t *testing.T) {
	t.Setenv("OTEL_TRACES_EXPORTER", "none")
	t.Setenv("OTEL_METRICS_EXPORTER", "none")
	t.Setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "0")
	t.Setenv("OTEL_METRIC_EXPORT_INTERVAL", "1000")
	t.Setenv("OTEL_BSP_MAX_QUEUE_SIZE", "2048")
	tel, err := otelx.New(t.Context())
	if err != nil {
		t.Fatalf("New: got %v, want nil", err)
	}
	if err := tel.Shutdown(t.Context()); err != nil {
		t.Fatalf("Shutdown: got %v, want nil", err)
	}
}

// New trims the exporter variables, but autoexport, which builds console
// and prometheus, reads them as they are: a padded value must fail naming
// the variable, not with autoexport's "unknown exporter or metrics
// producer".
func TestPaddedAutoexportExporterIsAnEnvError(t *testing.T) {
	for _, tc := range []struct{ name, value string }{
		{"OTEL_TRACES_EXPORTER", " console"},
		{"OTEL_METRICS_EXPORTER", "console "},
		{"OTEL_METRICS_EXPORTER", " prometheus "},
	} {
		t.Run(tc.name+"="+tc.value, func(t *testing.T) {
			t.Setenv("OTEL_TRACES_EXPORTER", "none")
			t.Setenv("OTEL_METRICS_EXPORTER", "none")
			t.Setenv(tc.name, tc.value)
			wantEnvError(t, tc.name)
		})
	}
}

// otlp and none, which New builds itself, are read trimmed.
func TestPaddedOTLPAndNoneExportersAreAccepted(t *testing.T) {
	t.Setenv("OTEL_TRACES_EXPORTER", " none ")
	t.Setenv("OTEL_METRICS_EXPORTER", " none")
	tel, err := otelx.New(t.Context())
	if err != nil {
		t.Fatalf("New: got %v, want nil", err)
	}
	_ = tel.Shutdown(t.Context())
}
