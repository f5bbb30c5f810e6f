package coretest

import (
	"regexp"
	"runtime"
	"strings"
)

var bubbleRE = regexp.MustCompile(`synctest bubble (\d+)\]`)

// BubbleGoroutines returns the number of goroutines in the caller's
// synctest bubble (the caller included), or of the whole process when the
// caller is in none. Unlike runtime.NumGoroutine, it does not count the
// goroutines other tests left behind that are still ending, so that a test
// can compare it before and after without flaking.
func BubbleGoroutines() int {
	buf := make([]byte, 1<<10)
	own := bubbleRE.FindSubmatch(buf[:runtime.Stack(buf, false)])
	if own == nil {
		return runtime.NumGoroutine()
	}
	for {
		buf = make([]byte, 2*len(buf))
		if n := runtime.Stack(buf, true); n < len(buf) {
			return strings.Count(string(buf[:n]), "synctest bubble "+string(own[1])+"]")
		}
	}
}
