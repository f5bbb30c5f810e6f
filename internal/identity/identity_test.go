package identity_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/internal/identity"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type store struct{ *core.Base }
type deeper struct{ *store }
type byValue struct {
	core.Base
	_ int
}
type uncomparable struct {
	*core.Base
	_ []int // makes the type uncomparable
}

func TestOfIsTheBaseWhateverTheType(t *testing.T) {
	b := core.NewService(core.Name("b"))
	s := &store{b}
	for name, v := range map[string]any{"*store": s, "store": *s, "deeper": deeper{s}, "uncomparable": uncomparable{Base: b}} {
		if identity.Of(v) != identity.Of(b) {
			t.Errorf("Of(%s) != Of(*core.Base): want one service", name)
		}
	}
	v := &byValue{}
	if identity.Of(v) != identity.Of(&v.Base) {
		t.Error("Of(*byValue) != Of(&v.Base): want one service")
	}
	if identity.Of(core.NewService()) == identity.Of(b) {
		t.Error("two Bases have one key, want two")
	}
}

func TestOfNeverPanics(t *testing.T) {
	u := uncomparable{}
	for _, v := range []any{nil, store{}, &store{}, deeper{}, (*core.Base)(nil), 42, u} {
		_ = identity.Of(v)
	}
	if identity.Of(u) == identity.Of(u) {
		t.Error("an uncomparable value without a Base got a shared key, want one of its own")
	}
	if identity.Of(store{}) != identity.Of(store{}) {
		t.Error("equal comparable values: want one key")
	}
}
