package jaegertest

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Reference types of a [Reference], as Jaeger names them. OpenTelemetry's
// parent becomes a ChildOf reference, each of its links a FollowsFrom one.
const (
	ChildOf     = "CHILD_OF"
	FollowsFrom = "FOLLOWS_FROM"
)

// Trace is one trace as the Jaeger query API returns it.
type Trace struct {
	// TraceID is the trace's id, 32 lowercase hex digits.
	TraceID string `json:"traceID"`
	// Spans are the trace's spans, in the order Jaeger returned them.
	Spans []Span `json:"spans"`
	// Processes maps each Span.ProcessID to the process that emitted it.
	Processes map[string]Process `json:"processes"`
}

// Span is one span of a [Trace].
type Span struct {
	// TraceID is the id of the span's trace.
	TraceID string
	// SpanID is the span's id, 16 lowercase hex digits.
	SpanID string
	// OperationName is the span's name.
	OperationName string
	// References are the span's parent (ChildOf) and links (FollowsFrom).
	References []Reference
	// StartTime is when the span started, to the microsecond.
	StartTime time.Time
	// Duration is how long the span lasted, to the microsecond.
	Duration time.Duration
	// Tags are the span's attributes, plus those Jaeger derives from its
	// status and kind (error, otel.status_code, span.kind, ...).
	Tags []KeyValue
	// Logs are the span's events; an OpenTelemetry event's name is the
	// "event" field.
	Logs []Log
	// ProcessID is the key of the span's process in Trace.Processes.
	ProcessID string
}

// Reference is a relation from a [Span] to another span.
type Reference struct {
	// RefType is ChildOf or FollowsFrom.
	RefType string `json:"refType"`
	// TraceID is the trace of the span referred to.
	TraceID string `json:"traceID"`
	// SpanID is the span referred to.
	SpanID string `json:"spanID"`
}

// Log is a timestamped event of a [Span].
type Log struct {
	// Timestamp is when the event happened, to the microsecond.
	Timestamp time.Time
	// Fields are the event's attributes; "event" holds its name.
	Fields []KeyValue
}

// Process is the emitter of spans: its service and resource attributes.
type Process struct {
	// ServiceName is the resource's service.name.
	ServiceName string `json:"serviceName"`
	// Tags are the other resource attributes.
	Tags []KeyValue `json:"tags"`
}

// KeyValue is a tag or a log field.
type KeyValue struct {
	// Key is the attribute's name.
	Key string
	// Type is Jaeger's type name: string, bool, int64, float64 or binary.
	Type string
	// Value is a string, bool, int64 or float64 following Type; a binary
	// value is its base64 text, as Jaeger sends it.
	Value any
}

// UnmarshalJSON decodes a span, converting Jaeger's microsecond startTime
// and duration.
func (s *Span) UnmarshalJSON(b []byte) error {
	var w struct {
		TraceID       string      `json:"traceID"`
		SpanID        string      `json:"spanID"`
		OperationName string      `json:"operationName"`
		References    []Reference `json:"references"`
		StartTime     int64       `json:"startTime"`
		Duration      int64       `json:"duration"`
		Tags          []KeyValue  `json:"tags"`
		Logs          []Log       `json:"logs"`
		ProcessID     string      `json:"processID"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*s = Span{
		TraceID:       w.TraceID,
		SpanID:        w.SpanID,
		OperationName: w.OperationName,
		References:    w.References,
		StartTime:     time.UnixMicro(w.StartTime).UTC(),
		Duration:      time.Duration(w.Duration) * time.Microsecond,
		Tags:          w.Tags,
		Logs:          w.Logs,
		ProcessID:     w.ProcessID,
	}
	return nil
}

// UnmarshalJSON decodes a log, converting Jaeger's microsecond timestamp.
func (l *Log) UnmarshalJSON(b []byte) error {
	var w struct {
		Timestamp int64      `json:"timestamp"`
		Fields    []KeyValue `json:"fields"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*l = Log{Timestamp: time.UnixMicro(w.Timestamp).UTC(), Fields: w.Fields}
	return nil
}

// UnmarshalJSON decodes a tag or field, giving Value the Go type that Type
// names (an int64 keeps all its digits).
func (kv *KeyValue) UnmarshalJSON(b []byte) error {
	var w struct {
		Key   string          `json:"key"`
		Type  string          `json:"type"`
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	kv.Key, kv.Type = w.Key, w.Type
	var err error
	switch w.Type {
	case "string", "binary":
		var v string
		err = json.Unmarshal(w.Value, &v)
		kv.Value = v
	case "bool":
		var v bool
		err = json.Unmarshal(w.Value, &v)
		kv.Value = v
	case "int64":
		// Jaeger writes an int64 as a JSON number; go through its text so
		// that values beyond 2^53 are not rounded.
		kv.Value, err = strconv.ParseInt(string(bytes.Trim(w.Value, `"`)), 10, 64)
	case "float64":
		kv.Value, err = strconv.ParseFloat(string(bytes.Trim(w.Value, `"`)), 64)
	default:
		var v any
		err = json.Unmarshal(w.Value, &v)
		kv.Value = v
	}
	if err != nil {
		return fmt.Errorf("jaegertest: tag %q of type %q: %w", w.Key, w.Type, err)
	}
	return nil
}

// Span returns the trace's span named opName, the earliest one if there are
// several, or nil if there is none. The pointer refers into t.Spans.
func (t Trace) Span(opName string) *Span {
	var found *Span
	for i := range t.Spans {
		s := &t.Spans[i]
		if s.OperationName == opName && (found == nil || s.StartTime.Before(found.StartTime)) {
			found = s
		}
	}
	return found
}

// SpansNamed returns every span of the trace named opName, ordered by start
// time. The pointers refer into t.Spans.
func (t Trace) SpansNamed(opName string) []*Span {
	var spans []*Span
	for i := range t.Spans {
		if t.Spans[i].OperationName == opName {
			spans = append(spans, &t.Spans[i])
		}
	}
	sortSpans(spans)
	return spans
}

// Children returns the spans whose parent (ChildOf reference) is the span
// spanID, ordered by start time. The pointers refer into t.Spans.
func (t Trace) Children(spanID string) []*Span {
	var spans []*Span
	for i := range t.Spans {
		if t.Spans[i].ParentID() == spanID {
			spans = append(spans, &t.Spans[i])
		}
	}
	sortSpans(spans)
	return spans
}

// Service returns the service name of the process that emitted s, or "" if
// the trace does not list that process.
func (t Trace) Service(s *Span) string {
	return t.Processes[s.ProcessID].ServiceName
}

// sortSpans orders spans by start time, then by id, so that output is
// deterministic.
func sortSpans(spans []*Span) {
	slices.SortStableFunc(spans, func(a, b *Span) int {
		return cmp.Or(a.StartTime.Compare(b.StartTime), cmp.Compare(a.SpanID, b.SpanID))
	})
}

// ParentID returns the span id of the span's parent (its first ChildOf
// reference), or "" for a root span.
func (s Span) ParentID() string {
	for _, r := range s.References {
		if r.RefType == ChildOf {
			return r.SpanID
		}
	}
	return ""
}

// Links returns the span's FollowsFrom references: its OpenTelemetry links.
func (s Span) Links() []Reference {
	var links []Reference
	for _, r := range s.References {
		if r.RefType == FollowsFrom {
			links = append(links, r)
		}
	}
	return links
}

// Tag returns the value of the span's tag key, and whether it has one.
func (s Span) Tag(key string) (any, bool) {
	return lookup(s.Tags, key)
}

// HasError reports whether Jaeger marked the span as failed: its "error"
// tag is true, which is how an OpenTelemetry span with status Error
// arrives.
func (s Span) HasError() bool {
	v, _ := s.Tag("error")
	return v == true
}

// Event returns the span's first log whose "event" field is name (an
// OpenTelemetry event of that name, such as "exception"), or nil. The
// pointer refers into s.Logs.
func (s Span) Event(name string) *Log {
	for i := range s.Logs {
		if v, _ := s.Logs[i].Field("event"); v == name {
			return &s.Logs[i]
		}
	}
	return nil
}

// ErrorMessage returns what went wrong in a failed span: the messages of
// its exception events, joined by "; ", or else its status description;
// "" if it has neither.
func (s Span) ErrorMessage() string {
	var msgs []string
	for _, l := range s.Logs {
		if ev, _ := l.Field("event"); ev != "exception" {
			continue
		}
		if m, ok := l.Field("exception.message"); ok {
			msgs = append(msgs, fmt.Sprint(m))
		}
	}
	if msgs = slices.DeleteFunc(msgs, func(m string) bool { return m == "" }); len(msgs) > 0 {
		return strings.Join(msgs, "; ")
	}
	if d, ok := s.Tag("otel.status_description"); ok {
		return fmt.Sprint(d)
	}
	return ""
}

// Field returns the value of the log's field key, and whether it has one.
func (l Log) Field(key string) (any, bool) {
	return lookup(l.Fields, key)
}

// Tag returns the value of the process's tag key, and whether it has one.
func (p Process) Tag(key string) (any, bool) {
	return lookup(p.Tags, key)
}

func lookup(kvs []KeyValue, key string) (any, bool) {
	for _, kv := range kvs {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return nil, false
}
