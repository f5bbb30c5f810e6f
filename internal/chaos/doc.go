// Package chaos holds the chaos suite of the module: seeded random trees of
// services, built with the public API of core, task, deps and health, with
// injected failures (tasks that fail, panic, time out, ignore cancellation
// or end with task.ErrDone; hooks and lazy builders that fail, panic or
// hang; health checks that turn bad or hang) and concurrent Start, Stop and
// core.Run cancellation. After every round it asserts what the packages
// document: every started service is final once the root's Stop returns,
// every injected failure reaches an Err, Start, Stop or Run result, every
// Stop returns within its documented bound (in the fake time of a
// testing/synctest bubble) and names what ignored cancellation, and no
// goroutine outlives the round but the deliberately stuck ones.
//
// The package has no API: the suite is its tests. It runs in a quick mode
// with the module's tests (go test ./...), longer with CHAOS_ROUNDS=n,
// CHAOS_DURATION=10m or -chaos.duration=10m (the soak), and reproduces one
// round with the CHAOS_SEED and CHAOS_SIZE it prints.
package chaos
