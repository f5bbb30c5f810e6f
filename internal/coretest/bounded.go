package coretest

import (
	"testing"
	"time"
)

// Bounded calls fn (a Start or a Stop) in a goroutine and waits for it, for
// at most an hour, in the fake time of the test's synctest bubble: a call
// still running then fails the test, naming what. It returns how long fn
// took and its error.
func Bounded(t testing.TB, what string, fn func() error) (took time.Duration, err error) {
	t.Helper()
	begin := time.Now()
	res := make(chan error, 1)
	go func() { res <- fn() }()
	select {
	case err = <-res:
		return time.Since(begin), err
	case <-time.After(time.Hour):
		t.Fatalf("%s still running an hour later", what)
		return 0, nil
	}
}
