package coretest

import (
	"context"
	"sync"

	"github.com/coreservice/coreservice/core"
)

// HostUnit is a unit that runs nothing and keeps the Host it was launched
// with, so that a test can act as one of its service's units
// (Host.SetStatus, Host.Acquire). Pass it to core.NewService.
type HostUnit struct {
	name string
	mu   sync.Mutex
	h    *core.Host
}

// NewHostUnit returns a HostUnit named name.
func NewHostUnit(name string) *HostUnit { return &HostUnit{name: name} }

// ApplyTo registers the unit.
func (u *HostUnit) ApplyTo(c *core.Config) { c.AddUnit(u) }

// Name returns the unit's name.
func (u *HostUnit) Name() string { return u.name }

// Launch keeps h.
func (u *HostUnit) Launch(_ context.Context, h *core.Host) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.h = h
	return nil
}

// Host returns the Host of the last launch, or nil before one.
func (u *HostUnit) Host() *core.Host {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.h
}
