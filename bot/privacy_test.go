package bot_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/classbot/classbot/bot"
	"github.com/classbot/classbot/store"
)

func forgetCmd(platform, text string) bot.Command {
	c := registerCmd(text)
	c.Platform, c.Name = platform, "forget"
	return c
}

// register stores the fixture's student U1 through /register.
func (f *fixture) register(t *testing.T) {
	t.Helper()
	r := newRecorder()
	if err := f.disp.Dispatch(t.Context(), registerCmd("Ada Lovelace ada@example.com"), r); err != nil {
		t.Fatal(err)
	}
	r.answer(t)
}

func (f *fixture) registered(t *testing.T, platform string) bool {
	t.Helper()
	_, err := f.store.GetRegistration(t.Context(), platform, "W1", "U1")
	return err == nil
}

// Only "confirm" (any case) after /forget deletes; anything else explains,
// with the way to confirm of the student's platform.
func TestForgetNeedsConfirm(t *testing.T) {
	tests := []struct {
		platform, text string
		deleted        bool
		want           string
	}{
		{bot.PlatformSlack, "", false, "type /forget confirm"},
		{bot.PlatformSlack, "please", false, "Nothing has been deleted yet"},
		{bot.PlatformDiscord, "", false, "option confirm set to True"},
		{bot.PlatformSlack, "confirm", true, "Done"},
		{bot.PlatformConsole, "  CONFIRM ", true, "Done"},
	}
	for _, tt := range tests {
		t.Run(tt.platform+"/"+tt.text, func(t *testing.T) {
			f := setup(t, bot.Config{Mode: bot.ModeSync})
			reg := registerCmd("Ada Lovelace ada@example.com")
			reg.Platform = tt.platform
			if err := f.disp.Dispatch(t.Context(), reg, newRecorder()); err != nil {
				t.Fatal(err)
			}
			r := newRecorder()
			if err := f.disp.Dispatch(t.Context(), forgetCmd(tt.platform, tt.text), r); err != nil {
				t.Fatal(err)
			}
			ans := r.answer(t)
			if !ans.Ephemeral || !strings.Contains(ans.Text, tt.want) {
				t.Errorf("answer %+v, want an ephemeral one saying %q", ans, tt.want)
			}
			if f.registered(t, tt.platform) == tt.deleted {
				t.Errorf("registration kept: %v, want %v", !tt.deleted, !tt.deleted)
			}
		})
	}
}

// The ledger row of a confirmed /forget never holds the student's id; the
// rows of their earlier commands lose it.
func TestForgetLeavesNoUserInTheLedger(t *testing.T) {
	f := setup(t, bot.Config{Mode: bot.ModeAsync})
	reg := registerCmd("Ada Lovelace ada@example.com")
	r := newRecorder()
	if err := f.disp.Dispatch(t.Context(), reg, r); err != nil {
		t.Fatal(err)
	}
	r.answer(t)
	fc := forgetCmd(bot.PlatformConsole, "confirm")
	r = newRecorder()
	if err := f.disp.Dispatch(t.Context(), fc, r); err != nil {
		t.Fatal(err)
	}
	r.answer(t)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), 5*time.Second)
	defer cancel()
	if err := f.disp.Shutdown(ctx); err != nil { // the ledger rows are finished
		t.Fatal(err)
	}
	for _, id := range []string{reg.InteractionID, fc.InteractionID} {
		in, err := f.store.GetInteraction(t.Context(), bot.PlatformConsole, id)
		if err != nil {
			t.Fatal(err)
		}
		if in.User != store.ForgottenUser {
			t.Errorf("ledger row %s keeps user %q", id, in.User)
		}
	}
}

// A registration typed before /forget whose write comes after it is not
// made, and the student is told why.
func TestRegistrationInFlightAcrossForgetIsNotKept(t *testing.T) {
	f := setup(t, bot.Config{Mode: bot.ModeAsync})
	started, release := make(chan struct{}), make(chan struct{})
	f.store.before = func(ctx context.Context) error {
		close(started)
		<-release
		return nil
	}
	reg := newRecorder()
	if err := f.disp.Dispatch(t.Context(), registerCmd("Ada Lovelace ada@example.com"), reg); err != nil {
		t.Fatal(err)
	}
	<-started
	fr := newRecorder()
	if err := f.disp.Dispatch(t.Context(), forgetCmd(bot.PlatformConsole, "confirm"), fr); err != nil {
		t.Fatal(err)
	}
	fr.answer(t)
	close(release)
	if ans := reg.answer(t); !strings.Contains(ans.Text, "forget you") {
		t.Errorf("registration's answer %q, want it to say it was not kept", ans.Text)
	}
	if f.registered(t, bot.PlatformConsole) {
		t.Error("a registration landed after /forget")
	}
}

// /whoami answers only the student, with their own data.
func TestWhoamiShowsTheStudentsOwnData(t *testing.T) {
	f := setup(t, bot.Config{Mode: bot.ModeSync})
	f.register(t)
	other := registerCmd("Bob Babbage bob@example.com")
	other.User = "U2"
	if err := f.disp.Dispatch(t.Context(), other, newRecorder()); err != nil {
		t.Fatal(err)
	}
	w := registerCmd("")
	w.Name = "whoami"
	r := newRecorder()
	if err := f.disp.Dispatch(t.Context(), w, r); err != nil {
		t.Fatal(err)
	}
	ans := r.answer(t)
	if !ans.Ephemeral || !strings.Contains(ans.Text, "Ada Lovelace (ada@example.com)") || strings.Contains(ans.Text, "Bob") ||
		!strings.Contains(ans.Text, "Remembered /ask questions: none") || !strings.Contains(ans.Text, "log: 2") {
		t.Errorf("/whoami: %+v", ans)
	}
}
