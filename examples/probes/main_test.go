package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// childEnv set to 1 makes the test binary run the example's main instead
// of the tests: the tests run the example as a process of its own, to
// send it signals.
const childEnv = "PROBES_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		main() // exits non-zero on failure
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

// TestSIGTERMDrainsTheRequestInFlight runs the example as a process on a
// free port, begins a request whose body it holds open (so that the request
// is in flight for as long as the test wants), sends SIGTERM, and finishes
// the body once the server drains: the request gets its 200 and the process
// exits 0.
func TestSIGTERMDrainsTheRequestInFlight(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	// -for: should the test die, the example still stops by itself.
	cmd := exec.Command(os.Args[0], "-addr", "127.0.0.1:0", "-for", "1m")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logs := readLines(stderr)
	exited := false
	t.Cleanup(func() {
		if !exited {
			_ = cmd.Process.Kill() // by PID
			<-logs.eof
			_ = cmd.Wait()
		}
	})

	listening := logs.wait(t, ctx, `msg="server listening"`)
	m := regexp.MustCompile(`addr=(127\.0\.0\.1:\d+)`).FindStringSubmatch(listening)
	if m == nil {
		t.Fatalf("listening line: got %q, want addr=127.0.0.1:<port>", listening)
	}
	body, bodyW := io.Pipe()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+m[1]+"/work?for=0s", body)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	type result struct {
		status int
		body   string
		err    error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			got <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		got <- result{resp.StatusCode, string(b), err}
	}()
	defer bodyW.Close() // should the test fail before the body is sent

	logs.wait(t, ctx, `msg="work begun"`)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	logs.wait(t, ctx, `msg="server draining"`)
	if _, err := io.WriteString(bodyW, "hello"); err != nil {
		t.Fatalf("sending the rest of the body during the drain: got %v, want nil", err)
	}
	bodyW.Close()

	var r result
	select {
	case r = <-got:
	case <-ctx.Done():
		t.Fatal("no answer to the request in flight")
	}
	if r.err != nil || r.status != http.StatusOK || r.body != "done: 5 bytes in 0s\n" {
		t.Fatalf("request in flight across SIGTERM: got %d %q (%v), want 200 %q", r.status, r.body, r.err, "done: 5 bytes in 0s\n")
	}
	select {
	case <-logs.eof:
	case <-ctx.Done():
		t.Fatal("the example did not exit after SIGTERM")
	}
	err = cmd.Wait()
	exited = true
	if err != nil {
		t.Fatalf("exit after SIGTERM: got %v, want exit status 0; stderr:\n%s", err, strings.Join(logs.all(), "\n"))
	}
	if !slices.ContainsFunc(logs.all(), func(l string) bool { return strings.Contains(l, `msg="server drained"`) }) {
		t.Fatalf("stderr: got\n%s\nwant a server drained line", strings.Join(logs.all(), "\n"))
	}
}

// lines is the output of a process, line by line, as it comes.
type lines struct {
	mu     sync.Mutex
	lines  []string
	notify chan struct{} // closed and replaced on every line
	eof    chan struct{} // closed once the output has ended
}

// readLines reads r in a goroutine that ends at r's end (the process's exit).
func readLines(r io.Reader) *lines {
	l := &lines{notify: make(chan struct{}), eof: make(chan struct{})}
	go func() {
		defer close(l.eof)
		s := bufio.NewScanner(r)
		for s.Scan() {
			l.mu.Lock()
			l.lines = append(l.lines, s.Text())
			close(l.notify)
			l.notify = make(chan struct{})
			l.mu.Unlock()
		}
	}()
	return l
}

func (l *lines) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.lines)
}

// wait returns the first line that contains s, failing the test if none
// has come when ctx ends or the output ends.
func (l *lines) wait(t *testing.T, ctx context.Context, s string) string {
	t.Helper()
	for {
		l.mu.Lock()
		i := slices.IndexFunc(l.lines, func(line string) bool { return strings.Contains(line, s) })
		var line string
		if i >= 0 {
			line = l.lines[i]
		}
		ch := l.notify
		l.mu.Unlock()
		if i >= 0 {
			return line
		}
		select {
		case <-ch:
		case <-l.eof:
			if got := l.all(); !slices.ContainsFunc(got, func(line string) bool { return strings.Contains(line, s) }) {
				t.Fatalf("output ended without %s:\n%s", s, strings.Join(got, "\n"))
			}
		case <-ctx.Done():
			t.Fatalf("no %s within the wait; output:\n%s", s, strings.Join(l.all(), "\n"))
		}
	}
}
