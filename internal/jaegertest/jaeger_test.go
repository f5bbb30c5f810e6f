package jaegertest_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/coreservice/coreservice/internal/jaegertest"
)

// noJaeger points Binary at an empty cache and clears the variables that
// steer Start.
func noJaeger(t *testing.T) (cache string) {
	cache = t.TempDir()
	t.Setenv(jaegertest.EnvCache, cache)
	t.Setenv(jaegertest.EnvBinary, "")
	t.Setenv(jaegertest.EnvRequired, "")
	t.Setenv(jaegertest.EnvSkip, "")
	return cache
}

func TestBinaryMissingSaysHowToBuildIt(t *testing.T) {
	cache := noJaeger(t)
	_, err := jaegertest.Binary()
	if err == nil {
		t.Fatal("got nil, want an error")
	}
	for _, want := range []string{"scripts/jaeger build", filepath.Join(cache, "jaeger-"+jaegertest.Version)} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error: got %q, want it to contain %q", err, want)
		}
	}
}

func TestBinaryIsFoundInTheCache(t *testing.T) {
	cache := noJaeger(t)
	want := filepath.Join(cache, "jaeger-"+jaegertest.Version)
	if err := os.WriteFile(want, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	got, err := jaegertest.Binary()
	if err != nil || got != want {
		t.Fatalf("got %q, %v, want %q, nil", got, err, want)
	}
}

func TestBinaryCacheFollowsXDGCacheHome(t *testing.T) {
	noJaeger(t)
	t.Setenv(jaegertest.EnvCache, "")
	xdg := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", xdg)
	got, err := jaegertest.CacheDir()
	if want := filepath.Join(xdg, "coreservice"); err != nil || got != want {
		t.Fatalf("got %q, %v, want %q, nil", got, err, want)
	}
}

func TestBinaryFromEnvironmentWins(t *testing.T) {
	noJaeger(t)
	want := filepath.Join(t.TempDir(), "my-jaeger")
	if err := os.WriteFile(want, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv(jaegertest.EnvBinary, want)
	got, err := jaegertest.Binary()
	if err != nil || got != want {
		t.Fatalf("got %q, %v, want %q, nil", got, err, want)
	}
}

func TestBinaryThatIsNotExecutableIsAnError(t *testing.T) {
	noJaeger(t)
	path := filepath.Join(t.TempDir(), "jaeger")
	if err := os.WriteFile(path, []byte("not a program"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(jaegertest.EnvBinary, path)
	if _, err := jaegertest.Binary(); err == nil || !strings.Contains(err.Error(), "not an executable") {
		t.Fatalf("got %v, want an error saying it is not executable", err)
	}
}

func TestStartWithoutBinarySkipsNamingTheBuildCommand(t *testing.T) {
	noJaeger(t)
	skip, fatal := startRecorded(t)
	if fatal != "" || !strings.Contains(skip, "scripts/jaeger build") {
		t.Fatalf("got skip %q, fatal %q; want a skip naming scripts/jaeger build", skip, fatal)
	}
}

func TestStartWithoutBinaryFailsWhenRequired(t *testing.T) {
	noJaeger(t)
	t.Setenv(jaegertest.EnvRequired, "1")
	skip, fatal := startRecorded(t)
	if skip != "" || !strings.Contains(fatal, "scripts/jaeger build") || !strings.Contains(fatal, jaegertest.EnvRequired) {
		t.Fatalf("got skip %q, fatal %q; want a failure naming scripts/jaeger build and %s", skip, fatal, jaegertest.EnvRequired)
	}
}

func TestStartSkipsWhenAskedToEvenIfRequired(t *testing.T) {
	noJaeger(t)
	t.Setenv(jaegertest.EnvRequired, "1")
	t.Setenv(jaegertest.EnvSkip, "1")
	skip, fatal := startRecorded(t)
	if fatal != "" || !strings.Contains(skip, jaegertest.EnvSkip) {
		t.Fatalf("got skip %q, fatal %q; want a skip naming %s", skip, fatal, jaegertest.EnvSkip)
	}
}

func TestVersionIsTheOneToolsJaegerBuilds(t *testing.T) {
	mod := fixtureFile(t, "../../tools/jaeger/go.mod")
	m := regexp.MustCompile(`(?m)^\s*github\.com/jaegertracing/jaeger (v\S+)`).FindStringSubmatch(mod)
	if m == nil {
		t.Fatal("tools/jaeger/go.mod requires no github.com/jaegertracing/jaeger")
	}
	if m[1] != jaegertest.Version {
		t.Fatalf("Version: got %s, want %s (tools/jaeger/go.mod)", jaegertest.Version, m[1])
	}
}

func fixtureFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
