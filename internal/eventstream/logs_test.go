package eventstream_test

import (
	"context"
	"log/slog"
	"slices"
	"sync"
)

type logRec struct {
	level string
	msg   string
	attrs map[string]string
}

// captured is a slog.Handler keeping every record with its attributes
// (those of With included) flattened to strings.
type captured struct {
	mu   *sync.Mutex
	recs *[]logRec
	pre  []slog.Attr
}

func newLogs() *captured { return &captured{mu: new(sync.Mutex), recs: new([]logRec)} }

func (c *captured) logger() *slog.Logger                     { return slog.New(c) }
func (c *captured) Enabled(context.Context, slog.Level) bool { return true }
func (c *captured) WithGroup(string) slog.Handler            { panic("no groups") }
func (c *captured) WithAttrs(a []slog.Attr) slog.Handler {
	return &captured{mu: c.mu, recs: c.recs, pre: append(slices.Clone(c.pre), a...)}
}

func (c *captured) Handle(_ context.Context, r slog.Record) error {
	m := map[string]string{}
	for _, a := range c.pre {
		m[a.Key] = a.Value.Resolve().String()
	}
	r.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value.Resolve().String(); return true })
	c.mu.Lock()
	*c.recs = append(*c.recs, logRec{level: r.Level.String(), msg: r.Message, attrs: m})
	c.mu.Unlock()
	return nil
}

func (c *captured) records() []logRec {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(*c.recs)
}

// eventAttrs is an event's LogValue flattened as captured flattens a record.
func eventAttrs(e interface{ LogValue() slog.Value }) map[string]string {
	m := map[string]string{}
	for _, a := range e.LogValue().Resolve().Group() {
		m[a.Key] = a.Value.Resolve().String()
	}
	return m
}
