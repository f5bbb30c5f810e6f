//go:build coreassert

package core

// assertTransitions makes an illegal state transition panic instead of
// being logged: see illegalTransition. This build has -tags coreassert.
const assertTransitions = true
