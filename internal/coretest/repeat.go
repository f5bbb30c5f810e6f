package coretest

import "sync"

// Repeat calls fn over and over in a goroutine of its own, for tests that
// read a service concurrently with its start and stop (under -race), until
// the returned stop is called; stop waits for the goroutine to end.
func Repeat(fn func()) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
				fn()
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}

// Drained returns, in order, what a closed channel still held.
func Drained[T any](ch <-chan T) []T {
	var out []T
	for v := range ch {
		out = append(out, v)
	}
	return out
}
