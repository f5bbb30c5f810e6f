package coretest

import (
	"context"
	"log/slog"
	"slices"
	"sync"
)

// Record is one captured log record, its attributes flattened to strings
// (groups as "group.key").
type Record struct {
	Level   slog.Level
	Message string
	Attrs   map[string]string
}

// Logs is a slog.Handler that keeps every record, for tests that assert
// on what was logged. It is safe for concurrent use.
type Logs struct {
	mu      sync.Mutex
	records []Record
	notify  chan struct{} // closed and replaced on every record
}

// NewLogs returns an empty Logs.
func NewLogs() *Logs { return &Logs{notify: make(chan struct{})} }

// Logger returns a logger writing to l.
func (l *Logs) Logger() *slog.Logger { return slog.New(l) }

// Records returns the records kept so far.
func (l *Logs) Records() []Record {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.records)
}

// Find returns the records whose message is msg.
func (l *Logs) Find(msg string) []Record {
	var out []Record
	for _, r := range l.Records() {
		if r.Message == msg {
			out = append(out, r)
		}
	}
	return out
}

// Wait blocks until a record with message msg has been kept, or ctx ends;
// it reports whether one was.
func (l *Logs) Wait(ctx context.Context, msg string) bool {
	for {
		l.mu.Lock()
		ch := l.notify
		found := slices.ContainsFunc(l.records, func(r Record) bool { return r.Message == msg })
		l.mu.Unlock()
		if found {
			return true
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return false
		}
	}
}

// Enabled reports true for every level.
func (l *Logs) Enabled(context.Context, slog.Level) bool { return true }

// Handle keeps r.
func (l *Logs) Handle(_ context.Context, r slog.Record) error {
	l.add(nil, "", r)
	return nil
}

func (l *Logs) add(pre []slog.Attr, prefix string, r slog.Record) {
	rec := Record{Level: r.Level, Message: r.Message, Attrs: map[string]string{}}
	for _, a := range pre {
		flatten(rec.Attrs, "", a)
	}
	r.Attrs(func(a slog.Attr) bool {
		flatten(rec.Attrs, prefix, a)
		return true
	})
	l.mu.Lock()
	l.records = append(l.records, rec)
	close(l.notify)
	l.notify = make(chan struct{})
	l.mu.Unlock()
}

func flatten(m map[string]string, prefix string, a slog.Attr) {
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		for _, g := range v.Group() {
			flatten(m, prefix+a.Key+".", g)
		}
		return
	}
	m[prefix+a.Key] = v.String()
}

// WithAttrs returns a handler that adds attrs to every record kept in l.
func (l *Logs) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &logsChild{l: l, attrs: attrs}
}

// WithGroup returns a handler that keeps records in l under group name.
func (l *Logs) WithGroup(name string) slog.Handler {
	return &logsChild{l: l, prefix: name + "."}
}

type logsChild struct {
	l      *Logs
	attrs  []slog.Attr
	prefix string
}

func (c *logsChild) Enabled(context.Context, slog.Level) bool { return true }
func (c *logsChild) Handle(_ context.Context, r slog.Record) error {
	c.l.add(c.attrs, c.prefix, r)
	return nil
}
func (c *logsChild) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &logsChild{l: c.l, attrs: append(slices.Clone(c.attrs), attrs...), prefix: c.prefix}
}
func (c *logsChild) WithGroup(name string) slog.Handler {
	return &logsChild{l: c.l, attrs: c.attrs, prefix: c.prefix + name + "."}
}
