package core

import (
	"context"
	"log/slog"
)

// raise is the one place where lifecycle events are raised: every state
// change of a service goes through it. Today it logs them; a typed event
// stream will hang off it too.
func (b *Base) raise(ctx context.Context, from, to State, err error) {
	level := slog.LevelInfo
	if err != nil && (to == StateFailed || to == StateStopping) {
		level = slog.LevelError
	}
	if !b.log.Enabled(ctx, level) {
		return // build no record nobody reads
	}
	attrs := []slog.Attr{slog.String("from", from.String()), slog.String("state", to.String())}
	if err != nil {
		attrs = append(attrs, slog.Any("error", err))
	}
	b.log.LogAttrs(ctx, level, "service "+to.String(), attrs...)
}
