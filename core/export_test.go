package core

import (
	"context"
	"os"
)

// RunSignals is Run with the signals coming from sig instead of the process.
func RunSignals(ctx context.Context, sig <-chan os.Signal, svcs ...Service) error {
	return run(ctx, sig, svcs)
}
