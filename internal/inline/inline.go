// Package inline is how the module's own units and requirements tell
// package core that a call of theirs runs no user code and never blocks, so
// that core makes the call on its own goroutine instead of in a goroutine
// bounded by a timeout (core's callBounded), which user code needs. Types
// outside the module cannot implement these interfaces, whose methods take a
// Token that only the module can name: their calls are always bounded.
package inline

// Token is the argument of the interfaces' methods. Being in an internal
// package, it cannot be named outside the module, so no user type can
// implement Launcher or Resolver by accident or on purpose.
type Token struct{}

// Launcher is a core.Unit that says whether its Launch, and its Validate
// (if it is a core.UnitValidator), run user code.
type Launcher interface {
	// LaunchInline reports whether Launch runs no user code and does not
	// block, so that it can be called inline.
	LaunchInline(Token) bool
	// ValidateInline reports whether Validate (if any) runs no user code
	// either: then a start of the unit's service with nothing else in it
	// that runs user code can run on its parent's goroutine.
	ValidateInline(Token) bool
}

// Resolver is a core.Requirement whose Resolve runs no user code and does
// not block.
type Resolver interface {
	// ResolveInline reports whether Resolve can be called inline.
	ResolveInline(Token) bool
}

// Part is a core.Unit of a service that the module builds as part of its
// parent (the supervisor of deps.Supervise, the campaign of
// leader.Service), which its users do not configure: the service takes
// the StartTimeout and StopTimeout of the parent that starts it, as it
// takes its logger.
type Part interface {
	// PartOfParent reports whether the unit's service is part of its
	// parent.
	PartOfParent(Token) bool
}
