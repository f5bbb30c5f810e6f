package deps_test

import (
	"context"
	"strings"
	"testing"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/deps"
	"github.com/coreservice/coreservice/internal/coretest"
)

func TestGraph(t *testing.T) {
	rec := &coretest.Recorder{}
	db := coretest.Node("db", rec)
	auth := coretest.Node("auth", rec)
	rdb := deps.Requires(db)
	cache := deps.Lazy(func(context.Context) (*core.Base, error) { return coretest.Node("cache", rec), nil },
		deps.Name("cache"), deps.After(rdb))
	api := coretest.Node("api", rec, rdb, cache, deps.Await(auth))
	worker := coretest.Node("worker", rec, deps.Requires(db))

	before := `digraph coreservice {
	rankdir=LR;
	node [shape=box, style=filled, fontname="Helvetica"];
	n1 [label="api\nnew", fillcolor=white];
	n2 [label="db\nnew", fillcolor=white];
	n1 -> n2;
	n3 [label="cache\nnot built", style=dashed, fillcolor=white];
	n1 -> n3;
	n4 [label="auth\nnew", fillcolor=white];
	n1 -> n4 [style=dashed, label="awaits"];
	n3 -> n2 [style=dotted, label="after"];
	n5 [label="worker\nnew", fillcolor=white];
	n5 -> n2;
}
`
	if got := deps.Graph(api, worker); got != before {
		t.Fatalf("graph before start:\n got:\n%s\nwant:\n%s", got, before)
	}

	coretest.MustStart(t, auth)
	coretest.MustStart(t, api)
	after := `digraph coreservice {
	rankdir=LR;
	node [shape=box, style=filled, fontname="Helvetica"];
	n1 [label="api\nrunning", fillcolor=palegreen];
	n2 [label="db\nrunning", fillcolor=palegreen];
	n1 -> n2;
	n3 [label="cache\nrunning", fillcolor=palegreen];
	n1 -> n3;
	n4 [label="auth\nrunning", fillcolor=palegreen];
	n1 -> n4 [style=dashed, label="awaits"];
	n3 -> n2 [style=dotted, label="after"];
	n5 [label="worker\nnew", fillcolor=white];
	n5 -> n2;
}
`
	if got := deps.Graph(api, worker); got != after {
		t.Fatalf("graph while running:\n got:\n%s\nwant:\n%s", got, after)
	}
	coretest.MustStop(t, api)
	coretest.MustStop(t, auth)
	if got := deps.Graph(api); !strings.Contains(got, `n1 [label="api\nterminated", fillcolor=lightgrey];`) ||
		!strings.Contains(got, `[label="db\nterminated", fillcolor=lightgrey]`) {
		t.Fatalf("graph after stop: got\n%s\nwant api and db terminated", got)
	}
}

func TestGraphOfForeignService(t *testing.T) {
	// A core.Service that is not a *core.Base is drawn without requirements.
	var s core.Service = foreign{}
	want := "digraph coreservice {\n\trankdir=LR;\n\tnode [shape=box, style=filled, fontname=\"Helvetica\"];\n" +
		"\tn1 [label=\"ext\\nrunning\", fillcolor=palegreen];\n}\n"
	if got := deps.Graph(s, nil); got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
}

type foreign struct{}

func (foreign) Name() string                      { return "ext" }
func (foreign) Start(context.Context) error       { return nil }
func (foreign) Stop(context.Context) error        { return nil }
func (foreign) Healthcheck(context.Context) error { return nil }
func (foreign) State() core.State                 { return core.StateRunning }
func (foreign) Done() <-chan struct{}             { return nil }
func (foreign) Err() error                        { return nil }

func TestGraphLabelsUseDOTEscaping(t *testing.T) {
	// Graphviz reads \" and \\ in a quoted label, \n as a line break, and
	// decodes character entities: a name is shown as written only when
	// '&' is &amp; and a control character is an entity (Go's \t would
	// show as "t").
	rec := &coretest.Recorder{}
	s := named{coretest.Node("x", rec), "a\tb&amp;\"c\\d\x01"}
	want := `n1 [label="a&#9;b&amp;amp;\"c\\d&#1;\nnew", fillcolor=white];`
	if got := deps.Graph(s); !strings.Contains(got, "\t"+want+"\n") {
		t.Fatalf("got:\n%s\nwant the line %s", got, want)
	}
}

func TestGraphDrawsServiceSharedUnderTwoTypesOnce(t *testing.T) {
	rec := &coretest.Recorder{}
	store := newStore("store", rec)
	a := coretest.Node("a", rec, deps.Requires(store))      // as *Store
	b := coretest.Node("b", rec, deps.Requires(store.Base)) // as *core.Base
	got := deps.Graph(a, b, store)
	if n := strings.Count(got, `[label="store\n`); n != 1 {
		t.Fatalf("got %d nodes for store, want 1:\n%s", n, got)
	}
	if !strings.Contains(got, "n1 -> n2;") || !strings.Contains(got, "n3 -> n2;") {
		t.Fatalf("got:\n%s\nwant a -> store and b -> store to one node", got)
	}
}

func TestGraphDrawsServiceWithoutBase(t *testing.T) {
	got := deps.Graph(&Store{}, named{}) // a nil *core.Base: core.Validate rejects them
	if strings.Count(got, "build services with core.NewService") != 2 {
		t.Fatalf("got:\n%s\nwant two nodes saying to build the services with core.NewService", got)
	}
}

// Graph and Dependencies while the tree starts and stops (-race).
func TestGraphDuringStart(t *testing.T) {
	rec := &coretest.Recorder{}
	db := newStore("db", rec)
	rdb := deps.Requires(db)
	p := coretest.Node("p", rec, rdb, deps.Lazy(func(context.Context) (*core.Base, error) { return coretest.Node("cache", rec), nil }, deps.After(rdb)))
	stop := coretest.Repeat(func() { _ = deps.Graph(p) })
	coretest.MustStart(t, p)
	if g := deps.Graph(p); !strings.Contains(g, "cache") || strings.Contains(g, "not built") {
		t.Errorf("graph after start:\n%s", g)
	}
	coretest.MustStop(t, p)
	stop()
}

// An After edge starts at the node of the requirement that has it, also
// when that requirement's type is not comparable (it cannot be a map key),
// as a core.Requirement written outside package deps may be.
func TestGraphDrawsAfterEdgeOfUncomparableRequirement(t *testing.T) {
	rec := &coretest.Recorder{}
	x, y := coretest.Node("x", rec), coretest.Node("y", rec)
	rx := &valueRequirement{svc: x}                               // a pointer: comparable
	ry := valueRequirement{svc: y, after: []core.Requirement{rx}} // holds a slice: not comparable
	p := coretest.Node("p", rec, requirements{rx, ry})
	want := "\tn1 -> n2;\n\tn3 [label=\"y\\nnew\", fillcolor=white];\n\tn1 -> n3;\n" +
		"\tn3 -> n2 [style=dotted, label=\"after\"];\n}\n"
	if got := deps.Graph(p); !strings.HasSuffix(got, want) {
		t.Fatalf("got:\n%s\nwant it to end with:\n%s", got, want)
	}
}

// valueRequirement is a static core.Requirement on svc, of a type that is
// not comparable.
type valueRequirement struct {
	svc   core.Service
	after []core.Requirement
}

func (r valueRequirement) Name() string                                  { return r.svc.Name() }
func (r valueRequirement) Resolve(context.Context) (core.Service, error) { return r.svc, nil }
func (r valueRequirement) Owned() bool                                   { return true }
func (r valueRequirement) After() []core.Requirement                     { return r.after }
func (r valueRequirement) Known() core.Service                           { return r.svc }

// requirements is an option registering core.Requirements, as a package
// outside this module would.
type requirements []core.Requirement

func (rs requirements) ApplyTo(c *core.Config) {
	for _, r := range rs {
		c.AddRequirement(r)
	}
}

func TestGraphShowsStatusesUnderTheState(t *testing.T) {
	u := coretest.NewHostUnit("supervisor")
	db := core.NewService(core.Name("db"), core.Logger(coretest.Quiet()), u)
	api := core.NewService(core.Name("api"), core.Logger(coretest.Quiet()), deps.Requires(db))
	coretest.MustStart(t, api)
	defer coretest.MustStop(t, api)
	u.Host().SetStatus("supervisor", "restarting (attempt 2, next in 1.5s)", false)
	want := `n2 [label="db\nrunning\nsupervisor: restarting (attempt 2, next in 1.5s)", fillcolor=palegreen];`
	if got := deps.Graph(api); !strings.Contains(got, want) {
		t.Fatalf("graph:\n%s\nwant a line %s", got, want)
	}
}
