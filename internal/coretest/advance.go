package coretest

import "time"

// Advance moves the fake clock of the caller's testing/synctest bubble
// forward by d: it sleeps d, which in a bubble returns once every other
// goroutine of the bubble is durably blocked and the clock has reached the
// deadline, at once in real time. Tests use it, not time.Sleep, to let fake
// time pass: outside a bubble it panics rather than sleep in real time. A
// bubble's clock starts at midnight UTC, 2000-01-01 (testing/synctest), and
// no test runs a year of fake time, so a clock past 2000 is a real one.
func Advance(d time.Duration) {
	if !time.Now().Before(time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)) {
		panic("coretest.Advance: not in a testing/synctest bubble (its clock starts at 2000-01-01): it would sleep in real time")
	}
	time.Sleep(d)
}
