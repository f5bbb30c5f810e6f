package main

import (
	"context"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/coreservice/coreservice/internal/coretest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The example on an embedded etcd with a 2 s TTL, killing the leader after
// 1 s: another replica takes over (within TTL + 1 s of the kill) and runs
// the report with a greater token.
func TestLeaderIsKilledAndAnotherTakesOver(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 6*time.Second)
	defer cancel()
	var out coretest.Buffer
	cfg := config{ttl: 2 * time.Second, killAfter: time.Second, logger: slog.New(slog.DiscardHandler)}
	if err := run(ctx, &out, cfg); err != nil {
		t.Fatalf("run: got %v, want nil", err)
	}
	got := out.String()
	t.Logf("output:\n%s", got)
	killed := regexp.MustCompile(`(?m)^ *[0-9.]+s  ([abc])  killed \(etcd client closed\)$`).FindStringSubmatch(got)
	if killed == nil {
		t.Fatalf("output: want a line saying the leader was killed; got:\n%s", got)
	}
	took := regexp.MustCompile(`(?m)^ *[0-9.]+s  ([abc])  elected \(token [0-9]+\): took over ([0-9.]+)s after ([abc]) was killed$`).FindStringSubmatch(got)
	if took == nil {
		t.Fatalf("output: want a line saying another replica took over; got:\n%s", got)
	}
	if took[1] == killed[1] || took[3] != killed[1] {
		t.Errorf("takeover: got %s taking over from %s, want another replica than the killed %s", took[1], took[3], killed[1])
	}
	if d, err := time.ParseDuration(took[2] + "s"); err != nil || d > 3*time.Second {
		t.Errorf("failover time: got %ss, want within TTL + 1s = 3s", took[2])
	}
	// The killed replica's runs stop at the kill.
	after := got[strings.Index(got, killed[0]):]
	if strings.Contains(after, killed[1]+"  report (token") {
		t.Errorf("output: the killed replica %s ran report after the kill; got:\n%s", killed[1], got)
	}
}
