// Package inline is how the module's own units and requirements tell
// package core that a call of theirs runs no user code and never blocks, so
// that core makes the call on its own goroutine instead of in a goroutine
// bounded by a timeout (core's callBounded), which user code needs. Types
// outside the module do not implement these interfaces: their calls are
// always bounded.
package inline

// Launcher is a core.Unit whose Launch, this time, runs no user code and
// does not block.
type Launcher interface {
	// LaunchInline reports whether the next Launch can be called inline.
	LaunchInline() bool
}

// Resolver is a core.Requirement whose Resolve runs no user code and does
// not block.
type Resolver interface {
	// ResolveInline reports whether Resolve can be called inline.
	ResolveInline() bool
}
