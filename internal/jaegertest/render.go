package jaegertest

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Render writes traces to w as indented trees, newest trace first: a header
// line per trace (id, start time, service of its root, span count), then
// one line per span, indented two spaces per level under its parent, with
// its operation, duration, its service in brackets when it differs from the
// root's, "(follows trace ID)" for each link (FollowsFrom reference), and,
// for a failed span, ERROR and what went wrong ([Span.ErrorMessage]). A
// span whose parent is not in the trace is shown at the top level, marked
// "(parent not in trace)". It returns the first write error.
func Render(w io.Writer, traces []Trace) error {
	bw := bufio.NewWriter(w)
	sorted := slices.Clone(traces)
	slices.SortStableFunc(sorted, func(a, b Trace) int {
		return cmp.Or(traceStart(b).Compare(traceStart(a)), cmp.Compare(a.TraceID, b.TraceID))
	})
	for i, t := range sorted {
		if i > 0 {
			bw.WriteString("\n")
		}
		renderTrace(bw, t)
	}
	return bw.Flush()
}

func renderTrace(w *bufio.Writer, t Trace) {
	ids := make(map[string]bool, len(t.Spans))
	for _, s := range t.Spans {
		ids[s.SpanID] = true
	}
	var roots []*Span
	for i := range t.Spans {
		if p := t.Spans[i].ParentID(); p == "" || !ids[p] {
			roots = append(roots, &t.Spans[i])
		}
	}
	sortSpans(roots)
	service := ""
	if len(roots) > 0 {
		service = t.Service(roots[0])
	}
	fmt.Fprintf(w, "trace %s  %s  %s  %d %s\n", t.TraceID,
		traceStart(t).Format("2006-01-02 15:04:05.000 MST"), service, len(t.Spans), plural(len(t.Spans), "span"))

	seen := make(map[string]bool, len(t.Spans)) // guards against reference cycles
	var walk func(s *Span, depth int)
	walk = func(s *Span, depth int) {
		if seen[s.SpanID] {
			return
		}
		seen[s.SpanID] = true
		line := strings.Repeat("  ", depth+1) + s.OperationName + "  " + formatDuration(s.Duration)
		if svc := t.Service(s); svc != service {
			line += "  [" + svc + "]"
		}
		if p := s.ParentID(); depth == 0 && p != "" {
			line += "  (parent not in trace)"
		}
		for _, l := range s.Links() {
			if l.TraceID == t.TraceID && ids[l.SpanID] {
				line += "  (follows span " + l.SpanID + ")"
			} else {
				line += "  (follows trace " + l.TraceID + ")"
			}
		}
		if s.HasError() {
			line += "  ERROR"
			if msg := s.ErrorMessage(); msg != "" {
				line += " " + oneLine(msg)
			}
		}
		w.WriteString(line + "\n")
		for _, c := range t.Children(s.SpanID) {
			walk(c, depth+1)
		}
	}
	for _, r := range roots {
		walk(r, 0)
	}
}

// traceStart is when the trace's earliest span started.
func traceStart(t Trace) time.Time {
	var start time.Time
	for _, s := range t.Spans {
		if start.IsZero() || s.StartTime.Before(start) {
			start = s.StartTime
		}
	}
	return start
}

// formatDuration prints d with at most three significant decimals: 1.235s,
// 12.346ms, 850µs.
func formatDuration(d time.Duration) string {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(time.Microsecond).String()
	default:
		return d.String()
	}
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// oneLine keeps a multi-line message on its span's line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
