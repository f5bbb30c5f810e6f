package health

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/samber/lo"

	"github.com/coreservice/coreservice/core"
)

// Handler returns an http.Handler serving the liveness and readiness
// probes of svcs, their requirements and their checks, following the
// conventions of the Kubernetes API server's /livez and /readyz (see the
// package documentation for the paths, parameters and output).
//
// The handler only reports: it never runs a check. It reads the results
// the services recorded (at start, on monitor ticks and in Healthcheck
// calls) and the services' states, so probes can be as frequent as they
// like without loading what the checks test. It is safe for concurrent use
// and may serve before, while and after the services run.
//
// It serves the paths /livez and /readyz and the paths below them, so
// mount it at the root of a mux (mux.Handle("/", h), or "/livez" and
// "/readyz" and the same with a trailing slash), or under a prefix with
// http.StripPrefix. It answers GET and HEAD, and 405 to other methods.
//
// Bad input is never a panic: if a service is nil, is not built with
// core.NewService (a type embedding a nil *core.Base, or a zero
// core.Base), has a name that is not a valid path segment (empty, with a
// '/' or a control character), or two services have the same name, every
// request gets 500 Internal Server Error with a message saying so, and so
// every probe fails visibly. So does a request that finds a service whose
// methods panic, such as a requirement of that kind.
func Handler(svcs ...core.Service) http.Handler {
	if err := checkServices("health.Handler", svcs); err != nil {
		return brokenHandler(err.Error())
	}
	return &handler{svcs: slices.Clone(svcs)}
}

// brokenHandler answers every request with its message and status 500.
type brokenHandler string

func (h brokenHandler) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	http.Error(w, string(h), http.StatusInternalServerError)
}

type handler struct {
	svcs []core.Service
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "405 method not allowed", http.StatusMethodNotAllowed)
		return
	}
	segs, ok := splitPath(r.URL.EscapedPath())
	if !ok || (segs[0] != string(livez) && segs[0] != string(readyz)) {
		h.notFound(w, r)
		return
	}
	p := probe(segs[0])
	targets, err := safeEvaluate(p, h.svcs)
	if err != nil {
		brokenHandler("health.Handler: "+err.Error()).ServeHTTP(w, r)
		return
	}
	prefix, single := "", false
	if len(segs) > 1 {
		n := find(targets, segs[1:])
		if n == nil {
			h.notFound(w, r)
			return
		}
		if n.kind == kindCheck {
			single = true
			n = n.alone()
		}
		targets = []*node{n}
		prefix = strings.Join(segs[1:len(segs)-1], "/")
	}

	query := r.URL.Query()
	lines, unmatched := list(prefix, targets, query["exclude"])
	res := response{probe: p, lines: lines, unmatched: unmatched, reasons: single,
		verbose: query.Has("verbose")}

	hdr := w.Header()
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("Vary", "Accept")
	hdr.Set("X-Content-Type-Options", "nosniff")
	status := http.StatusOK
	if !res.passed() {
		status = http.StatusServiceUnavailable
	}
	if wantsJSON(r) {
		hdr.Set("Content-Type", "application/json")
		w.WriteHeader(status)
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false) // errors read "a > b", not "a \u003e b"
		_ = enc.Encode(res.report())
		return
	}
	hdr.Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(res.text()))
}

// list lists the nodes and their descendants, leaving out the parts named
// in exclude, and returns the excluded names that matched no part, each
// once. It takes time linear in the number of nodes and names.
func list(prefix string, nodes []*node, exclude []string) (lines []line, unmatched []string) {
	excluded := lo.Keyify(exclude)
	used := make(map[string]bool, len(exclude))
	for _, n := range nodes {
		lines = flatten(prefix, n, excluded, used, lines)
	}
	for _, name := range exclude {
		if !used[name] {
			used[name] = true // listed once, in the order given
			unmatched = append(unmatched, name)
		}
	}
	return lines, unmatched
}

// splitPath splits an escaped URL path into its unescaped segments,
// ignoring one trailing slash. It reports false for an empty path or
// segment, or a bad escape.
func splitPath(escaped string) ([]string, bool) {
	escaped = strings.TrimSuffix(strings.TrimPrefix(escaped, "/"), "/")
	if escaped == "" {
		return nil, false
	}
	segs := strings.Split(escaped, "/")
	for i, s := range segs {
		u, err := url.PathUnescape(s)
		if err != nil || u == "" {
			return nil, false
		}
		segs[i] = u
	}
	return segs, true
}

// wantsJSON reports whether the request's Accept header lists
// application/json (with a non-zero quality, if it gives one).
func wantsJSON(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept") {
		for part := range strings.SplitSeq(v, ",") {
			mt, params, err := mime.ParseMediaType(part)
			if err != nil || mt != "application/json" {
				continue
			}
			if q, ok := params["q"]; ok {
				if f, err := strconv.ParseFloat(q, 64); err != nil || f == 0 {
					continue
				}
			}
			return true
		}
	}
	return false
}

// notFound answers 404 with every path the handler knows.
func (h *handler) notFound(w http.ResponseWriter, r *http.Request) {
	var b strings.Builder
	fmt.Fprintf(&b, "404 page not found: %s\nknown paths:\n", r.URL.EscapedPath())
	for _, p := range []probe{livez, readyz} {
		nodes, err := safeEvaluate(p, h.svcs)
		if err != nil {
			brokenHandler("health.Handler: "+err.Error()).ServeHTTP(w, r)
			return
		}
		known := paths("/"+string(p), nodes, []string{"/" + string(p)})
		for _, k := range known {
			b.WriteString("  " + k + "\n")
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusNotFound)
	_, _ = w.Write([]byte(b.String()))
}

// response is the answer to one probe request, before it is written.
type response struct {
	probe     probe
	lines     []line
	unmatched []string // excluded names that matched nothing
	reasons   bool     // show why parts fail (a single check was asked for)
	verbose   bool
}

func (r response) passed() bool {
	return lo.EveryBy(r.lines, func(l line) bool { return l.n.err == nil })
}

// text is the text/plain body: "ok", or the Kubernetes-style listing.
func (r response) text() string {
	passed := r.passed()
	if passed && !r.verbose {
		return "ok"
	}
	var b strings.Builder
	for _, l := range r.lines {
		switch {
		case l.n.err == nil && l.n.text != "":
			fmt.Fprintf(&b, "[+]%s ok: %s\n", l.name, oneLine(l.n.text))
		case l.n.err == nil:
			fmt.Fprintf(&b, "[+]%s ok\n", l.name)
		case r.reasons:
			fmt.Fprintf(&b, "[-]%s failed: %s\n", l.name, oneLine(l.n.err.Error()))
		case l.n.status != "":
			fmt.Fprintf(&b, "[-]%s failed: %s\n", l.name, oneLine(l.n.status))
		default:
			fmt.Fprintf(&b, "[-]%s failed: reason withheld\n", l.name)
		}
	}
	if len(r.unmatched) > 0 {
		b.WriteString("warn: some health checks cannot be excluded: no matches for " + quoteAll(r.unmatched) + "\n")
	}
	if passed {
		fmt.Fprintf(&b, "%s check passed\n", r.probe)
	} else {
		fmt.Fprintf(&b, "%s check failed\n", r.probe)
	}
	return b.String()
}

// report is the JSON body. Its schema is documented in doc.go: keep them
// in step.
type report struct {
	Probe    string   `json:"probe"`
	Status   string   `json:"status"`
	Checks   []entry  `json:"checks"`
	Warnings []string `json:"warnings,omitempty"`
}

type entry struct {
	Name     string `json:"name"`
	Kind     string `json:"kind"`
	Status   string `json:"status"`
	Failures int    `json:"failures,omitempty"`
	Text     string `json:"text,omitempty"`
	Error    string `json:"error,omitempty"`
}

func (r response) report() report {
	rep := report{Probe: string(r.probe), Status: "ok",
		Checks: lo.Map(r.lines, func(l line, _ int) entry { return r.entryOf(l) })}
	if !r.passed() {
		rep.Status = "failed"
	}
	if len(r.unmatched) > 0 {
		rep.Warnings = append(rep.Warnings, "some health checks cannot be excluded: no matches for "+quoteAll(r.unmatched))
	}
	return rep
}

// entryOf is l in the JSON body.
func (r response) entryOf(l line) entry {
	e := entry{Name: l.name, Kind: l.n.kind, Status: "ok", Failures: l.n.failures, Text: l.n.text}

	if l.n.err != nil {
		e.Status = "failed"
		if r.reasons {
			e.Error = l.n.err.Error()
		}
	}
	return e
}

func quoteAll(names []string) string {
	return strings.Join(lo.Map(names, func(n string, _ int) string { return strconv.Quote(n) }), ", ")
}

// oneLine keeps a multi-line error (errors.Join) on one output line.
func oneLine(s string) string { return strings.ReplaceAll(s, "\n", "; ") }
