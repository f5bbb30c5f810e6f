package core_test

import (
	"fmt"
	"log/slog"
	"testing"
	"testing/synctest"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/internal/coretest"
)

var allStates = []core.State{core.StateNew, core.StateStarting, core.StateRunning, core.StateStopping,
	core.StateTerminated, core.StateFailed}

// The legal edges of the State doc, and no other.
var legalEdges = map[[2]core.State]bool{
	{core.StateNew, core.StateStarting}:        true,
	{core.StateStarting, core.StateRunning}:    true,
	{core.StateStarting, core.StateStopping}:   true,
	{core.StateRunning, core.StateStopping}:    true,
	{core.StateStopping, core.StateTerminated}: true,
	{core.StateStopping, core.StateFailed}:     true,
}

// Every one of the 36 edges between the six states goes through the one
// transition: a legal edge moves the service, raises StateChanged (to the
// hooks and to the log, as one record "service <to>"); an illegal one is
// reported loudly (an error record, or a panic when built with
// -tags coreassert) and changes nothing: the state is kept and no event is
// raised.
func TestEveryEdgeIsCheckedByTheOneTransition(t *testing.T) {
	for _, from := range allStates {
		for _, to := range allStates {
			t.Run(fmt.Sprintf("%v->%v", from, to), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					logs := coretest.NewLogs()
					var hooked coretest.Events
					s := core.NewService(core.Name("s"), core.Logger(logs.Logger()), core.OnEvent(hooked.Hook))
					after, moved, panicked := transition(s, from, to)
					synctest.Wait() // the hooks have had what was raised
					legal := legalEdges[[2]core.State{from, to}]
					if !legal {
						if moved || (!panicked && after != from) {
							t.Fatalf("illegal edge: got moved=%v, state %v, want the state kept (%v)", moved, after, from)
						}
						if got := hooked.All(); len(got) != 0 {
							t.Fatalf("illegal edge: hooks got %v, want no event", got)
						}
						if core.AssertTransitions {
							if !panicked {
								t.Fatal("illegal edge with -tags coreassert: got no panic, want one")
							}
							return
						}
						var errs []coretest.Record
						for _, r := range logs.Records() {
							if r.Level == slog.LevelError && r.Attrs["from"] == from.String() && r.Attrs["to"] == to.String() {
								errs = append(errs, r)
							}
						}
						if len(errs) != 1 || errs[0].Attrs["stack"] == "" {
							t.Fatalf("illegal edge: got records %+v, want one error record with from, to and the stack", logs.Records())
						}
						return
					}
					if panicked || !moved || after != to {
						t.Fatalf("legal edge: got moved=%v, panicked=%v, state %v, want moved to %v", moved, panicked, after, to)
					}
					want := core.StateChanged{Service: "s", From: from, To: to}
					if got := hooked.All(); len(got) != 1 || got[0] != core.Event(want) {
						t.Fatalf("legal edge: hooks got %v, want [%+v]", got, want)
					}
					recs := logs.Find("service " + to.String())
					if len(recs) != 1 || recs[0].Attrs["from"] != from.String() || recs[0].Attrs["state"] != to.String() {
						t.Fatalf("legal edge: got log records %+v, want one %q with from=%v state=%v",
							logs.Records(), "service "+to.String(), from, to)
					}
				})
			})
		}
	}
}

func transition(s *core.Base, from, to core.State) (after core.State, moved, panicked bool) {
	defer func() {
		if recover() != nil {
			panicked = true
		}
	}()
	after, moved = core.Transition(s, from, to)
	return after, moved, false
}
