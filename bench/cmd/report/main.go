// Command report summarises the output of the benchmarks of package bench
// (go test -bench, any -count) with golang.org/x/perf/benchfmt and writes
// RESULTS.md and the charts: medians per benchmark, ratios to the bare
// baseline and to each peer, the machine and the versions.
//
//	report -in results.txt -meta meta.txt -out DIR   # writes DIR/RESULTS.md, DIR/charts/*.{svg,png}
//	report -in results.txt -check                    # checks every scenario ran, prints the tables
//
// meta.txt holds "key: value" lines written by bench/run (date, Go and peer
// versions, load averages, durations); they are printed as given.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/perf/benchfmt"
)

func main() {
	in := flag.String("in", "", "benchmark output to summarise (required)")
	meta := flag.String("meta", "", "file of \"key: value\" lines about the run")
	out := flag.String("out", "", "directory to write RESULTS.md and charts/ into")
	check := flag.Bool("check", false, "only check that every scenario ran and print the tables")
	flag.Parse()
	if *in == "" || (*out == "") == !*check {
		fmt.Fprintln(os.Stderr, "usage: report -in FILE (-out DIR [-meta FILE] | -check)")
		os.Exit(2)
	}
	if err := run(*in, *meta, *out, *check); err != nil {
		log.Fatalf("report: %v", err)
	}
}

func run(in, metaFile, out string, check bool) error {
	f, err := os.Open(in)
	if err != nil {
		return err
	}
	defer f.Close()
	set, err := read(f, in)
	if err != nil {
		return err
	}
	if err := set.complete(); err != nil {
		return err
	}
	var meta []string
	if metaFile != "" {
		b, err := os.ReadFile(metaFile)
		if err != nil {
			return err
		}
		meta = strings.Split(strings.TrimSpace(string(b)), "\n")
	}
	var doc bytes.Buffer
	writeTables(&doc, set)
	if check {
		_, err := os.Stdout.Write(doc.Bytes())
		return err
	}
	charts, err := writeCharts(set, filepath.Join(out, "charts"))
	if err != nil {
		return err
	}
	own, err := os.ReadFile(filepath.Join(out, "package-benchmarks.md"))
	if err != nil {
		return err
	}
	var res bytes.Buffer
	writeHeader(&res, set, meta, charts)
	res.Write(doc.Bytes())
	res.WriteString("\n")
	res.Write(own)
	return os.WriteFile(filepath.Join(out, "RESULTS.md"), res.Bytes(), 0o644)
}

// key identifies one benchmark: its base name and its configuration.
type key struct {
	base string
	cfg  string // "k=v/k=v" in the order of the name
}

// Set is the parsed results: every value of every unit of every benchmark.
type Set struct {
	vals  map[key]map[string][]float64
	runs  map[key]int
	procs string
	cpu   string
}

func read(r io.Reader, name string) (*Set, error) {
	s := &Set{vals: map[key]map[string][]float64{}, runs: map[key]int{}}
	br := benchfmt.NewReader(r, name)
	for br.Scan() {
		switch rec := br.Result().(type) {
		case *benchfmt.SyntaxError:
			return nil, rec
		case *benchfmt.Result:
			base, parts := rec.Name.Parts()
			var cfg []string
			for _, p := range parts {
				if p[0] == '-' {
					s.procs = string(p[1:])
					continue
				}
				cfg = append(cfg, string(p[1:]))
			}
			k := key{base: string(base), cfg: strings.Join(cfg, "/")}
			if s.vals[k] == nil {
				s.vals[k] = map[string][]float64{}
			}
			s.runs[k]++
			for _, v := range rec.Values {
				// benchfmt tidies ns/x into sec/x: keep the units as written.
				unit, val := v.Unit, v.Value
				if v.OrigUnit != "" {
					unit, val = v.OrigUnit, v.OrigValue
				}
				s.vals[k][unit] = append(s.vals[k][unit], val)
			}
			if c := rec.GetConfig("cpu"); c != "" {
				s.cpu = c
			}
		}
	}
	return s, br.Err()
}

// median returns the median of the benchmark's values of unit.
func (s *Set) median(base, unit string, cfg ...string) (float64, bool) {
	vs := s.vals[key{base, strings.Join(cfg, "/")}][unit]
	if len(vs) == 0 {
		return 0, false
	}
	c := append([]float64(nil), vs...)
	sort.Float64s(c)
	if len(c)%2 == 1 {
		return c[len(c)/2], true
	}
	return (c[len(c)/2-1] + c[len(c)/2]) / 2, true
}

// failures returns how many runs of a benchmark reported failed/op = 1, and
// how many runs it had.
func (s *Set) failures(base string, cfg ...string) (failed, runs int) {
	k := key{base, strings.Join(cfg, "/")}
	for _, v := range s.vals[k]["failed/op"] {
		if v > 0 {
			failed++
		}
	}
	return failed, s.runs[k]
}

// withFailures appends to a cell how many runs failed, if any did.
func (s *Set) withFailures(cell, base string, cfg ...string) string {
	f, runs := s.failures(base, cfg...)
	if f == 0 {
		return cell
	}
	note := fmt.Sprintf("**failed in %d of %d runs**", f, runs)
	if cell == "–" {
		return note
	}
	return cell + " (" + note + ")"
}

// sizes returns the values of cfgKey (numbers) in benchmarks of base whose
// configuration has the given prefix, sorted.
func (s *Set) sizes(base, prefix, cfgKey string) []int {
	seen := map[int]bool{}
	for k := range s.vals {
		if k.base != base || !strings.HasPrefix(k.cfg, prefix) {
			continue
		}
		for _, part := range strings.Split(k.cfg, "/") {
			if v, ok := strings.CutPrefix(part, cfgKey+"="); ok {
				if n, err := strconv.Atoi(v); err == nil {
					seen[n] = true
				}
			}
		}
	}
	var out []int
	for n := range seen {
		out = append(out, n)
	}
	sort.Ints(out)
	return out
}

// impls are the implementations, the baseline first and ours last; display
// names where a benchmark name cannot hold the real one.
var impls = []string{"bare", "errgroup", "oklog-run", "suture", "fx", "coreservice"}

// checkedImpls are those of the scenarios with checks: coreservice with a
// check Timeout of 1 s as well.
var checkedImpls = append(append([]string(nil), impls...), "coreservice-check1s")

var display = map[string]string{"oklog-run": "oklog/run", "coreservice-check1s": "coreservice, check Timeout 1 s"}

func show(impl string) string {
	if d, ok := display[impl]; ok {
		return d
	}
	return impl
}

// complete checks that every scenario has results for every implementation.
func (s *Set) complete() error {
	var missing []string
	need := func(base, unit string, cfg ...string) {
		if _, ok := s.median(base, unit, cfg...); !ok {
			missing = append(missing, base+"/"+strings.Join(cfg, "/")+" "+unit)
		}
	}
	for _, impl := range impls {
		for _, shape := range []string{"flat", "tree"} {
			ns := s.sizes("Lifecycle", "shape="+shape+"/impl="+impl+"/", "n")
			if len(ns) == 0 {
				missing = append(missing, "Lifecycle/shape="+shape+"/impl="+impl)
			}
		}
		for _, kind := range []string{"trivial", "full"} {
			if len(s.sizes("Resident", "kind="+kind+"/impl="+impl+"/", "n")) == 0 {
				missing = append(missing, "Resident/kind="+kind+"/impl="+impl)
			}
		}
		need("StopSleeper", "ns/op", "impl="+impl)
		if len(s.sizes("StopMany", "impl="+impl+"/", "n")) == 0 {
			missing = append(missing, "StopMany/impl="+impl)
		}
		if len(s.sizes("Propagation", "impl="+impl+"/", "depth")) == 0 {
			missing = append(missing, "Propagation/impl="+impl)
		}
		for _, kind := range []string{"idle", "check"} {
			if len(s.sizes("MonitorCPU", "kind="+kind+"/impl="+impl+"/", "n")) == 0 {
				missing = append(missing, "MonitorCPU/kind="+kind+"/impl="+impl)
			}
		}
		if len(s.sizes("Shared", "impl="+impl+"/", "parents")) == 0 {
			missing = append(missing, "Shared/impl="+impl)
		}
	}
	for _, v := range loopVariants {
		need("Loop", "ns/run", "impl="+v)
	}
	for _, v := range restartVariants {
		need("Restart", "ns/op", "impl="+v)
	}
	for _, v := range restartLoopVariants {
		need("RestartLoop", "restarts-600s", "impl="+v[0], "policy="+v[1])
	}
	if len(missing) > 0 {
		return errors.New("no results for: " + strings.Join(missing, ", "))
	}
	return nil
}

var loopVariants = []string{"bare", "coreservice", "coreservice-noop", "coreservice-sdk", "suture"}

var loopLabels = map[string]string{
	"bare":             "bare `for` loop",
	"coreservice":      "coreservice task, telemetry off (OpenTelemetry globals, no SDK)",
	"coreservice-noop": "coreservice task, no-op providers given",
	"coreservice-sdk":  "coreservice task, SDK sampling every span (batcher, exporter drops)",
	"suture":           "suture restart loop (Serve returns at once)",
}

// restartVariants are the implementations of BenchmarkRestart.
var restartVariants = []string{"bare", "suture", "coreservice"}

var restartLabels = map[string]string{
	"bare":        "bare goroutine calling the body in a loop",
	"suture":      "suture, FailureThreshold +Inf (never backs off)",
	"coreservice": "coreservice, deps.Supervise with backoff.ZeroBackOff",
}

// restartLoopVariants are the implementation and policy of each row of the
// crash loop (TestRestartLoopUnderDefaultPolicies), and its label.
var restartLoopVariants = [][3]string{
	{"suture", "default", "suture, default Spec (FailureDecay 30 s, FailureThreshold 5, FailureBackoff 15 s, DefaultJitter +0-50 %)"},
	{"coreservice", "exponential", "coreservice, backoff.NewExponentialBackOff() as given (jitter from math/rand: varies between runs)"},
	{"coreservice", "exponential-seeded", "coreservice, the same policy, jitter from a fixed seed (bench.SeededExponential)"},
	{"coreservice", "exponential-nojitter", "coreservice, the same policy, RandomizationFactor 0"},
}

// restartCheckpoints are the columns of the crash loop's table.
var restartCheckpoints = []string{"1s", "10s", "60s", "600s"}

// dur formats nanoseconds.
func dur(ns float64) string {
	switch {
	case ns >= 1e9:
		return fmt.Sprintf("%.2f s", ns/1e9)
	case ns >= 1e6:
		return fmt.Sprintf("%.3g ms", ns/1e6)
	case ns >= 1e3:
		return fmt.Sprintf("%.3g µs", ns/1e3)
	default:
		return fmt.Sprintf("%.3g ns", ns)
	}
}

func bytesf(b float64) string {
	if math.Abs(b) >= 1024 {
		return fmt.Sprintf("%.1f KiB", b/1024)
	}
	return fmt.Sprintf("%.0f B", b)
}

func num(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e6 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}

func ratio(a, b float64) string {
	if b == 0 {
		return "–"
	}
	r := a / b
	if r >= 10 {
		return fmt.Sprintf("×%.0f", r)
	}
	return fmt.Sprintf("×%.2g", r)
}

// table writes a Markdown table.
func table(w io.Writer, head []string, rows [][]string) {
	fmt.Fprintf(w, "| %s |\n|", strings.Join(head, " | "))
	for range head {
		fmt.Fprint(w, "---|")
	}
	fmt.Fprintln(w)
	for _, r := range rows {
		fmt.Fprintf(w, "| %s |\n", strings.Join(r, " | "))
	}
	fmt.Fprintln(w)
}

func or(v float64, ok bool, f func(float64) string) string {
	if !ok {
		return "–"
	}
	return f(v)
}

func peers() []string { return impls[:len(impls)-1] }

// ratioRow is coreservice's value divided by each other implementation's.
func ratioRow(label string, get func(impl string) (float64, bool)) []string {
	row := []string{label}
	ours, ok := get("coreservice")
	for _, impl := range peers() {
		v, ok2 := get(impl)
		if !ok || !ok2 {
			row = append(row, "–")
			continue
		}
		row = append(row, ratio(ours, v))
	}
	return row
}

func ratioHead(first string) []string {
	head := []string{first}
	for _, impl := range peers() {
		head = append(head, "÷ "+show(impl))
	}
	return head
}

func implHead(first string) []string {
	head := []string{first}
	for _, impl := range impls {
		head = append(head, show(impl))
	}
	return head
}

func writeTables(w io.Writer, s *Set) {
	fmt.Fprintln(w, "## (a) Build + start + stop of N trivial services under one root")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Wall time per service of one build, start (until every task has signalled that it runs) and")
	fmt.Fprintln(w, "stop (until every task has returned), `BenchmarkLifecycle`; then allocations per service, and")
	fmt.Fprintln(w, "coreservice's time divided by each other implementation's.")
	fmt.Fprintln(w)
	for _, shape := range []string{"flat", "tree"} {
		ns := s.sizes("Lifecycle", "shape="+shape+"/", "n")
		get := func(impl string, n int, unit string) (float64, bool) {
			return s.median("Lifecycle", unit, "shape="+shape, "impl="+impl, "n="+strconv.Itoa(n))
		}
		what := "flat: every service directly under the root"
		if shape == "tree" {
			what = "tree 10 wide: service i under service (i-1)/10, the root being 0"
		}
		fmt.Fprintf(w, "**%s**, time per service:\n\n", what)
		var rows, allocs, ratios [][]string
		for _, n := range ns {
			row := []string{"n=" + num(float64(n))}
			arow := []string{"n=" + num(float64(n))}
			for _, impl := range impls {
				v, ok := get(impl, n, "ns/service")
				row = append(row, or(v, ok, dur))
				a, ok1 := get(impl, n, "allocs/service")
				b, ok2 := get(impl, n, "B/service")
				if ok1 && ok2 {
					arow = append(arow, fmt.Sprintf("%s, %s", num(a), bytesf(b)))
				} else {
					arow = append(arow, "–")
				}
			}
			rows = append(rows, row)
			allocs = append(allocs, arow)
			ratios = append(ratios, ratioRow("n="+num(float64(n)), func(impl string) (float64, bool) {
				return get(impl, n, "ns/service")
			}))
		}
		table(w, implHead("per service"), rows)
		fmt.Fprintf(w, "Allocations and bytes allocated per service (%s):\n\n", shape)
		table(w, implHead("per service"), allocs)
		fmt.Fprintf(w, "coreservice ÷ each (%s, time per service):\n\n", shape)
		table(w, ratioHead("coreservice"), ratios)
	}

	fmt.Fprintln(w, "## (b) Resident memory per idle service")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Live heap and goroutine stacks (after two GCs) and goroutines, per service, of a flat group of")
	fmt.Fprintln(w, "idle services once every unit has begun, `BenchmarkResident`: a trivial service, and a full one")
	fmt.Fprintln(w, "(a periodic task every 100 ms and a check run every 100 ms by a monitor).")
	fmt.Fprintln(w)
	for _, kind := range []string{"trivial", "full"} {
		var rows [][]string
		list := impls
		if kind == "full" {
			list = checkedImpls
		}
		for _, n := range s.sizes("Resident", "kind="+kind+"/", "n") {
			for _, impl := range list {
				cfg := []string{"kind=" + kind, "impl=" + impl, "n=" + strconv.Itoa(n)}
				get := func(im, unit string) (float64, bool) {
					return s.median("Resident", unit, "kind="+kind, "impl="+im, "n="+strconv.Itoa(n))
				}
				res, ok := get(impl, "resident-B/service")
				heap, okh := get(impl, "heap-B/service")
				stack, oks := get(impl, "stack-B/service")
				gor, okg := get(impl, "goroutines/service")
				bare, okb := get("bare", "resident-B/service")
				r := "–"
				if ok && okb {
					r = ratio(res, bare)
				}
				rows = append(rows, []string{show(impl), num(float64(n)),
					s.withFailures(or(res, ok, bytesf), "Resident", cfg...), or(heap, okh, bytesf), or(stack, oks, bytesf),
					or(gor, okg, func(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }), r})
			}
		}
		fmt.Fprintf(w, "**%s** service:\n\n", kind)
		table(w, []string{"implementation", "n", "resident per service", "heap", "stacks", "goroutines per service", "÷ bare"}, rows)
	}
	fmt.Fprintln(w, "A run that failed (its Start or Stop returned an error: see the log lines of `results.txt`) has no")
	fmt.Fprintln(w, "figures when it failed to start, and is counted in the cell.")
	fmt.Fprintln(w)

	fmt.Fprintln(w, "## (c) Periodic loop: cost per empty run")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "An empty function run back to back, `BenchmarkLoop`; time from the first run to the last.")
	fmt.Fprintln(w)
	{
		var rows [][]string
		bare, okb := s.median("Loop", "ns/run", "impl=bare")
		sut, oks := s.median("Loop", "ns/run", "impl=suture")
		for _, v := range loopVariants {
			x, ok := s.median("Loop", "ns/run", "impl="+v)
			rb, rs := "–", "–"
			if ok && okb {
				rb = ratio(x, bare)
			}
			if ok && oks {
				rs = ratio(x, sut)
			}
			rows = append(rows, []string{loopLabels[v], or(x, ok, dur), rb, rs})
		}
		table(w, []string{"loop", "per run", "÷ bare loop", "÷ suture"}, rows)
	}

	fmt.Fprintln(w, "## (d) Stop latency")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Only Stop is timed (the group is built and started with the timer stopped): one service whose")
	fmt.Fprintln(w, "task sleeps an hour between runs (`BenchmarkStopSleeper`), and n trivial services under one root")
	fmt.Fprintln(w, "(`BenchmarkStopMany`).")
	fmt.Fprintln(w)
	{
		var rows [][]string
		many := 0
		if ns := s.sizes("StopMany", "impl=coreservice/", "n"); len(ns) > 0 {
			many = ns[len(ns)-1]
		}
		sleeper := func(impl string) (float64, bool) { return s.median("StopSleeper", "ns/op", "impl="+impl) }
		stopMany := func(impl string) (float64, bool) {
			return s.median("StopMany", "ns/op", "impl="+impl, "n="+strconv.Itoa(many))
		}
		for _, impl := range impls {
			a, oka := sleeper(impl)
			b, okb := stopMany(impl)
			rows = append(rows, []string{show(impl), or(a, oka, dur), or(b, okb, dur)})
		}
		table(w, []string{"implementation", "stop, worker sleeping an hour", fmt.Sprintf("stop, %s services", num(float64(many)))}, rows)
		fmt.Fprintln(w, "coreservice ÷ each:")
		fmt.Fprintln(w)
		table(w, ratioHead("stop"), [][]string{ratioRow("worker sleeping an hour", sleeper),
			ratioRow(num(float64(many))+" services", stopMany)})
	}

	fmt.Fprintln(w, "## (e) Failure propagation latency")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Time from the bottom service's failure to the top's Done (the top stopped, nothing below it")
	fmt.Fprintln(w, "running), through a chain of dependents, `BenchmarkPropagation`.")
	fmt.Fprintln(w)
	{
		depths := s.sizes("Propagation", "impl=coreservice/", "depth")
		head := []string{"implementation"}
		for _, d := range depths {
			head = append(head, fmt.Sprintf("%d dependents", d))
		}
		var rows, ratios [][]string
		for _, impl := range impls {
			row := []string{show(impl)}
			for _, d := range depths {
				v, ok := s.median("Propagation", "ns/op", "impl="+impl, "depth="+strconv.Itoa(d))
				row = append(row, or(v, ok, dur))
			}
			rows = append(rows, row)
		}
		for _, d := range depths {
			ratios = append(ratios, ratioRow(fmt.Sprintf("%d dependents", d), func(impl string) (float64, bool) {
				return s.median("Propagation", "ns/op", "impl="+impl, "depth="+strconv.Itoa(d))
			}))
		}
		table(w, head, rows)
		fmt.Fprintln(w, "coreservice ÷ each:")
		fmt.Fprintln(w)
		table(w, ratioHead("chain"), ratios)
	}

	fmt.Fprintln(w, "## (f) Idle cost: CPU time per second of wall time")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "CPU time of the whole process (getrusage, user + system) per second of wall time, over a window")
	fmt.Fprintln(w, "once every unit has begun, `BenchmarkMonitorCPU`: idle trivial services (coreservice's monitor")
	fmt.Fprintln(w, "ticks every 100 ms on its own), and services with one check every 100 ms. 1 = one core busy.")
	fmt.Fprintln(w)
	{
		head := []string{"implementation"}
		type col struct {
			kind string
			n    int
		}
		var cols []col
		for _, kind := range []string{"idle", "check"} {
			for _, n := range s.sizes("MonitorCPU", "kind="+kind+"/impl=coreservice/", "n") {
				cols = append(cols, col{kind, n})
				head = append(head, fmt.Sprintf("%s, n=%s", kind, num(float64(n))))
			}
		}
		var rows [][]string
		for _, impl := range checkedImpls {
			row := []string{show(impl)}
			for _, c := range cols {
				cfg := []string{"kind=" + c.kind, "impl=" + impl, "n=" + strconv.Itoa(c.n)}
				v, ok := s.median("MonitorCPU", "cpu-s/s", cfg...)
				if _, runs := s.failures("MonitorCPU", cfg...); runs == 0 {
					row = append(row, "") // no such run: the check variant only
					continue
				}
				row = append(row, s.withFailures(or(v, ok, func(v float64) string { return strconv.FormatFloat(v, 'f', 4, 64) }),
					"MonitorCPU", cfg...))
			}
			rows = append(rows, row)
		}
		table(w, head, rows)
	}

	fmt.Fprintln(w, "## (g) Shared dependency")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Build + start + stop of n parents under one root, each requiring one shared service that starts")
	fmt.Fprintln(w, "before them and stops after them, `BenchmarkShared`.")
	fmt.Fprintln(w)
	{
		var rows [][]string
		n := 0
		if ps := s.sizes("Shared", "impl=coreservice/", "parents"); len(ps) > 0 {
			n = ps[len(ps)-1]
		}
		get := func(impl, unit string) (float64, bool) {
			return s.median("Shared", unit, "impl="+impl, "parents="+strconv.Itoa(n))
		}
		for _, impl := range impls {
			op, ok := get(impl, "ns/op")
			per, ok2 := get(impl, "ns/service")
			a, _ := get(impl, "allocs/service")
			rows = append(rows, []string{show(impl), or(op, ok, dur), or(per, ok2, dur), num(a)})
		}
		table(w, []string{"implementation", fmt.Sprintf("%s parents, one op", num(float64(n))), "per service", "allocs per service"}, rows)
		table(w, ratioHead("coreservice"), [][]string{ratioRow("one op", func(impl string) (float64, bool) { return get(impl, "ns/op") })})
	}

	fmt.Fprintln(w, "## (h) Restart loop")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Cost of one restart of a child that fails when told to, restarted with no delay,")
	fmt.Fprintln(w, "`BenchmarkRestart`: the crash, the library's restart, and the wait until the new child runs (its")
	fmt.Fprintln(w, "body has begun; for coreservice, the requirement's `Current` returns it), per restart.")
	fmt.Fprintln(w)
	{
		var rows [][]string
		bare, okb := s.median("Restart", "ns/op", "impl=bare")
		sut, oks := s.median("Restart", "ns/op", "impl=suture")
		for _, v := range restartVariants {
			x, ok := s.median("Restart", "ns/op", "impl="+v)
			b, okB := s.median("Restart", "B/op", "impl="+v)
			a, okA := s.median("Restart", "allocs/op", "impl="+v)
			rb, rs := "–", "–"
			if ok && okb {
				rb = ratio(x, bare)
			}
			if ok && oks {
				rs = ratio(x, sut)
			}
			rows = append(rows, []string{restartLabels[v], or(x, ok, dur), or(b, okB, bytesf), or(a, okA, num), rb, rs})
		}
		table(w, []string{"restarter", "per restart", "bytes per restart", "allocs per restart", "÷ bare", "÷ suture"}, rows)
	}
	fmt.Fprintln(w, "Restarts that a child failing at once each time it is started causes under each library's default")
	fmt.Fprintln(w, "policy, counted on a fake clock (`testing/synctest`) over 20 minutes of fake time,")
	fmt.Fprintln(w, "`TestRestartLoopUnderDefaultPolicies`: restarts by each time since the start, the steady rate")
	fmt.Fprintln(w, "(restarts per minute between 5 and 10 min), and when the supervisor gave up. A count, not a")
	fmt.Fprintln(w, "timing: it does not depend on the machine.")
	fmt.Fprintln(w)
	{
		head := []string{"policy"}
		for _, c := range restartCheckpoints {
			head = append(head, "by "+c)
		}
		head = append(head, "per minute, steady", "gave up")
		var rows [][]string
		for _, v := range restartLoopVariants {
			cfg := []string{"impl=" + v[0], "policy=" + v[1]}
			row := []string{v[2]}
			for _, c := range restartCheckpoints {
				x, ok := s.median("RestartLoop", "restarts-"+c, cfg...)
				row = append(row, or(x, ok, num))
			}
			x, ok := s.median("RestartLoop", "restarts/min-steady", cfg...)
			row = append(row, or(x, ok, func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }))
			gave := "–"
			if g, ok := s.median("RestartLoop", "gave-up", cfg...); ok {
				total, _ := s.median("RestartLoop", "restarts-total", cfg...)
				if g > 0 {
					at, _ := s.median("RestartLoop", "gave-up-s", cfg...)
					gave = fmt.Sprintf("at %v, after %s restarts", time.Duration(at*1e9).Round(100*time.Millisecond), num(total))
				} else {
					gave = fmt.Sprintf("never in 20 min (%s restarts)", num(total))
				}
			}
			rows = append(rows, append(row, gave))
		}
		table(w, head, rows)
	}
	fmt.Fprintln(w, "suture restarts at once until its failure count (halved every FailureDecay) passes FailureThreshold,")
	fmt.Fprintln(w, "then pauses the whole supervisor for FailureBackoff: 5 restarts at once, then 6 per pause of 15 to")
	fmt.Fprintln(w, "22.5 s, for ever. backoff.NewExponentialBackOff waits 500 ms ×1.5 up to 60 s (±50 %), and its")
	fmt.Fprintln(w, "MaxElapsedTime of 15 min makes NextBackOff return Stop: coreservice then gives up, and the parent")
	fmt.Fprintln(w, "fails with a *deps.GaveUpError (give it MaxElapsedTime 0 to retry for ever).")
	fmt.Fprintln(w)
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func memTotal() string {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			if err == nil {
				return fmt.Sprintf("%.1f GiB", kb/1024/1024)
			}
		}
	}
	return "unknown"
}

func writeHeader(w io.Writer, s *Set, meta []string, charts []string) {
	fmt.Fprintln(w, "# Benchmark results")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Generated by `bench/run` (do not edit by hand: the next run overwrites this file; the last section")
	fmt.Fprintln(w, "comes from `bench/package-benchmarks.md`). Every figure is the median of the runs of its")
	fmt.Fprintln(w, "benchmark (`-count` below). The machine is shared: absolute figures drift between runs, ratios")
	fmt.Fprintln(w, "less so. The services, and what each implementation does, are defined in `bench/doc.go` and in")
	fmt.Fprintln(w, "the doc comment of each implementation (`bench/*.go`); the scenarios in `bench/bench_test.go`.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "## Run")
	fmt.Fprintln(w)
	fmt.Fprintf(w, "- machine: %d CPUs (nproc; GOMAXPROCS %s in the benchmarks), %s, %s memory, %s/%s\n",
		runtime.NumCPU(), s.procs, cpuModel(), memTotal(), runtime.GOOS, runtime.GOARCH)
	for _, m := range meta {
		if m = strings.TrimSpace(m); m != "" {
			fmt.Fprintf(w, "- %s\n", m)
		}
	}
	fmt.Fprintln(w)
	if len(charts) > 0 {
		fmt.Fprintln(w, "## Charts")
		fmt.Fprintln(w)
		for _, c := range charts {
			fmt.Fprintf(w, "![%s](charts/%s.svg)\n\n", c, c)
		}
		fmt.Fprintln(w, "(PNG copies beside the SVGs in `bench/charts/`.)")
		fmt.Fprintln(w)
	}
}
