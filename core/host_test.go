package core_test

import (
	"context"
	"testing"
	"time"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/internal/coretest"
)

// hostUnit is a unit that keeps the Host its Launch gets.
type hostUnit struct{ host chan *core.Host }

func (u *hostUnit) ApplyTo(c *core.Config) { c.AddUnit(u) }
func (u *hostUnit) Name() string           { return "host unit" }
func (u *hostUnit) Launch(_ context.Context, h *core.Host) error {
	u.host <- h
	return nil
}

func TestHostStopTimeoutIsTheServicesStopTimeout(t *testing.T) {
	cases := []struct {
		name string
		opts []core.Option
		want time.Duration
	}{
		{"default", nil, core.DefaultStopTimeout},
		{"set", []core.Option{core.StopTimeout(1500 * time.Millisecond)}, 1500 * time.Millisecond},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u := &hostUnit{host: make(chan *core.Host, 1)}
			s := core.NewService(append([]core.Option{core.Name("s"), core.Logger(coretest.Quiet()), u}, tc.opts...)...)
			coretest.MustStart(t, s)
			if got := (<-u.host).StopTimeout(); got != tc.want {
				t.Fatalf("Host.StopTimeout: got %v, want %v", got, tc.want)
			}
		})
	}
}
