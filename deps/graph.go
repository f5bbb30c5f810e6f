package deps

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/internal/values"
)

// dependent is what Graph needs of a service to walk its requirements;
// *core.Base and the types embedding it have it.
type dependent interface {
	Dependencies() []core.Dependency
}

// Graph renders svcs and, recursively, their requirements as a Graphviz
// DOT digraph (render it with `dot -Tsvg`). Each service is one node, even
// when several parents share it, labelled with its name and state and
// coloured by state; an edge points from a parent to what it requires,
// dashed for Await; a dotted edge labelled "after" points from a
// requirement to the sibling it starts after. A Lazy requirement not yet
// built is a dashed node with its requirement name. Output is
// deterministic: nodes and edges come in registration order.
//
// Graph reads the services' current state and is safe to call at any time,
// also while they start and stop.
func Graph(svcs ...core.Service) string {
	g := &graph{ids: make(map[any]string)}
	for _, s := range svcs {
		if !values.IsNil(s) {
			g.service(s)
		}
	}
	var b strings.Builder
	b.WriteString("digraph coreservice {\n\trankdir=LR;\n\tnode [shape=box, style=filled, fontname=\"Helvetica\"];\n")
	for _, line := range g.lines {
		b.WriteString("\t" + line + "\n")
	}
	b.WriteString("}\n")
	return b.String()
}

type graph struct {
	ids   map[any]string // service or requirement -> node id
	lines []string
}

var stateColors = map[core.State]string{
	core.StateNew:        "white",
	core.StateStarting:   "lightyellow",
	core.StateRunning:    "palegreen",
	core.StateStopping:   "lightyellow",
	core.StateTerminated: "lightgrey",
	core.StateFailed:     "salmon",
}

// service adds s and everything it requires, returning s's node id.
func (g *graph) service(s core.Service) string {
	key := nodeKey(s)
	if id, ok := g.ids[key]; ok {
		return id
	}
	id := "n" + strconv.Itoa(len(g.ids)+1)
	g.ids[key] = id
	st := s.State()
	g.lines = append(g.lines, fmt.Sprintf("%s [label=%s, fillcolor=%s];",
		id, strconv.Quote(s.Name()+"\n"+st.String()), stateColors[st]))
	d, ok := s.(dependent)
	if !ok {
		return id
	}
	deps := d.Dependencies()
	childIDs := make(map[any]string, len(deps))
	for _, dep := range deps {
		child := g.requirement(dep)
		childIDs[nodeKey(dep.Requirement)] = child
		style := ""
		if !dep.Requirement.Owned() {
			style = " [style=dashed, label=\"awaits\"]"
		}
		g.lines = append(g.lines, fmt.Sprintf("%s -> %s%s;", id, child, style))
	}
	for _, dep := range deps {
		for _, a := range dep.Requirement.After() {
			if to, ok := childIDs[nodeKey(a)]; ok {
				g.lines = append(g.lines, fmt.Sprintf("%s -> %s [style=dotted, label=\"after\"];",
					childIDs[nodeKey(dep.Requirement)], to))
			}
		}
	}
	return id
}

// requirement adds the service behind dep, or a placeholder for a Lazy one
// not yet built.
func (g *graph) requirement(dep core.Dependency) string {
	svc := dep.Service
	if svc == nil {
		if sr, ok := dep.Requirement.(core.StaticRequirement); ok {
			svc = sr.Known()
		}
	}
	if !values.IsNil(svc) {
		return g.service(svc)
	}
	key := nodeKey(dep.Requirement)
	if id, ok := g.ids[key]; ok {
		return id
	}
	id := "n" + strconv.Itoa(len(g.ids)+1)
	g.ids[key] = id
	g.lines = append(g.lines, fmt.Sprintf("%s [label=%s, style=dashed, fillcolor=white];",
		id, strconv.Quote(dep.Requirement.Name()+"\nnot built")))
	return id
}

// nodeKey is a map key identifying v: v itself when its type is
// comparable (services and requirements are pointers in practice); a value
// of another type gets a key of its own, so it is drawn once per mention.
func nodeKey(v any) any {
	if v != nil && reflect.TypeOf(v).Comparable() {
		return v
	}
	return new(int)
}
