package values_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/coreservice/coreservice/internal/values"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type uncomparable []int

func TestIsNil(t *testing.T) {
	var p *int
	var f func()
	var e error
	for _, tc := range []struct {
		v    any
		want bool
	}{{nil, true}, {p, true}, {f, true}, {e, true}, {map[int]int(nil), true}, {new(int), false}, {0, false}, {"", false}} {
		if got := values.IsNil(tc.v); got != tc.want {
			t.Errorf("IsNil(%#v): got %v, want %v", tc.v, got, tc.want)
		}
	}
}

func TestSame(t *testing.T) {
	p := new(int)
	u := uncomparable{1}
	for _, tc := range []struct {
		a, b any
		want bool
	}{{p, p, true}, {p, new(int), false}, {nil, nil, true}, {p, nil, false}, {1, 1, true}, {1, int64(1), false}, {u, u, false}} {
		if got := values.Same(tc.a, tc.b); got != tc.want {
			t.Errorf("Same(%#v, %#v): got %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}
