package core

import (
	"log/slog"
	"time"
)

// Events raised by the units of packages deps (supervision) and leader
// (leader election), with Host.Emit.

// RestartScheduled is raised by a supervisor (deps.Supervise) when the
// instance it runs failed or stopped while its parent runs, or when a
// restart failed: the next restart, number Attempt, begins after Delay.
type RestartScheduled struct {
	// Service is the name of the supervisor, set by Host.Emit.
	Service string
	// Instance is the name of the instance that failed, or of the one
	// whose restart failed; empty when the factory failed before building
	// one.
	Instance string
	// Attempt is the number of the restart scheduled, from 1 in a streak
	// of restarts that the policy's Reset ends.
	Attempt int
	// Delay is the wait before the restart, as the policy gave it.
	Delay time.Duration
	// Err is why: the instance's failure (an error saying that it stopped,
	// when it stopped without failing), or the failure of the last restart.
	Err error
}

// Restarted is raised by a supervisor (deps.Supervise) once a new instance
// it built is Running and passed its Healthcheck.
type Restarted struct {
	// Service is the name of the supervisor, set by Host.Emit.
	Service string
	// Instance is the name of the new instance.
	Instance string
	// Attempt is the number of the restart that succeeded, from 1.
	Attempt int
	// Downtime is how long the supervisor had no instance Running: from
	// the failure to the new instance's start.
	Downtime time.Duration
}

// RestartGaveUp is raised by a supervisor (deps.Supervise) when its policy
// says backoff.Stop, or a restart failed with a backoff.Permanent error:
// the supervisor fails with Err, and so do its parents.
type RestartGaveUp struct {
	// Service is the name of the supervisor, set by Host.Emit.
	Service string
	// Attempts is how many restarts were tried in the last streak.
	Attempts int
	// Err is the last cause: the failure the supervisor could not restart
	// away.
	Err error
}

// LeadershipWon is raised by package leader when this replica is elected.
type LeadershipWon struct {
	// Service is the name of the service, set by Host.Emit.
	Service string
	// Unit is what campaigned: "task report", or the requirement of a
	// leader.Service.
	Unit string
	// Token is the term's fencing token.
	Token uint64
}

// LeadershipLost is raised by package leader when a term of this replica
// ends: lost (Err says why) or resigned (Err is nil), such as by the
// service's stop.
type LeadershipLost struct {
	// Service is the name of the service, set by Host.Emit.
	Service string
	// Unit is what campaigned, as in LeadershipWon.
	Unit string
	// Token is the fencing token of the term that ended.
	Token uint64
	// Err is why the term was lost; nil when it was resigned.
	Err error
}

func (e RestartScheduled) level() slog.Level { return slog.LevelWarn }
func (e RestartScheduled) message() string   { return "restart scheduled" }
func (e RestartScheduled) attrs() []slog.Attr {
	var a []slog.Attr
	if e.Instance != "" {
		a = append(a, slog.String("instance", e.Instance))
	}
	return append(a, slog.Int("attempt", e.Attempt), slog.Duration("restart_in", e.Delay), slog.Any("error", e.Err))
}

// LogValue returns the event as a group: service, instance (when there is
// one), attempt, restart_in (the delay) and error.
func (e RestartScheduled) LogValue() slog.Value { return eventValue(e.Service, e.attrs()) }

func (e Restarted) level() slog.Level { return slog.LevelInfo }
func (e Restarted) message() string   { return "restarted" }
func (e Restarted) attrs() []slog.Attr {
	return []slog.Attr{slog.String("instance", e.Instance), slog.Int("attempt", e.Attempt),
		slog.Duration("downtime", e.Downtime)}
}

// LogValue returns the event as a group: service, instance, attempt and
// downtime.
func (e Restarted) LogValue() slog.Value { return eventValue(e.Service, e.attrs()) }

// The supervisor then fails with Err, which its state change logs at ERROR:
// one ERROR per failure.
func (e RestartGaveUp) level() slog.Level { return slog.LevelWarn }
func (e RestartGaveUp) message() string   { return "gave up restarting" }
func (e RestartGaveUp) attrs() []slog.Attr {
	return []slog.Attr{slog.Int("attempts", e.Attempts), slog.Any("error", e.Err)}
}

// LogValue returns the event as a group: service, attempts and error.
func (e RestartGaveUp) LogValue() slog.Value { return eventValue(e.Service, e.attrs()) }

func (e LeadershipWon) level() slog.Level { return slog.LevelInfo }
func (e LeadershipWon) message() string   { return "elected leader" }
func (e LeadershipWon) attrs() []slog.Attr {
	return []slog.Attr{slog.String("unit", e.Unit), slog.Uint64("token", e.Token)}
}

// LogValue returns the event as a group: service, unit and token.
func (e LeadershipWon) LogValue() slog.Value { return eventValue(e.Service, e.attrs()) }

func (e LeadershipLost) level() slog.Level {
	if e.Err != nil {
		return slog.LevelWarn
	}
	return slog.LevelInfo
}

func (e LeadershipLost) message() string {
	if e.Err != nil {
		return "leadership lost"
	}
	return "leadership resigned"
}

func (e LeadershipLost) attrs() []slog.Attr {
	a := []slog.Attr{slog.String("unit", e.Unit), slog.Uint64("token", e.Token)}
	if e.Err != nil {
		a = append(a, slog.Any("error", e.Err))
	}
	return a
}

// LogValue returns the event as a group: service, unit, token and, when
// lost, error.
func (e LeadershipLost) LogValue() slog.Value { return eventValue(e.Service, e.attrs()) }
