//go:build !race

package core_test

import (
	"testing"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/internal/coretest"
)

// With no OnEvent hook and a logger that records nothing, a state change
// raises its event at no cost: no allocation, no record built. The race
// detector allocates on its own, hence the build tag.
func TestStateChangeAllocatesNothingWhileNobodyListens(t *testing.T) {
	s := core.NewService(core.Name("s"), core.Logger(coretest.Quiet()))
	for _, edge := range [][2]core.State{
		{core.StateNew, core.StateStarting}, {core.StateStarting, core.StateRunning},
		{core.StateRunning, core.StateStopping}, {core.StateStopping, core.StateFailed},
	} {
		if n := testing.AllocsPerRun(100, func() { core.Transition(s, edge[0], edge[1]) }); n != 0 {
			t.Errorf("%v -> %v: got %v allocations, want 0", edge[0], edge[1], n)
		}
	}
}

// So do the events the service raises on failures: a failing check, a
// failed requirement, a stop timeout.
func TestFailureEventsAllocateNothingWhileNobodyListens(t *testing.T) {
	s := core.NewService(core.Name("s"), core.Logger(coretest.Quiet()))
	units := []string{"u"}
	for name, raise := range map[string]func(){
		"CheckFailed":       func() { core.Emit(s, core.CheckFailed{Service: "s", Check: "c", Failures: 1, Threshold: 3}) },
		"RequirementFailed": func() { core.Emit(s, core.RequirementFailed{Service: "s", Requirement: "r"}) },
		"StopTimedOut":      func() { core.Emit(s, core.StopTimedOut{Service: "s", Units: units}) },
	} {
		if n := testing.AllocsPerRun(100, raise); n != 0 {
			t.Errorf("%s: got %v allocations, want 0", name, n)
		}
	}
}
