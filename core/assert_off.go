//go:build !coreassert

package core

// assertTransitions makes an illegal state transition panic instead of
// being logged: see illegalTransition. Build with -tags coreassert to set it.
const assertTransitions = false
