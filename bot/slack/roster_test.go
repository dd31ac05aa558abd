package slack_test

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/classbot/classbot/bot"
	"github.com/classbot/classbot/bot/slack/slacktest"
	"github.com/classbot/classbot/store"
)

const (
	teacher = "UTEACHER01"  // on the fixture's teacher list
	student = "U0A1B2C3D4E" // user_id in the recordings
)

func seedTeam(t *testing.T, s *store.Memory, n int) {
	t.Helper()
	for i := range n {
		name := fmt.Sprintf("Student %03d", i)
		if i == 0 {
			name = "=HYPERLINK(\"http://evil.example\",\"click\")"
		}
		if _, err := s.UpsertRegistration(t.Context(), store.Registration{Platform: bot.PlatformSlack, Workspace: team,
			User: fmt.Sprintf("U%08d", i), Channel: fmt.Sprintf("C%d", i%3), Name: name, Email: fmt.Sprintf("s%d@uni.example", i)}); err != nil {
			t.Fatal(err)
		}
	}
}

// visibleText waits until trigger's response_url shows a message
// containing want, and returns all that is visible, unescaped.
func (f *fixture) visibleText(trigger, want string) string {
	f.t.Helper()
	var text string
	err := f.slack.Wait(wait, func() bool {
		var b strings.Builder
		for _, m := range f.slack.Visible(trigger) {
			b.WriteString(unescape(m.Text) + "\n")
		}
		text = b.String()
		return strings.Contains(text, want)
	})
	if err != nil {
		f.t.Fatalf("no %q at the response_url; visible:\n%s", want, text)
	}
	return text
}

// A teacher's /roster: the summary at the response_url, the CSV of all
// 300 students shared into the teacher's direct message through the
// upload API, never the class channel.
func TestSlackRosterUploadsToTheTeachersDM(t *testing.T) {
	f := setup(t, options{mode: bot.ModeAsync, open: true, botToken: botToken, teachers: []string{teacher}})
	seedTeam(t, f.store, 300)
	start := time.Now()
	status, body := f.post(f.command(registerForm, "roster-1", map[string]string{"command": "/roster", "text": "", "user_id": teacher}))
	if status != http.StatusOK || decode(t, body).ResponseType != "ephemeral" {
		t.Fatalf("%d %s", status, body)
	}
	text := f.visibleText("roster-1", "direct message")
	var files []slacktest.File
	if err := f.slack.Wait(wait, func() bool { files = f.slack.Files(); return len(files) == 1 }); err != nil {
		t.Fatal("no file shared")
	}
	t.Logf("300 students: CSV shared %s after the command", time.Since(start))
	file := files[0]
	if file.Channel != slacktest.IMChannel(teacher) || file.Name != bot.RosterFileName || file.Declared != len(file.Data) {
		t.Fatalf("file %s to %q, declared %d of %d bytes; want roster.csv in the teacher's DM", file.Name, file.Channel, file.Declared, len(file.Data))
	}
	rows, err := csv.NewReader(bytes.NewReader(file.Data)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 301 || rows[1][0] != "'=HYPERLINK(\"http://evil.example\",\"click\")" {
		t.Fatalf("%d rows; first name %q", len(rows), rows[1][0])
	}
	if !strings.Contains(text, "300 students registered here") || strings.Contains(text, "name,email") {
		t.Fatalf("answer:\n%s", text)
	}
	for _, m := range f.slack.Visible("roster-1") {
		if m.ResponseType != "ephemeral" {
			t.Fatalf("a roster message is %q", m.ResponseType)
		}
	}
	open := f.slack.APICalls("conversations.open")
	if len(open) != 1 || open[0].Form.Get("users") != teacher {
		t.Fatalf("conversations.open calls %+v", open)
	}
	for _, c := range f.slack.Calls() {
		if c.Form != nil && c.Form.Get("channel_id") == channel || c.Form.Get("channel") == channel {
			t.Fatalf("%s went to the class channel", c.Path)
		}
	}
}

// Without files:write (or without a bot token) the first 50 rows come
// inline, with how to get the rest.
func TestSlackRosterInlineFallback(t *testing.T) {
	for _, tc := range []struct {
		name, token, note string
		scope             bool
	}{
		{"no files:write", botToken, "needs the files:write and im:write scopes", true},
		{"no bot token", "", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := setup(t, options{mode: bot.ModeAsync, open: true, botToken: tc.token, teachers: []string{teacher}})
			if tc.scope {
				f.slack.RemoveScope("files:write")
			}
			seedTeam(t, f.store, 80)
			f.post(f.command(registerForm, "roster-2", map[string]string{"command": "/roster", "text": "", "user_id": teacher}))
			text := f.visibleText("roster-2", "classbot roster export")
			if tc.note != "" && !strings.Contains(text, tc.note) {
				f.visibleText("roster-2", tc.note)
			}
			if len(f.slack.Files()) != 0 {
				t.Fatal("a file was shared")
			}
			start := strings.Index(text, "name,email,channel")
			end := strings.Index(text, "…and 30 more")
			if start < 0 || end < 0 {
				t.Fatalf("no inline CSV:\n%s", text)
			}
			rows, err := csv.NewReader(strings.NewReader(text[start:end])).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != 51 || rows[1][0] != "'=HYPERLINK(\"http://evil.example\",\"click\")" {
				t.Fatalf("%d inline rows, first %q", len(rows), rows[1])
			}
			if !strings.Contains(text, "classbot roster export --platform slack --workspace "+team) {
				t.Fatalf("no export hint:\n%s", text)
			}
		})
	}
}

// A student's /roster is refused in the immediate answer, whatever the
// text claims; nothing about others is sent anywhere.
func TestSlackRosterRefusesStudents(t *testing.T) {
	f := setup(t, options{mode: bot.ModeAsync, open: true, botToken: botToken, teachers: []string{teacher}})
	seedTeam(t, f.store, 5)
	for i, text := range []string{"", teacher, "user_id=" + teacher} {
		trigger := fmt.Sprintf("roster-student-%d", i)
		status, body := f.post(f.command(registerForm, trigger, map[string]string{"command": "/roster", "text": text}))
		m := decode(t, body)
		if status != http.StatusOK || m.ResponseType != "ephemeral" || !strings.Contains(m.Text, "only the class") {
			t.Fatalf("%d %s", status, body)
		}
		if strings.Contains(m.Text, "Student") || strings.Contains(m.Text, "uni.example") {
			t.Fatalf("refusal reveals the roster: %s", body)
		}
	}
	f.shutdown()
	if n := len(f.slack.Files()); n != 0 || len(f.slack.APICalls("conversations.open")) != 0 || len(f.slack.Posts("roster-student-0")) != 0 {
		t.Fatalf("a student's /roster made calls: %d files", n)
	}
}

// Socket Mode in sync mode: the roster's summary is the envelope's
// acknowledgement and the file is in the teacher's DM.
func TestSlackSocketModeRoster(t *testing.T) {
	f := setup(t, options{mode: bot.ModeSync, open: true, botToken: botToken, appToken: appToken, teachers: []string{teacher}})
	seedTeam(t, f.store, 3)
	f.runSocket()
	env := f.envelope(registerForm, "roster-socket", map[string]string{"command": "/roster", "text": "", "user_id": teacher})
	ack, err := f.slack.WaitAck(wait, env)
	if err != nil {
		t.Fatal(err)
	}
	if p := ackPayload(t, ack); p.ResponseType != "ephemeral" || !strings.Contains(p.Text, "3 students registered here") || !strings.Contains(p.Text, "direct message") {
		t.Fatalf("ack %s", ack.Payload)
	}
	if files := f.slack.Files(); len(files) != 1 || files[0].Channel != slacktest.IMChannel(teacher) {
		t.Fatalf("files %+v", files)
	}
}

// A queue worker shares the file once: a second attempt of the command
// (same PostLog) finds it recorded and replaces the answer only.
func TestSlackReopenedFollowUpSharesTheFileOnce(t *testing.T) {
	w := setupWorker(t, botToken)
	log := &memPostLog{}
	rep := bot.Reply{Text: "3 students registered here.", Ephemeral: true,
		File: &bot.File{Name: bot.RosterFileName, Data: []byte("name,email,channel,registered_at,updated_at\n"), Inline: "INLINE"}}
	for attempt := 1; attempt <= 2; attempt++ {
		r := w.reopen("queued-roster")
		r.(bot.PostLogger).UsePostLog(log)
		if err := r.FollowUp(t.Context(), rep); err != nil {
			t.Fatalf("attempt %d: %v", attempt, err)
		}
	}
	files := w.slack.Files()
	if len(files) != 1 || string(files[0].Data) != string(rep.File.Data) {
		t.Fatalf("%d files shared, want 1", len(files))
	}
	v := w.slack.Visible("queued-roster")
	if len(v) != 1 || !strings.Contains(v[0].Text, "direct message") || strings.Contains(v[0].Text, "INLINE") {
		t.Fatalf("visible %+v", v)
	}
}
