package core_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/internal/coretest"
)

type promoted struct{ *core.Base }

type overriding struct{ *core.Base }

func (o *overriding) Healthcheck(context.Context) error { return errors.New("custom") }

type valueOverriding struct{ *core.Base }

func (valueOverriding) Healthcheck(context.Context) error { return nil }

type nested struct{ overriding } // promotes overriding's own method

type deepPromoted struct{ promoted }

type baseByValue struct{ core.Base }

// A type embedding *Base whose Healthcheck is its own, declared by it or
// by a type it embeds above the *Base, is an invalid service naming the
// type and the way out; Base's own Healthcheck, promoted at any depth, and
// a service not built on Base are fine.
func TestValidateHealthcheckRejectsOwnMethod(t *testing.T) {
	b := func() *core.Base { return core.NewService(core.Name("api"), core.Logger(coretest.Quiet())) }
	for _, tc := range []struct {
		svc  core.Service
		want string // "" : valid
	}{
		{b(), ""},
		{&promoted{b()}, ""},
		{&deepPromoted{promoted{b()}}, ""},
		{&baseByValue{}, ""},
		{&overriding{b()}, "core_test.overriding's own"},
		{valueOverriding{b()}, "core_test.valueOverriding's own"},
		{&valueOverriding{b()}, "core_test.valueOverriding's own"},
		{&nested{overriding{b()}}, "core_test.overriding's own"},
		{&overriding{}, "*core_test.overriding's own"}, // a nil *Base: the type alone says so
	} {
		err := core.ValidateHealthcheck(tc.svc)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%T: got %v, want nil", tc.svc, err)
		case tc.want != "" && (!errors.Is(err, core.ErrInvalidOption) || !strings.Contains(err.Error(), tc.want) ||
			!strings.Contains(err.Error(), "health.Check")):
			t.Errorf("%T: got %v, want ErrInvalidOption saying %q and pointing to health.Check", tc.svc, err, tc.want)
		}
	}
}
