// Package names holds the one rule for the names of services,
// requirements and checks: they are path segments of the health probes
// (/readyz/<service>/<requirement>/<check>) and lines of their text output,
// so a name must be non-empty, valid UTF-8, without '/', and made of
// graphic characters only (letters, marks, numbers, punctuation, symbols
// and spaces): no control character such as a newline or a tab, no format
// character such as a bidirectional override, no line or paragraph
// separator.
package names

import (
	"errors"
	"fmt"
	"unicode"
	"unicode/utf8"
)

// ErrInvalid matches the errors of Check.
var ErrInvalid = errors.New("invalid name")

// Check returns nil if name is a valid name, and otherwise an error
// matching ErrInvalid that says why.
func Check(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty", ErrInvalid)
	}
	for i, r := range name {
		switch {
		case r == utf8.RuneError && !validAt(name, i):
			return fmt.Errorf("%w %q: not valid UTF-8 at byte %d", ErrInvalid, name, i)
		case r == '/':
			return fmt.Errorf("%w %q: contains '/', the separator of probe paths", ErrInvalid, name)
		case !unicode.IsGraphic(r):
			return fmt.Errorf("%w %q: contains %U, not a graphic character", ErrInvalid, name, r)
		}
	}
	return nil
}

// validAt reports whether the RuneError at byte i of s is spelled out
// (U+FFFD) rather than the result of invalid UTF-8.
func validAt(s string, i int) bool {
	r, size := utf8.DecodeRuneInString(s[i:])
	return r == utf8.RuneError && size == 3
}
