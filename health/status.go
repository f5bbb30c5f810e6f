package health

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"slices"
	"time"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/internal/identity"
	"github.com/coreservice/coreservice/internal/values"
)

// StalePeriods is how long, in monitor periods, a check's latest result
// counts for readiness. A monitor period is the service's MonitorInterval
// plus the timeouts of all its checks: the longest the monitor can take to
// run a check again. With core's default interval of 100 ms and two checks
// with the default timeout of 50 ms, a period is 200 ms and a result older
// than 600 ms is stale: the monitor has stopped running the check, and the
// check is not ready. A result is never stale before MinStale.
const StalePeriods = 3

// MinStale is the least age at which a check's latest result is stale,
// whatever the monitor period: with a MonitorInterval below a millisecond,
// StalePeriods periods are shorter than the latency of timers and of the
// scheduler on a loaded machine (tens of milliseconds under load or GC;
// Windows timers tick every 15.6 ms), and a check the monitor runs on
// time would look stale in many Ready calls. A monitor that has really
// stopped is still seen within MinStale.
const MinStale = 100 * time.Millisecond

// probe is one of the two probes, named as its path.
type probe string

const (
	livez  probe = "livez"
	readyz probe = "readyz"
)

// Kinds of node, as in the JSON output.
const (
	kindService = "service"
	kindCheck   = "check"
	kindStatus  = "status"
)

// node is one part of a probe: a service, a requirement (a service under
// its parent) or a check, with its verdict.
type node struct {
	name string // its path segment: the service, requirement or check name
	kind string // kindService or kindCheck
	err  error  // why it fails the probe; nil when it passes
	// status is the reason a failing line gives even when reasons are
	// withheld, since it is no secret: the state of a service that fails
	// only by being in it, such as "not started" or "terminated".
	status   string
	text     string // for a status: its text, shown also when it passes
	failures int    // for a check: failed runs in a row
	kids     []*node

	state core.State // for a service: its state
	owner *node      // for a check: the service it belongs to
	check *check     // for a check: the check itself
}

// checker and dependent are what the probes use of a service, when it has
// them: *core.Base and the types embedding it do.
type (
	checker interface {
		Checks() []core.Check
		MonitorInterval() time.Duration
	}
	dependent interface {
		Dependencies() []core.Dependency
	}
	gracer interface {
		InStartupGrace(check string) bool
	}
	statuser interface {
		Statuses() []core.Status
	}
)

// evaluate judges svcs and, recursively, their requirements (and for
// readyz their checks) as of now.
func evaluate(p probe, svcs []core.Service) []*node {
	now := time.Now()
	nodes := make([]*node, len(svcs))
	for i, s := range svcs {
		nodes[i] = serviceNode(p, s.Name(), s, nil, now)
	}
	return nodes
}

// serviceNode judges svc, known to its parent as name; path is the chain of
// services above it.
func serviceNode(p probe, name string, svc core.Service, path []core.Service, now time.Time) *node {
	st := svc.State()
	n := &node{name: name, kind: kindService, state: st}
	switch {
	case p == livez && st == core.StateFailed:
		n.err = errors.New("service failed")
		if err := svc.Err(); err != nil {
			n.err = fmt.Errorf("service failed: %w", err)
		}
	case p == readyz && st != core.StateRunning:
		n.err = fmt.Errorf("service is %s", stateText(st))
		if st != core.StateFailed {
			n.status = stateText(st)
		}
	}
	if cs, ok := svc.(checker); ok && p == readyz {
		checks := cs.Checks()
		interval := cs.MonitorInterval()
		period := interval
		for _, c := range checks {
			period = addSat(period, c.Timeout(interval))
		}
		stale := time.Duration(math.MaxInt64)
		if period < stale/StalePeriods {
			stale = max(StalePeriods*period, MinStale)
		}
		for _, c := range checks {
			if hc, ok := c.(*check); ok {
				kid := hc.node(now, stale, n)
				if g, ok := svc.(gracer); ok && kid.err != nil && hc.cfg.grace > 0 && g.InStartupGrace(hc.name) {
					kid.err = fmt.Errorf("in startup grace: %w", kid.err)
				}
				n.kids = append(n.kids, kid)
			}
		}
	}
	if ss, ok := svc.(statuser); ok && p == readyz {
		for _, st := range ss.Statuses() {
			kid := &node{name: st.Name, kind: kindStatus, text: st.Text, owner: n}
			if !st.Ready {
				kid.err, kid.status = errors.New(st.Text), st.Text
			}
			n.kids = append(n.kids, kid)
		}
	}
	d, ok := svc.(dependent)
	if !ok {
		return n
	}
	for _, above := range path {
		if identity.Of(above) == identity.Of(svc) { // one service, whatever its type
			return n // a cycle: core fails such a start; don't loop
		}
	}
	path = append(slices.Clip(path), svc)
	for _, dep := range d.Dependencies() {
		n.kids = append(n.kids, requirementNode(p, dep, path, now))
	}
	return n
}

// requirementNode judges the service behind dep, or a placeholder if it is
// not known yet (a lazy requirement before its parent's start built it).
func requirementNode(p probe, dep core.Dependency, path []core.Service, now time.Time) *node {
	name := dep.Requirement.Name()
	svc := dep.Service
	if values.IsNil(svc) {
		if sr, ok := dep.Requirement.(core.StaticRequirement); ok {
			svc = sr.Known()
		}
	}
	if values.IsNil(svc) {
		n := &node{name: name, kind: kindService}
		if p == readyz {
			n.err = errors.New("service not built yet")
		}
		return n
	}
	return serviceNode(p, name, svc, path, now)
}

// node judges the check's latest result as of now: it must exist, have
// passed, and be at most stale old. A check that has never run, or whose
// result is stale, because its service (owner) is not Running says so:
// "service db is terminated", "service worker is not started", not
// "stale: ..." or "never run", which would blame the check.
func (c *check) node(now time.Time, stale time.Duration, owner *node) *node {
	r := c.lastResult()
	n := &node{name: c.name, kind: kindCheck, err: r.err, failures: r.failures, check: c, owner: owner}
	notRunning := owner.state != core.StateRunning
	switch age := now.Sub(r.at); {
	case (r.at.IsZero() || (r.err == nil && age > stale)) && notRunning:
		n.err = fmt.Errorf("service %s is %s", owner.name, stateText(owner.state))
	case r.at.IsZero():
		n.err = errors.New("never run")
	case r.err == nil && age > stale:
		n.err = fmt.Errorf("stale: last run %v ago, more than %v", age.Round(time.Millisecond), stale)
	}
	return n
}

// stateText is st as the probes say it: "not started" for StateNew, else
// its name ("terminated").
func stateText(st core.State) string {
	if st == core.StateNew {
		return "not started"
	}
	return st.String()
}

// alone is the check node n judged on its own, as a path naming one check
// asks: a check that passes fails, too, when its service is not Running,
// since a passing result of a stopped service does not make it ready. (In
// a listing the service's own line says so.) A failing check keeps its
// own reason.
func (n *node) alone() *node {
	o := n.owner
	if o == nil || o.state == core.StateRunning || n.err != nil {
		return n
	}
	c := *n
	c.err = fmt.Errorf("service %s is %s", o.name, stateText(o.state))
	return &c
}

// find returns the node at path under nodes, or nil. At each level the
// first node with the segment's name wins.
func find(nodes []*node, path []string) *node {
	for _, n := range nodes {
		if n.name != path[0] {
			continue
		}
		if len(path) == 1 {
			return n
		}
		return find(n.kids, path[1:])
	}
	return nil
}

// line is one node in a flat listing: its full name, the path of segments
// from the probe's root joined by "/", such as "api/db/ping".
type line struct {
	name string
	n    *node
}

// flatten lists n and its descendants depth first, skipping the excluded
// names (and everything under them) and marking the names it met in used.
func flatten(prefix string, n *node, exclude map[string]struct{}, used map[string]bool, out []line) []line {
	name := n.name
	if prefix != "" {
		name = prefix + "/" + n.name
	}
	if _, ok := exclude[name]; ok {
		used[name] = true
		return out
	}
	out = append(out, line{name: name, n: n})
	for _, k := range n.kids {
		out = flatten(name, k, exclude, used, out)
	}
	return out
}

// paths returns the URL path of every node under nodes, depth first,
// each segment escaped.
func paths(prefix string, nodes []*node, out []string) []string {
	for _, n := range nodes {
		p := prefix + "/" + url.PathEscape(n.name)
		out = append(out, p)
		out = paths(p, n.kids, out)
	}
	return out
}

// addSat adds two non-negative durations, saturating at the largest one
// instead of wrapping: a Timeout of math.MaxInt64 means "never stale".
func addSat(a, b time.Duration) time.Duration {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}
