package core

import (
	"fmt"
	"testing"
)

// The dependents of a service keep every parent once, whichever is removed,
// also past the length at which they are indexed.
func TestDependentsRemoveKeepsTheOthers(t *testing.T) {
	for _, n := range []int{1, dependentsIndexed, dependentsIndexed + 1, 3 * dependentsIndexed} {
		for _, drop := range []int{0, n / 2, n - 1} {
			var d dependents
			parents := make([]*Base, n)
			for i := range parents {
				parents[i] = &Base{name: fmt.Sprint(i)}
				d.add(parents[i], "r"+fmt.Sprint(i))
			}
			d.remove(parents[drop])
			d.remove(&Base{}) // not recorded: no change
			if got, want := len(d.list), n-1; got != want {
				t.Fatalf("n=%d drop=%d: got %d dependents, want %d", n, drop, got, want)
			}
			seen := map[*Base]bool{}
			for i, e := range d.list {
				if e.parent == parents[drop] || seen[e.parent] || e.name != "r"+e.parent.name {
					t.Fatalf("n=%d drop=%d: got dependent %q as %q, want each remaining parent once under its own name", n, drop, e.parent.name, e.name)
				}
				if d.index != nil && d.index[e.parent] != i {
					t.Fatalf("n=%d drop=%d: got index %d for %q, want %d", n, drop, d.index[e.parent], e.parent.name, i)
				}
				seen[e.parent] = true
			}
		}
	}
}

// A latch opened before anyone waits makes no channel; one waited on before
// it opens is closed when it opens.
func TestLatchMakesAChannelOnlyForAWaiter(t *testing.T) {
	var early latch
	early.open()
	if !early.isOpen() || early.ch != closedDone {
		t.Fatalf("got an opened latch with a channel of its own (open %v), want the shared closed one", early.isOpen())
	}
	select {
	case <-early.wait():
	default:
		t.Fatalf("got an open channel from an opened latch, want a closed one")
	}
	var late latch
	ch := late.wait()
	select {
	case <-ch:
		t.Fatalf("got a closed channel from a shut latch, want an open one")
	default:
	}
	late.open()
	if !late.isOpen() {
		t.Fatalf("got a shut latch after open, want it open")
	}
	select {
	case <-ch:
	default:
		t.Fatalf("got an open channel after the latch opened, want a closed one")
	}
}
