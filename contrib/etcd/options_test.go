package etcd_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/coreservice/coreservice/contrib/etcd"
	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/leader"
	"github.com/coreservice/coreservice/task"
)

// Bad settings are errors from Validate (and Campaign) that match
// core.ErrInvalidOption and name what is wrong.
func TestValidateRejectsBadSettings(t *testing.T) {
	// A client that never connects: New does not dial.
	client, err := clientv3.New(clientv3.Config{Endpoints: []string{"127.0.0.1:1"}})
	if err != nil {
		t.Fatalf("clientv3.New: %v", err)
	}
	t.Cleanup(func() { _ = client.Close() })

	tests := []struct {
		name   string
		client *clientv3.Client
		key    string
		opts   []etcd.Option
		want   string
	}{
		{"TTL 0", client, "k", []etcd.Option{etcd.TTL(0)}, "etcd.TTL(0s): TTL must be positive"},
		{"TTL -1s", client, "k", []etcd.Option{etcd.TTL(-time.Second)}, "etcd.TTL(-1s): TTL must be positive"},
		{"TTL 1500ms", client, "k", []etcd.Option{etcd.TTL(1500 * time.Millisecond)}, "etcd.TTL(1.5s): etcd lease TTLs are whole seconds"},
		{"TTL below minimum", client, "k", []etcd.Option{etcd.TTL(time.Second)}, "etcd.TTL(1s): below etcd's minimum lease TTL 2s"},
		{"empty key", client, "", nil, "election key is empty"},
		{"nil client", nil, "k", nil, "client is nil"},
		{"nil option", client, "k", []etcd.Option{nil}, "option 0 is nil"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := etcd.NewElector(tt.client, tt.key, tt.opts...)
			err := e.Validate()
			if !errors.Is(err, core.ErrInvalidOption) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate: got %v, want an ErrInvalidOption containing %q", err, tt.want)
			}
			if _, cerr := e.Campaign(context.Background()); !errors.Is(cerr, core.ErrInvalidOption) {
				t.Fatalf("Campaign: got %v, want ErrInvalidOption", cerr)
			}
		})
	}
}

// Valid settings, the defaults included, pass Validate; options print.
func TestValidateAcceptsGoodSettings(t *testing.T) {
	client, err := clientv3.New(clientv3.Config{Endpoints: []string{"127.0.0.1:1"}})
	if err != nil {
		t.Fatalf("clientv3.New: %v", err)
	}
	t.Cleanup(func() { _ = client.Close() })
	for _, opts := range [][]etcd.Option{nil, {etcd.TTL(etcd.MinTTL)}, {etcd.TTL(30 * time.Second), etcd.Value("")}} {
		if err := etcd.NewElector(client, "k", opts...).Validate(); err != nil {
			t.Errorf("Validate with %v: got %v, want nil", opts, err)
		}
	}
	if got, want := etcd.TTL(3*time.Second).String(), "etcd.TTL(3s)"; got != want {
		t.Errorf("TTL String: got %q, want %q", got, want)
	}
	if got, want := etcd.Value("a b").String(), `etcd.Value("a b")`; got != want {
		t.Errorf("Value String: got %q, want %q", got, want)
	}
}

// The bad input reaches the service's Start as an invalid option
// naming the task or the requirement, the service, and the setting, before
// anything starts; through task.Leader and through leader.Service.
func TestBadSettingsFailTheServicesStart(t *testing.T) {
	client, err := clientv3.New(clientv3.Config{Endpoints: []string{"127.0.0.1:1"}})
	if err != nil {
		t.Fatalf("clientv3.New: %v", err)
	}
	t.Cleanup(func() { _ = client.Close() })
	var nilElector *etcd.Elector
	cases := []struct {
		name string
		e    leader.Elector
		want string
	}{
		{"TTL 0", etcd.NewElector(client, "k", etcd.TTL(0)), "etcd.TTL(0s): TTL must be positive"},
		{"TTL below minimum", etcd.NewElector(client, "k", etcd.TTL(time.Second)), "below etcd's minimum lease TTL 2s"},
		{"empty key", etcd.NewElector(client, ""), "election key is empty"},
		{"nil elector", nilElector, "nil leader.Elector"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, opt := range []core.Option{
				task.Func("report", func(context.Context) error { return nil }, task.Leader(tc.e)),
				leader.Service(tc.e, func(context.Context) (*core.Base, error) { return core.NewService(), nil }, leader.Name("mailer")),
			} {
				svc := core.NewService(core.Name("api"), core.Logger(slog.New(slog.DiscardHandler)), opt)
				err := svc.Start(t.Context())
				var se *core.StartupError
				if !errors.As(err, &se) || !errors.Is(err, core.ErrInvalidOption) || !strings.Contains(err.Error(), tc.want) ||
					!strings.Contains(err.Error(), "api") {
					t.Errorf("Start with %v: got %v, want a *StartupError of api, an invalid option with %q", opt, err, tc.want)
				}
			}
		})
	}
}
