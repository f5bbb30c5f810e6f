package core

// Cycle finders: the chain of starts in a context, the waits-for edges
// between starting services, static requirements and After edges.

import (
	"context"
	"slices"

	"github.com/coreservice/coreservice/internal/values"
)

// pathKey is the context key of the chain of services being started, used
// to find requirement cycles: a service acquired while its own start is
// under way further up the chain.
type pathKey struct{}

func withPath(ctx context.Context, b *Base) context.Context {
	path, _ := ctx.Value(pathKey{}).([]*Base)
	return context.WithValue(ctx, pathKey{}, append(slices.Clip(path), b))
}

// lastInPath returns the service whose start is the innermost one in ctx.
func lastInPath(ctx context.Context) *Base {
	path, _ := ctx.Value(pathKey{}).([]*Base)
	if len(path) == 0 {
		return nil
	}
	return path[len(path)-1]
}

// addWait records (n = 1) or forgets (n = -1) that b's start waits for w.
func (b *Base) addWait(w *Base, n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.waits == nil {
		b.waits = make(map[*Base]int)
	}
	if b.waits[w] += n; b.waits[w] <= 0 {
		delete(b.waits, w)
	}
}

// waitCycle looks for a chain of waiting starts from w back to a service of
// ctx's start chain: each service in it waits for the next to be Running,
// so none ever would be. It is checked by every waiter after recording its
// own wait, so of two chains closing a cycle at once, the later one sees it.
func waitCycle(ctx context.Context, w *Base) error {
	path, _ := ctx.Value(pathKey{}).([]*Base)
	seen := make(map[*Base]bool)
	var route []*Base
	var visit func(n *Base) []*Base
	visit = func(n *Base) []*Base {
		route = append(route, n)
		if i := slices.Index(path, n); i >= 0 {
			return append(slices.Clone(path[i:]), route...)
		}
		if !seen[n] {
			seen[n] = true
			n.mu.Lock()
			next := make([]*Base, 0, len(n.waits))
			for m := range n.waits {
				next = append(next, m)
			}
			n.mu.Unlock()
			for _, m := range next {
				if c := visit(m); c != nil {
					return c
				}
			}
		}
		route = route[:len(route)-1]
		return nil
	}
	if cycle := visit(w); cycle != nil {
		return cycleError(cycle)
	}
	return nil
}

// checkCycle reports b being started again further down its own start
// chain.
func checkCycle(ctx context.Context, b *Base) error {
	path, _ := ctx.Value(pathKey{}).([]*Base)
	if i := slices.Index(path, b); i >= 0 {
		return cycleError(append(slices.Clone(path[i:]), b))
	}
	return nil
}

// cycleError names the services of a cycle, the first repeated last.
func cycleError(cycle []*Base) *CycleError {
	names := make([]string, len(cycle))
	for i, n := range cycle {
		names[i] = n.name
	}
	return &CycleError{Path: names}
}

// knownBase returns the *Base behind a static requirement, or nil.
func knownBase(r Requirement) *Base {
	if sr, ok := r.(StaticRequirement); ok {
		if child, ok := sr.Known().(baser); ok && !values.IsNil(child) && child.coreBase().invalid() == nil {
			return child.coreBase()
		}
	}
	return nil
}

// resolvedBase is knownBase, or for a lazy requirement of n already built
// in n's start, the *Base it built.
func resolvedBase(n *Base, r Requirement) *Base {
	if k := knownBase(r); k != nil {
		return k
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, st := range n.reqs {
		if st.svc != nil && values.Same(st.r, r) {
			if bb, ok := st.svc.(baser); ok && bb.coreBase() != nil {
				return bb.coreBase()
			}
		}
	}
	return nil
}

// staticCycle returns the names along a cycle of static requirements (and
// lazy ones already built) reachable from b, or nil, and the service
// required by b through which the walk reached it. Edges go from a
// service to what it requires or awaits, and, for a service reached
// through an Await (whose waiter does not start it), to the siblings its
// parent starts it After: each waits for the other to be Running.
func staticCycle(b *Base) (*CycleError, *Base) {
	type edge struct {
		to      *Base
		awaited bool // an Await: the waiting service does not start it
	}
	// First every edge of the services reachable from b: the After edges
	// of a parent apply wherever its requirements are reached.
	edges := make(map[*Base][]edge)
	after := make(map[*Base][]*Base) // After edges, between services
	queue := []*Base{b}
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		if _, ok := edges[n]; ok {
			continue
		}
		edges[n] = []edge{}
		for _, r := range n.cfg.requirements {
			child := resolvedBase(n, r)
			if child == nil {
				continue
			}
			edges[n] = append(edges[n], edge{child, !r.Owned()})
			queue = append(queue, child)
			for _, a := range r.After() {
				if to := resolvedBase(n, a); to != nil {
					after[child] = append(after[child], to)
				}
			}
		}
	}
	// An After edge is a wait only for a service reached through an Await:
	// one reached through Requires or Lazy is started by whoever requires
	// it, which does not wait for its parent's After.
	type visitKey struct {
		n       *Base
		awaited bool
	}
	var path []*Base
	seen := make(map[visitKey]bool)
	var visit func(n *Base, awaited bool) []*Base
	visit = func(n *Base, awaited bool) []*Base {
		if i := slices.Index(path, n); i >= 0 {
			return append(slices.Clone(path[i:]), n)
		}
		if seen[visitKey{n, awaited}] {
			return nil
		}
		seen[visitKey{n, awaited}] = true
		path = append(path, n)
		next := edges[n]
		if awaited {
			for _, to := range after[n] {
				next = append(slices.Clip(next), edge{to, true})
			}
		}
		for _, e := range next {
			if p := visit(e.to, e.awaited); p != nil {
				return p
			}
		}
		path = path[:len(path)-1]
		return nil
	}
	cycle := visit(b, false)
	if cycle == nil {
		return nil, nil
	}
	if len(path) > 1 {
		return cycleError(cycle), path[1]
	}
	return cycleError(cycle), b
}

// afterCycle returns the names along a cycle of After edges, or nil.
func afterCycle(states []*reqState) []string {
	const (
		unseen = iota
		onPath
		doneVisit
	)
	mark := make([]int, len(states))
	var stack []int
	var visit func(i int) []string
	visit = func(i int) []string {
		mark[i] = onPath
		stack = append(stack, i)
		for _, j := range states[i].after {
			switch mark[j] {
			case onPath:
				k := slices.Index(stack, j)
				var names []string
				for _, n := range stack[k:] {
					names = append(names, states[n].name)
				}
				return append(names, states[j].name)
			case unseen:
				if p := visit(j); p != nil {
					return p
				}
			}
		}
		stack = stack[:len(stack)-1]
		mark[i] = doneVisit
		return nil
	}
	for i := range states {
		if mark[i] == unseen {
			if p := visit(i); p != nil {
				return p
			}
		}
	}
	return nil
}
