package core

// Cycle finders, each a use of one depth-first walk of the requirement
// graph (walk): the chain of starts in a context (checkCycle), the
// waits-for edges between starting services (waitCycle), static
// requirements with the After edges they imply (staticCycle), and the
// After edges among one parent's requirements (afterCycle).

import (
	"context"
	"slices"

	"github.com/samber/lo"

	"github.com/coreservice/coreservice/internal/values"
)

// walk is the depth-first walk of the requirement graph that every cycle
// finder runs: the finder gives the edges (next) and says which node closes
// a cycle (ends); the walk expands each node once, keeping the route from
// its root to where it is, and stops at the first node that closes one.
// The nodes one call to from expands are not expanded again by the next.
// It keeps its marks in a map (keyWalk) or, for nodes that are indexes, a
// slice (indexWalk); the zero walk has none, which is enough for a walk
// without edges whose ends is set (checkCycle's).
type walk[N comparable] struct {
	get func(N) mark  // a node's mark
	set func(N, mark) // sets a node's mark
}

type mark uint8

const (
	unseen  mark = iota
	onRoute      // being expanded: on the route
	done         // expanded: no cycle through it
)

// keyWalk returns a walk that keeps its marks in m. It inlines, so a map
// that the caller makes stays on the caller's stack while it is small.
func keyWalk[N comparable](m map[N]mark) walk[N] {
	return walk[N]{get: func(n N) mark { return m[n] }, set: func(n N, v mark) { m[n] = v }}
}

// indexWalk returns a walk of the nodes 0 to len(m)-1 that keeps its marks
// in m.
func indexWalk(m []mark) walk[int] {
	return walk[int]{get: func(i int) mark { return m[i] }, set: func(i int, v mark) { m[i] = v }}
}

// from walks from root and returns the route to the first node that closes
// a cycle, that node included last, or nil. next returns the edges from a
// node, in the order to try them; a nil next, or a nil or empty result, is
// no edges (such a node is never marked: next is called again each time
// the walk meets it). ends reports whether reaching a node closes a cycle;
// a nil ends means when the node is on the route. The route is on the
// caller's stack while it is at most 8 nodes long.
func (w *walk[N]) from(root N, next func(N) []N, ends func(N) bool) []N {
	var buf [8]N
	return w.visit(buf[:0], root, next, ends)
}

// visit returns the route to the first node that closes a cycle at n or
// beyond, or nil; route is the route to n, n excluded. The route and the
// functions are arguments, not fields, so that what the caller makes stays
// on its stack.
func (w *walk[N]) visit(route []N, n N, next func(N) []N, ends func(N) bool) []N {
	if ends != nil && ends(n) || ends == nil && w.onRoute(n) {
		return append(route, n)
	}
	if next == nil || w.get(n) != unseen {
		return nil
	}
	edges := next(n)
	if len(edges) == 0 {
		return nil
	}
	w.set(n, onRoute)
	route = append(route, n)
	for _, to := range edges {
		if cycle := w.visit(route, to, next, ends); cycle != nil {
			return cycle
		}
	}
	w.set(n, done)
	return nil
}

// onRoute reports whether n is being expanded.
func (w *walk[N]) onRoute(n N) bool { return w.get(n) == onRoute }

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

// waiting returns the services b's start is waiting for.
func (b *Base) waiting() []*Base {
	b.mu.Lock()
	defer b.mu.Unlock()
	return lo.Keys(b.waits)
}

// waitCycle looks for a chain of waiting starts from w back to a service of
// ctx's start chain: each service in it waits for the next to be Running,
// so none ever would be. It is checked by every waiter after recording its
// own wait, so of two chains closing a cycle at once, the later one sees it.
func waitCycle(ctx context.Context, w *Base) error {
	return chainCycle(ctx, w, (*Base).waiting)
}

// checkCycle reports b being started again further down its own start
// chain: the walk from b with no edges.
func checkCycle(ctx context.Context, b *Base) error {
	return chainCycle(ctx, b, nil)
}

// chainCycle walks from n along next (nil: no edges) to a service whose
// start is under way in ctx's start chain, and returns the cycle that
// closes: the chain from that service on, then the route to it again.
func chainCycle(ctx context.Context, n *Base, next func(*Base) []*Base) error {
	path, _ := ctx.Value(pathKey{}).([]*Base)
	var w walk[*Base]
	if next != nil {
		w = keyWalk(make(map[*Base]mark))
	}
	route := w.from(n, next, func(m *Base) bool { return slices.Contains(path, m) })
	if route == nil {
		return nil
	}
	return cycleError(slices.Concat(path[slices.Index(path, route[len(route)-1]):], route))
}

// cycleError names the services of a cycle, the first repeated last.
func cycleError(cycle []*Base) *CycleError {
	return &CycleError{Path: lo.Map(cycle, func(n *Base, _ int) string { return n.name })}
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

// step is an edge of the static graph, and the node it leads to: a service
// and whether it was reached through an Await (whose waiter does not start
// it).
type step struct {
	to      *Base
	awaited bool
}

// staticCycle returns the names along a cycle of static requirements (and
// lazy ones already built) reachable from b, or nil, and the service
// required by b through which the walk reached it. Edges go from a
// service to what it requires or awaits, and, for a service reached
// through an Await, to the siblings its parent starts it After: each waits
// for the other to be Running.
func staticCycle(b *Base) (*CycleError, *Base) {
	// First every edge of the services reachable from b: the After edges
	// of a parent apply wherever its requirements are reached. Breadth
	// first: a service's After edges from several parents are tried in the
	// order the parents are found, and that order picks the cycle named.
	edges := make(map[*Base][]step)
	var after map[*Base][]step // After edges, between services
	queue := []*Base{b}
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		if _, ok := edges[n]; ok {
			continue
		}
		edges[n] = []step{}
		for _, r := range n.cfg.requirements {
			child := resolvedBase(n, r)
			if child == nil {
				continue
			}
			edges[n] = append(edges[n], step{child, !r.Owned()})
			queue = append(queue, child)
			for _, a := range r.After() {
				if to := resolvedBase(n, a); to != nil {
					if after == nil {
						after = make(map[*Base][]step)
					}
					after[child] = append(after[child], step{to, true})
				}
			}
		}
	}
	// An After edge is a wait only for a service reached through an Await:
	// one reached through Requires or Lazy is started by whoever requires
	// it, which does not wait for its parent's After. A service is on the
	// route however it was reached.
	w := keyWalk(make(map[step]mark))
	route := w.from(step{b, false}, func(s step) []step {
		if s.awaited && len(after[s.to]) > 0 {
			return slices.Concat(edges[s.to], after[s.to])
		}
		return edges[s.to]
	}, func(s step) bool {
		return w.onRoute(step{s.to, false}) || w.onRoute(step{s.to, true})
	})
	if route == nil {
		return nil, nil
	}
	last := route[len(route)-1].to
	start := slices.IndexFunc(route, func(s step) bool { return s.to == last })
	return &CycleError{Path: lo.Map(route[start:], func(s step, _ int) string { return s.to.name })}, route[1].to
}

// afterCycle returns the names along a cycle of After edges between the
// requirements of one parent, or nil.
func afterCycle(states []*reqState) []string {
	w := indexWalk(make([]mark, len(states)))
	next := func(i int) []int { return states[i].after }
	for i := range states {
		if route := w.from(i, next, nil); route != nil {
			start := slices.Index(route, route[len(route)-1])
			return lo.Map(route[start:], func(j, _ int) string { return states[j].name })
		}
	}
	return nil
}
