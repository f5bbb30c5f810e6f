package core_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/internal/coretest"
)

// validatedUnit is a unit that is also a core.UnitValidator.
type validatedUnit struct {
	unit
	validate func() error
}

func (u *validatedUnit) ApplyTo(c *core.Config) { c.AddUnit(u) }
func (u *validatedUnit) Validate() error        { return u.validate() }

func TestUnitValidatorRunsBeforeAnythingStarts(t *testing.T) {
	errBad := errors.New("bad setting")
	cases := []struct {
		name     string
		validate func() error
		want     string
	}{
		{"error", func() error { return errBad }, "unit b: bad setting"},
		{"panic", func() error { panic("no validation") }, "unit b: panic: no validation"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := &coretest.Recorder{}
			child := core.NewService(core.Name("child"), core.Logger(coretest.Quiet()), core.OnStart(rec.Hook("child started", nil)))
			a := &unit{name: "unit a", fn: func(context.Context) error { rec.Add("unit a ran"); return nil }}
			b := &validatedUnit{unit: unit{name: "unit b"}, validate: tc.validate}
			svc := core.NewService(core.Name("svc"), core.Logger(coretest.Quiet()), requires(child),
				core.OnStart(rec.Hook("OnStart", nil)), a, b)
			err := svc.Start(t.Context())
			if !errors.Is(err, core.ErrStartup) || !errors.Is(err, core.ErrInvalidOption) {
				t.Fatalf("Start: got %v, want ErrStartup and ErrInvalidOption", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Start: got %q, want it to contain %q", err, tc.want)
			}
			if got := rec.Events(); len(got) != 0 {
				t.Fatalf("ran before the invalid unit was reported: got %q, want nothing", got)
			}
			if got := child.State(); got != core.StateNew {
				t.Fatalf("requirement: got %v, want new", got)
			}
		})
	}
	t.Run("nil", func(t *testing.T) {
		calls := 0
		b := &validatedUnit{unit: unit{name: "unit b"}, validate: func() error { calls++; return nil }}
		svc := core.NewService(core.Name("svc"), core.Logger(coretest.Quiet()), b)
		if err := svc.Start(t.Context()); err != nil {
			t.Fatalf("Start: got %v, want nil", err)
		}
		if err := svc.Stop(context.Background()); err != nil {
			t.Fatalf("Stop: got %v, want nil", err)
		}
		if calls != 1 {
			t.Fatalf("Validate calls: got %d, want 1", calls)
		}
	})
}
