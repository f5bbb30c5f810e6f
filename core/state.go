package core

import "strconv"

// State is a point in a service's lifecycle. A service moves only forward:
//
//	New -> Starting -> Running -> Stopping -> Terminated | Failed
//	New -> Starting -> Stopping (start rolled back) -> Failed | Terminated (stopped while starting)
//
// A failed start is rolled back by the stop sequence (OnStop hooks,
// requirements released, StopTimeout bounds), so the service reports
// Stopping while its rollback runs, as during any stop: Starting means a
// start still under way, Stopping that the service is going down and Done is
// about to close. Terminated and Failed are final: a service is never
// restarted.
//
// These edges are the only ones: every change goes through one transition
// that refuses any other, and raises a StateChanged event (see OnEvent).
type State int32

const (
	// StateNew is a service that was never started. It leads to
	// StateStarting (Start) and stays New on Stop, which is a no-op.
	StateNew State = iota
	// StateStarting is a service whose Start is under way. It leads to
	// StateRunning, or to StateStopping when the start failed or Stop was
	// called during it, and is rolled back.
	StateStarting
	// StateRunning is a started service doing its work. It leads to
	// StateStopping, on Stop or on a failure.
	StateRunning
	// StateStopping is a service whose stop sequence, or the rollback of its
	// start, is under way. It leads to StateTerminated, or StateFailed when a
	// failure caused the stop (a failed start included; Stop called during
	// the start ends in StateTerminated unless the start also failed for a
	// reason of its own).
	StateStopping
	// StateTerminated is a service that stopped cleanly. Final.
	StateTerminated
	// StateFailed is a service that failed to start, or stopped because of a
	// failure; Err returns the cause. Final.
	StateFailed
)

var stateNames = [...]string{"new", "starting", "running", "stopping", "terminated", "failed"}

// String returns the lower-case name of the state, such as "running".
func (s State) String() string {
	if s >= 0 && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// final reports whether the state is Terminated or Failed.
func (s State) final() bool { return s == StateTerminated || s == StateFailed }
