package deps

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"unicode"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/internal/identity"
	"github.com/coreservice/coreservice/internal/values"
)

// dependent is what Graph needs of a service to walk its requirements;
// *core.Base and the types embedding it have it.
type dependent interface {
	Dependencies() []core.Dependency
}

// statuser is what Graph shows of the statuses a service's units set.
type statuser interface {
	Statuses() []core.Status
}

// Graph renders svcs and, recursively, their requirements as a Graphviz
// DOT digraph (render it with `dot -Tsvg`). Each service is one node, even
// when several parents share it and see it through different types (a
// *Store and its *core.Base are one service), labelled with its name, its
// state and the statuses its units set, one "<name>: <text>" line each
// (core.Host.SetStatus: a supervisor's restarts, a leader's role),
// escaped for Graphviz so that names show as written, and
// coloured by state; an edge points from a parent to what it requires,
// dashed for Await; a dotted edge labelled "after" points from a
// requirement to the sibling it starts after. A Lazy requirement not yet
// built is a dashed node with its requirement name. Output is
// deterministic: nodes and edges come in registration order.
//
// Graph reads the services' current state and is safe to call at any time,
// also while they start and stop. A service whose methods panic (a type
// embedding a nil *core.Base) is drawn as a node saying so.
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

// service adds s and everything it requires, returning s's node id. A
// service is one node whatever type it is seen through (its *core.Base).
func (g *graph) service(s core.Service) string {
	key := identity.Of(s)
	if id, ok := g.ids[key]; ok {
		return id
	}
	id := "n" + strconv.Itoa(len(g.ids)+1)
	g.ids[key] = id
	name, st, deps, statuses, err := inspect(s)
	if err != nil {
		g.lines = append(g.lines, fmt.Sprintf("%s [label=%s, fillcolor=salmon];",
			id, dotLabel(fmt.Sprintf("%T", s), "not usable: "+err.Error())))
		return id
	}
	label := []string{name, st.String()}
	for _, s := range statuses {
		label = append(label, s.Name+": "+s.Text)
	}
	g.lines = append(g.lines, fmt.Sprintf("%s [label=%s, fillcolor=%s];",
		id, dotLabel(label...), stateColors[st]))
	// childIDs[i] is the node of deps[i]; byReq finds the one After names
	// (a requirement of a type that is not comparable is never found).
	childIDs := make([]string, len(deps))
	byReq := make(map[any]string, len(deps))
	for i, dep := range deps {
		child := g.requirement(dep)
		childIDs[i] = child
		byReq[nodeKey(dep.Requirement)] = child
		style := ""
		if !dep.Requirement.Owned() {
			style = " [style=dashed, label=\"awaits\"]"
		}
		g.lines = append(g.lines, fmt.Sprintf("%s -> %s%s;", id, child, style))
	}
	for i, dep := range deps {
		for _, a := range dep.Requirement.After() {
			if to, ok := byReq[nodeKey(a)]; ok {
				g.lines = append(g.lines, fmt.Sprintf("%s -> %s [style=dotted, label=\"after\"];", childIDs[i], to))
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
		id, dotLabel(dep.Requirement.Name(), "not built")))
	return id
}

// nodeKey is a map key identifying the requirement v: v itself when its
// type is comparable (requirements are pointers in practice); a value of
// another type gets a key of its own, so it is drawn once per mention.
func nodeKey(v any) any {
	if v != nil && reflect.TypeOf(v).Comparable() {
		return v
	}
	return new(int)
}

// inspect reads what Graph draws of s: a service core.Validate rejects (a
// type embedding a nil *core.Base, a zero core.Base), or one whose methods
// panic, is an error, not a crash.
func inspect(s core.Service) (name string, st core.State, deps []core.Dependency, statuses []core.Status, err error) {
	if err := core.Validate(s); err != nil {
		return "", 0, nil, nil, err
	}
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("panicked: %v", v)
		}
	}()
	name, st = s.Name(), s.State()
	if d, ok := s.(dependent); ok {
		deps = d.Dependencies()
	}
	if ss, ok := s.(statuser); ok {
		statuses = ss.Statuses()
	}
	return name, st, deps, statuses, nil
}

// dotLabel returns the lines as one DOT label, quoted: Graphviz shows each
// as written, one per line. In a quoted DOT string only \" is an escape;
// in a label Graphviz then reads \\ as a backslash, \n, \l and \r as line
// breaks and \N, \G and the like as names, and it decodes character
// entities such as &amp; and &#9;. So '"' and '\\' get a backslash, '&'
// becomes &amp; (a name "&amp;" shows as typed), a newline becomes \n, and
// any other character that is not graphic (a tab, a control character)
// becomes a numeric entity: Go's quoting (\t) would show as "t". Invalid
// UTF-8 is written as U+FFFD, one per bad byte, so the file stays UTF-8.
func dotLabel(lines ...string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i, line := range lines {
		if i > 0 {
			b.WriteString(`\n`)
		}
		for _, r := range line {
			switch {
			case r == '"':
				b.WriteString(`\"`)
			case r == '\\':
				b.WriteString(`\\`)
			case r == '&':
				b.WriteString("&amp;")
			case r == '\n':
				b.WriteString(`\n`)
			case r != ' ' && !unicode.IsGraphic(r):
				fmt.Fprintf(&b, "&#%d;", r)
			default:
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}
