package bench_test

import (
	"log/slog"
	"testing"

	"go.uber.org/goleak"
)

var quietLogger = slog.New(slog.DiscardHandler)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
