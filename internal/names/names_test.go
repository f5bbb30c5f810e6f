package names_test

import (
	"errors"
	"testing"

	"go.uber.org/goleak"

	"github.com/coreservice/coreservice/internal/names"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestCheckAcceptsGraphicNamesWithoutSlash(t *testing.T) {
	for _, name := range []string{"api", "main.main#1", "lazy *store.Postgres", "db-1_x:y", "café", "\uFFFD", "a b"} {
		if err := names.Check(name); err != nil {
			t.Errorf("Check(%q): got %v, want nil", name, err)
		}
	}
}

func TestCheckRejectsSlashControlAndInvalidUTF8(t *testing.T) {
	for _, name := range []string{"", "a/b", "/", "a\nb", "a\tb", "a\rb", "\x00", "a\x7fb", "\u0085", "a\u2028b",
		"a\u202eb", "a\xffb", "\xc3"} {
		if err := names.Check(name); !errors.Is(err, names.ErrInvalid) {
			t.Errorf("Check(%q): got %v, want ErrInvalid", name, err)
		}
	}
}
