package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/classbot/classbot/store"
)

type rosterStore interface {
	UpsertRegistration(ctx context.Context, r store.Registration) (bool, error)
	EachRegistration(ctx context.Context, f store.RosterFilter, fn func(store.Registration) error) error
}

func TestEachRegistrationFiltersAndOrders(t *testing.T) {
	for name, open := range map[string]func(t *testing.T) rosterStore{
		"postgres": func(t *testing.T) rosterStore { return openPostgres(t) },
		"memory":   func(*testing.T) rosterStore { return store.NewMemory() },
	} {
		t.Run(name, func(t *testing.T) {
			s := open(t)
			for _, r := range []store.Registration{
				{Platform: "slack", Workspace: "T1", User: "U1", Channel: "C1", Name: "Ada", Email: "ada@x.org"},
				{Platform: "slack", Workspace: "T1", User: "U2", Channel: "C2", Name: "Grace", Email: "grace@x.org"},
				{Platform: "slack", Workspace: "T2", User: "U3", Channel: "C1", Name: "Linus", Email: "linus@x.org"},
				{Platform: "discord", Workspace: "T1", User: "U1", Channel: "C1", Name: "Ken", Email: "ken@x.org"},
			} {
				if _, err := s.UpsertRegistration(t.Context(), r); err != nil {
					t.Fatal(err)
				}
			}
			list := func(f store.RosterFilter) string {
				var names []string
				if err := s.EachRegistration(t.Context(), f, func(r store.Registration) error {
					if r.Email == "" || r.CreatedAt.IsZero() || r.UpdatedAt.IsZero() {
						t.Errorf("incomplete row %+v", r)
					}
					names = append(names, r.Name)
					return nil
				}); err != nil {
					t.Fatal(err)
				}
				return strings.Join(names, ",")
			}
			for _, tc := range []struct {
				f    store.RosterFilter
				want string
			}{
				{store.RosterFilter{}, "Ada,Grace,Linus,Ken"},
				{store.RosterFilter{Platform: "slack", Workspace: "T1"}, "Ada,Grace"},
				{store.RosterFilter{Workspace: "T1", Channel: "C1"}, "Ada,Ken"},
				{store.RosterFilter{Platform: "discord"}, "Ken"},
				{store.RosterFilter{Workspace: "nope"}, ""},
			} {
				if got := list(tc.f); got != tc.want {
					t.Errorf("%+v: %q, want %q", tc.f, got, tc.want)
				}
			}
			stop := errors.New("stop")
			n := 0
			err := s.EachRegistration(t.Context(), store.RosterFilter{}, func(store.Registration) error { n++; return stop })
			if !errors.Is(err, stop) || n != 1 {
				t.Errorf("fn's error: %v after %d rows, want it after 1", err, n)
			}
		})
	}
}
