package core_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/internal/coretest"
)

// BenchmarkStartStop measures one Start and Stop of a service: alone, with
// independent requirements, and at the root of a chain of requirements.
func BenchmarkStartStop(b *testing.B) {
	ctx := context.Background()
	build := map[string]func() *core.Base{
		"alone": func() *core.Base { return core.NewService(core.Logger(coretest.Quiet())) },
		"10-siblings": func() *core.Base {
			opts := []core.Option{core.Logger(coretest.Quiet())}
			for range 10 {
				opts = append(opts, requires(core.NewService(core.Logger(coretest.Quiet()))))
			}
			return core.NewService(opts...)
		},
		"chain-of-10": func() *core.Base {
			s := core.NewService(core.Logger(coretest.Quiet()))
			for range 9 {
				s = core.NewService(core.Logger(coretest.Quiet()), requires(s))
			}
			return s
		},
	}
	for _, name := range []string{"alone", "10-siblings", "chain-of-10"} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				s := build[name]()
				if err := s.Start(ctx); err != nil {
					b.Fatal(err)
				}
				if err := s.Stop(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkHealthcheck measures Healthcheck of a running service with n checks.
func BenchmarkHealthcheck(b *testing.B) {
	for _, n := range []int{0, 10} {
		b.Run(fmt.Sprintf("checks-%d", n), func(b *testing.B) {
			opts := []core.Option{core.Logger(coretest.Quiet())}
			for i := range n {
				opts = append(opts, &check{name: fmt.Sprint(i), fn: okCheck})
			}
			s := core.NewService(opts...)
			if err := s.Start(context.Background()); err != nil {
				b.Fatal(err)
			}
			defer s.Stop(context.Background())
			b.ReportAllocs()
			for b.Loop() {
				if err := s.Healthcheck(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
