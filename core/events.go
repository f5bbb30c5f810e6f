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
	attrs := []slog.Attr{slog.String("from", from.String()), slog.String("state", to.String())}
	if err != nil {
		attrs = append(attrs, slog.Any("error", err))
		if to == StateFailed || to == StateStopping {
			level = slog.LevelError
		}
	}
	b.log.LogAttrs(ctx, level, "service "+to.String(), attrs...)
}

// Settled returns a channel closed once the service's start has finished,
// whichever way: the service is then Running (or already stopping), or its
// start failed or was stopped and is being rolled back (Done is closed when
// that ends). It stays open while the service is New, also after a Stop
// before Start. It lets a caller learn that a service left StateStarting
// without polling State: health.WaitReady uses it to see readiness when it
// is reached.
func (b *Base) Settled() <-chan struct{} { return b.settled }
