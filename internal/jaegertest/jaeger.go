package jaegertest

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Version is the Jaeger release that tools/jaeger/go.mod builds, and the
// suffix of the cached binary's name.
const Version = "v1.76.0"

// StartTimeout bounds how long [Start] waits for Jaeger to be ready.
const StartTimeout = 60 * time.Second

// StopTimeout bounds how long stopping Jaeger waits after SIGTERM before
// it sends SIGKILL.
const StopTimeout = 10 * time.Second

// Environment variables read by [Binary] and [Start].
const (
	// EnvBinary names the Jaeger binary to use instead of the cached one.
	EnvBinary = "CORESERVICE_JAEGER_BIN"
	// EnvRequired, set to 1, makes [Start] fail instead of skip when there
	// is no binary.
	EnvRequired = "CORESERVICE_JAEGER_REQUIRED"
	// EnvCache names the cache directory, as it does for scripts/jaeger.
	EnvCache = "CORESERVICE_CACHE"
	// EnvSkip, set to 1, makes [Start] skip the test whatever the other
	// variables say (test.sh sets it for CORESERVICE_SKIP_JAEGER=1 ./test.sh).
	EnvSkip = "CORESERVICE_SKIP_JAEGER"
)

// readyLine is what the collector logs once every receiver, exporter and
// extension is running.
const readyLine = "Everything is ready"

// maxLogDump bounds how much of Jaeger's log a failing test prints.
const maxLogDump = 64 << 10

// startAttempts is how often Start tries again when a port it picked was
// taken by someone else before Jaeger could bind it.
const startAttempts = 3

// config is the collector configuration: endpoints come from the
// CORESERVICE_JAEGER_* variables, all on 127.0.0.1.
//
//go:embed config.yaml
var config []byte

// CacheDir returns the directory scripts/jaeger builds into:
// $CORESERVICE_CACHE, else $XDG_CACHE_HOME/coreservice, else
// $HOME/.cache/coreservice.
func CacheDir() (string, error) {
	if d := os.Getenv(EnvCache); d != "" {
		return d, nil
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "coreservice"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("jaegertest: no cache directory: set %s or HOME: %w", EnvCache, err)
	}
	return filepath.Join(home, ".cache", "coreservice"), nil
}

// Binary returns the path of the Jaeger binary: $CORESERVICE_JAEGER_BIN if
// set, else jaeger-<Version> in [CacheDir]. The error says how to build it
// if it is missing.
func Binary() (string, error) {
	path := os.Getenv(EnvBinary)
	if path == "" {
		dir, err := CacheDir()
		if err != nil {
			return "", err
		}
		path = filepath.Join(dir, "jaeger-"+Version)
	}
	info, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("jaegertest: no Jaeger binary at %s: build it with `scripts/jaeger build` "+
			"(once, 5-12 minutes; it is cached) or set %s", path, EnvBinary)
	case err != nil:
		return "", fmt.Errorf("jaegertest: Jaeger binary: %w", err)
	case info.IsDir() || info.Mode().Perm()&0o111 == 0:
		return "", fmt.Errorf("jaegertest: Jaeger binary %s is not an executable file", path)
	}
	return path, nil
}

// Jaeger is a running Jaeger process with in-memory storage, listening on
// 127.0.0.1 only. Its embedded [Client] reads its query API.
type Jaeger struct {
	*Client

	otlpGRPC, otlpHTTP, queryHTTP, queryGRPC string
	logPath                                  string
	cmd                                      *exec.Cmd
	exited                                   chan struct{} // closed once cmd.Wait has returned
	waitErr                                  error         // cmd.Wait's result, set before exited closes
	stopOnce                                 sync.Once
}

// Start starts Jaeger for the test: on free 127.0.0.1 ports, with its
// configuration and log in t.TempDir(). It returns once Jaeger is ready,
// within [StartTimeout]. It skips the test if CORESERVICE_SKIP_JAEGER=1.
// With no binary (see [Binary]) it skips the test too, or fails it if
// CORESERVICE_JAEGER_REQUIRED=1.
//
// When the test ends, Jaeger is stopped by PID (SIGTERM, then SIGKILL after
// [StopTimeout]) and waited for, and its log is printed if the test failed.
func Start(t testing.TB) *Jaeger {
	t.Helper()
	if os.Getenv(EnvSkip) == "1" {
		t.Skipf("skipping: %s=1", EnvSkip)
	}
	bin, err := Binary()
	if err != nil {
		if os.Getenv(EnvRequired) == "1" {
			t.Fatalf("%v (%s=1)", err, EnvRequired)
		}
		t.Skipf("skipping: %v", err)
	}
	dir := t.TempDir()
	configPath := filepath.Join(dir, "jaeger.yaml")
	if err := os.WriteFile(configPath, config, 0o644); err != nil {
		t.Fatalf("jaegertest: writing the config: %v", err)
	}
	for attempt := 1; ; attempt++ {
		j, err := start(t, bin, configPath, filepath.Join(dir, fmt.Sprintf("jaeger-%d.log", attempt)))
		if err == nil {
			return j
		}
		if errors.Is(err, errPortTaken) && attempt < startAttempts {
			t.Logf("jaegertest: %v; trying other ports", err)
			continue
		}
		t.Fatalf("jaegertest: %v", err)
	}
}

// errPortTaken means Jaeger exited because an address was in use.
var errPortTaken = errors.New("a port was taken before Jaeger could bind it")

// start runs one Jaeger process and waits for it to be ready; on failure
// the process has been stopped. The test's cleanup stops it in any case.
func start(t testing.TB, bin, configPath, logPath string) (*Jaeger, error) {
	ports, err := freePorts(4)
	if err != nil {
		return nil, err
	}
	j := &Jaeger{
		otlpGRPC:  ports[0],
		otlpHTTP:  ports[1],
		queryHTTP: ports[2],
		queryGRPC: ports[3],
		logPath:   logPath,
		exited:    make(chan struct{}),
	}
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	out := &readyWriter{w: logFile, ready: make(chan struct{})}

	j.cmd = exec.Command(bin, "--config", configPath)
	j.cmd.Env = append(environ(),
		"CORESERVICE_JAEGER_OTLP_GRPC="+j.otlpGRPC,
		"CORESERVICE_JAEGER_OTLP_HTTP="+j.otlpHTTP,
		"CORESERVICE_JAEGER_QUERY_HTTP="+j.queryHTTP,
		"CORESERVICE_JAEGER_QUERY_GRPC="+j.queryGRPC,
	)
	j.cmd.Stdout, j.cmd.Stderr = out, out
	j.cmd.SysProcAttr = sysProcAttr()
	if err := j.cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	go func() {
		// Wait returns once the process has exited and its output has
		// been copied to the log.
		j.waitErr = j.cmd.Wait()
		logFile.Close()
		close(j.exited)
	}()
	t.Cleanup(func() {
		j.stop(t)
		if t.Failed() {
			t.Logf("jaegertest: Jaeger's log (%s):\n%s", logPath, readTail(logPath))
		}
	})
	j.Client = NewClient("http://" + j.queryHTTP)

	timer := time.NewTimer(StartTimeout)
	defer timer.Stop()
	select {
	case <-out.ready:
		return j, nil
	case <-j.exited:
		log := readTail(logPath)
		if strings.Contains(log, "address already in use") {
			return nil, fmt.Errorf("%w (%v)", errPortTaken, j.waitErr)
		}
		return nil, fmt.Errorf("jaeger exited before it was ready (%v); its log:\n%s", j.waitErr, log)
	case <-timer.C:
		j.stop(t)
		return nil, fmt.Errorf("jaeger not ready after %v (no %q in its log); its log:\n%s",
			StartTimeout, readyLine, readTail(logPath))
	}
}

// OTLPGRPCEndpoint returns the host:port of Jaeger's OTLP/gRPC receiver.
func (j *Jaeger) OTLPGRPCEndpoint() string { return j.otlpGRPC }

// OTLPHTTPEndpoint returns the host:port of Jaeger's OTLP/HTTP receiver
// (traces go to http://HOST:PORT/v1/traces).
func (j *Jaeger) OTLPHTTPEndpoint() string { return j.otlpHTTP }

// QueryURL returns the base URL of Jaeger's query API, such as
// "http://127.0.0.1:16686".
func (j *Jaeger) QueryURL() string { return "http://" + j.queryHTTP }

// PID returns the process id of the Jaeger process.
func (j *Jaeger) PID() int { return j.cmd.Process.Pid }

// LogPath returns the file holding Jaeger's stdout and stderr.
func (j *Jaeger) LogPath() string { return j.logPath }

// stop stops the process (SIGTERM, then SIGKILL after StopTimeout), waits
// for it, and closes the client's idle connections. Only the first call
// does anything; later ones return at once.
func (j *Jaeger) stop(t testing.TB) {
	j.stopOnce.Do(func() {
		if j.Client != nil {
			defer j.Client.Close()
		}
		select {
		case <-j.exited:
			return
		default:
		}
		if err := j.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			t.Logf("jaegertest: SIGTERM to Jaeger (PID %d): %v", j.PID(), err)
		}
		timer := time.NewTimer(StopTimeout)
		defer timer.Stop()
		select {
		case <-j.exited:
			return
		case <-timer.C:
		}
		t.Logf("jaegertest: Jaeger (PID %d) still running %v after SIGTERM, killing it", j.PID(), StopTimeout)
		if err := j.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
			t.Logf("jaegertest: SIGKILL to Jaeger (PID %d): %v", j.PID(), err)
		}
		<-j.exited // SIGKILL cannot be caught: Wait returns
	})
}

// environ is the test's environment without OTEL_* variables, which a
// test may set for the code it tests and which are not meant for Jaeger.
func environ() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OTEL_") {
			env = append(env, kv)
		}
	}
	return env
}

// freePorts returns n distinct free 127.0.0.1 addresses (host:port). They
// are free when it returns; another process may take one before Jaeger
// binds it, which start detects.
func freePorts(n int) ([]string, error) {
	var addrs []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("picking a free port: %w", err)
		}
		defer l.Close() // hold each until all are picked, so they differ
		addrs = append(addrs, l.Addr().String())
	}
	return addrs, nil
}

// readTail returns the end of the file at path (at most maxLogDump bytes).
func readTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read the log: %v)", err)
	}
	if len(b) > maxLogDump {
		b = append([]byte("...\n"), b[len(b)-maxLogDump:]...)
	}
	return string(b)
}

// readyWriter passes Jaeger's output to w and closes ready once the output
// contains readyLine, even if the line is split across writes.
type readyWriter struct {
	mu    sync.Mutex
	w     *os.File
	tail  []byte
	seen  bool
	ready chan struct{}
}

// Write writes p to the log and looks for readyLine in it.
func (r *readyWriter) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.seen {
		r.tail = append(r.tail, p...)
		if bytes.Contains(r.tail, []byte(readyLine)) {
			r.seen, r.tail = true, nil
			close(r.ready)
		} else if keep := len(readyLine) - 1; len(r.tail) > keep {
			r.tail = append(r.tail[:0], r.tail[len(r.tail)-keep:]...)
		}
	}
	return r.w.Write(p)
}
