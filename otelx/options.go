package otelx

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Option configures New and Setup. Options are values: they can be printed
// and compared. A later option of the same kind replaces an earlier one.
type Option interface {
	apply(*config)
}

// config holds New's settings, built by newConfig.
type config struct {
	serviceName   string
	logger        *slog.Logger
	errorInterval time.Duration
	errs          []error
}

// DefaultErrorInterval is how often, at most, Setup's error handler logs an
// OpenTelemetry error (an export that failed, say); the errors in between are
// counted and the count logged with the next one.
const DefaultErrorInterval = time.Minute

func newConfig(opts []Option) (*config, error) {
	c := &config{errorInterval: DefaultErrorInterval}
	for _, o := range opts {
		if o == nil {
			c.errs = append(c.errs, errors.New("nil option"))
			continue
		}
		o.apply(c)
	}
	if len(c.errs) > 0 {
		return nil, fmt.Errorf("otelx: %w", errors.Join(c.errs...))
	}
	return c, nil
}

// ServiceName sets the service.name resource attribute of everything
// exported. It takes precedence over OTEL_SERVICE_NAME and a service.name in
// OTEL_RESOURCE_ATTRIBUTES; without any of them, the name is the program's
// (the base name of os.Args[0]). An empty name is invalid.
func ServiceName(name string) Option { return serviceNameOption(name) }

type serviceNameOption string

func (o serviceNameOption) apply(c *config) {
	if o == "" {
		c.errs = append(c.errs, errors.New("otelx.ServiceName: empty name"))
		return
	}
	c.serviceName = string(o)
}
func (o serviceNameOption) String() string { return fmt.Sprintf("otelx.ServiceName(%q)", string(o)) }

// Logger sets where Setup's error handler logs OpenTelemetry's own errors
// (failed exports). Nil, the default, means slog.Default() at the time of
// each line, so that a program may call slog.SetDefault after Setup.
func Logger(l *slog.Logger) Option { return loggerOption{l} }

type loggerOption struct{ l *slog.Logger }

func (o loggerOption) apply(c *config) { c.logger = o.l }
func (o loggerOption) String() string  { return "otelx.Logger(...)" }

// ErrorInterval sets how often, at most, Setup's error handler logs an
// OpenTelemetry error; default DefaultErrorInterval. It must be positive.
func ErrorInterval(d time.Duration) Option { return errorIntervalOption(d) }

type errorIntervalOption time.Duration

func (o errorIntervalOption) apply(c *config) {
	if o <= 0 {
		c.errs = append(c.errs, fmt.Errorf("otelx.ErrorInterval(%v): want > 0", time.Duration(o)))
		return
	}
	c.errorInterval = time.Duration(o)
}
func (o errorIntervalOption) String() string {
	return fmt.Sprintf("otelx.ErrorInterval(%v)", time.Duration(o))
}
