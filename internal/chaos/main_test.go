package chaos_test

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

var chaosDuration = flag.Duration("chaos.duration", 0,
	"run chaos rounds for this long (the soak); the environment's CHAOS_DURATION does the same")

func TestMain(m *testing.M) {
	// core.Run calls signal.Notify, whose first call starts a goroutine that
	// lives as long as the process: start it here, outside every synctest
	// bubble, or the first bubble to call Run would own it.
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGUSR2)
	signal.Stop(c)
	goleak.VerifyTestMain(m)
}

// quickSizes are the services per round of the quick mode: one round of
// 1,000 services, then smaller ones for variety within the time budget.
var quickSizes = []int{1000, 250, 250, 250}

// plan is one round: its seed and its number of services decide the tree,
// the faults and the schedule of the actors. (The interleaving of
// goroutines within one instant of fake time is the scheduler's.)
type plan struct {
	seed uint64
	size int
}

// config reads CHAOS_SEED, CHAOS_SIZE, CHAOS_ROUNDS, CHAOS_DURATION and
// -chaos.duration. With CHAOS_SEED it runs that one round.
type config struct {
	seed     uint64 // first seed; round i uses seed+i
	fixed    bool   // CHAOS_SEED given: one round
	size     int    // CHAOS_SIZE, 0 when not given
	rounds   int    // CHAOS_ROUNDS, 0 when not given
	duration time.Duration
}

func readConfig(t *testing.T) config {
	t.Helper()
	var c config
	if s := os.Getenv("CHAOS_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("CHAOS_SEED=%q: %v", s, err)
		}
		c.seed, c.fixed = n, true
	} else {
		c.seed = uint64(time.Now().UnixNano())
	}
	if s := os.Getenv("CHAOS_SIZE"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 2 {
			t.Fatalf("CHAOS_SIZE=%q: want an integer >= 2", s)
		}
		c.size = n
	}
	if s := os.Getenv("CHAOS_ROUNDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("CHAOS_ROUNDS=%q: want an integer >= 1", s)
		}
		c.rounds = n
	}
	c.duration = *chaosDuration
	if s := os.Getenv("CHAOS_DURATION"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			t.Fatalf("CHAOS_DURATION=%q: want a positive duration such as 10m", s)
		}
		c.duration = d
	}
	return c
}

// sizeOf is the size of round i: every fourth round 1,000 services, the
// others between 100 and 1,000 (soak), or quickSizes (quick mode).
func (c config) sizeOf(i int, quick bool) int {
	switch {
	case c.size > 0:
		return c.size
	case quick:
		return quickSizes[i%len(quickSizes)]
	case i%4 == 0:
		return 1000
	default:
		return 100 + int((c.seed+uint64(i))*2654435761%901)
	}
}

// stats are the figures of a run of the suite, reported at its end.
type stats struct {
	mu            sync.Mutex
	rounds        int
	services      []int
	faults        map[string]int // injected faults that fired, by kind
	longestStop   time.Duration  // fake time
	longestStopAt string
	longestRound  time.Duration // real time
	stuck         int           // deliberately stuck goroutines released
	goroutinesEnd int
}

func (s *stats) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	kinds := make([]string, 0, len(s.faults))
	total := 0
	for k, n := range s.faults {
		kinds = append(kinds, fmt.Sprintf("%s=%d", k, n))
		total += n
	}
	slices.Sort(kinds)
	minS, maxS, sum := 0, 0, 0
	for i, n := range s.services {
		if i == 0 || n < minS {
			minS = n
		}
		maxS = max(maxS, n)
		sum += n
	}
	avg := 0
	if len(s.services) > 0 {
		avg = sum / len(s.services)
	}
	return fmt.Sprintf("rounds=%d services/round min=%d avg=%d max=%d total=%d; faults fired=%d (%s); "+
		"longest Stop=%v (fake time, %s); longest round=%v (real); stuck goroutines released=%d; goroutines at end=%d",
		s.rounds, minS, avg, maxS, sum, total, strings.Join(kinds, " "),
		s.longestStop, s.longestStopAt, s.longestRound.Round(time.Millisecond), s.stuck, s.goroutinesEnd)
}
