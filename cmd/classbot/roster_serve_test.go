package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/classbot/classbot/bot/discord/discordtest"
	"github.com/classbot/classbot/bot/slack/slacktest"
)

// The whole program, PostgreSQL holding 300 students, in async and queue
// modes: a Discord teacher (Manage Server in the signed payload) gets the
// CSV attached to the edit of the deferred reply; a student is refused.
func TestServeDiscordRoster(t *testing.T) {
	for _, mode := range []string{"async", "queue"} {
		t.Run(mode, func(t *testing.T) {
			u, pg := rosterDB(t)
			copyStudents(t, pg, "discord", discordGuildID, 300)
			d := startDiscordServe(t, map[string]string{"HANDLER_MODE": mode, "DATABASE_URL": u})

			id := newID()
			body, err := discordtest.Interaction(discordPayload, id, "token-"+id, "roster", nil)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			status, resp := d.post(t, d.signed(t, body, time.Now()))
			if status != http.StatusOK || !strings.Contains(string(resp), `"type":5`) {
				t.Fatalf("/roster = %d %s", status, resp)
			}
			edit, err := d.discord.WaitRequest(discordWait, func(r discordtest.Request) bool {
				return r.Method == http.MethodPatch && r.Path == "webhooks/"+discordAppID+"/token-"+id+"/messages/@original"
			})
			if err != nil {
				t.Fatalf("no edit: %v\nstderr:\n%s", err, d.Stderr)
			}
			t.Logf("%s: 300 students from PostgreSQL, CSV at the stand-in %s after the command", mode, time.Since(start))
			if len(edit.Files) != 1 {
				t.Fatalf("edit has %d files", len(edit.Files))
			}
			rows, err := csv.NewReader(bytes.NewReader(edit.Files[0].Data)).ReadAll()
			if err != nil || len(rows) != 301 {
				t.Fatalf("%d rows, %v", len(rows), err)
			}
			var msg struct{ Content string }
			_ = edit.JSON(&msg)
			if !strings.Contains(msg.Content, "300 students registered here") {
				t.Fatalf("content %q", msg.Content)
			}

			sid := newID()
			sbody, _ := discordtest.Interaction(discordPayload, sid, "token-"+sid, "roster", map[string]string{"user": "1300000000000000099"})
			var m map[string]any
			_ = json.Unmarshal(sbody, &m)
			m["member"].(map[string]any)["permissions"] = "2048"
			sbody, _ = json.Marshal(m)
			status, resp = d.post(t, d.signed(t, sbody, time.Now()))
			if status != http.StatusOK || !strings.Contains(string(resp), "only the class") || strings.Contains(string(resp), "uni.example") {
				t.Fatalf("student's /roster = %d %s", status, resp)
			}
			if strings.Contains(d.Stderr.String(), "uni.example") {
				t.Fatal("an email reached the logs")
			}
		})
	}
}

// The same on Slack: the teacher listed in TEACHER_USER_IDS gets the file
// in their direct message, in async and queue modes.
func TestServeSlackRoster(t *testing.T) {
	for _, mode := range []string{"async", "queue"} {
		t.Run(mode, func(t *testing.T) {
			u, pg := rosterDB(t)
			copyStudents(t, pg, "slack", "T0A1B2C3D", 300)
			s := startSlackServe(t, map[string]string{"HANDLER_MODE": mode, "DATABASE_URL": u,
				"SLACK_BOT_TOKEN": slackBotToken, "TEACHER_USER_IDS": "UTEACHER01"})
			trigger := "roster-" + mode
			b, err := slacktest.Command(slackPayload, map[string]string{"trigger_id": trigger, "user_id": "UTEACHER01",
				"command": "/roster", "text": "", "response_url": s.slack.ResponseURL(trigger)})
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			if status, resp := s.post(t, slackSecret, time.Now(), b); status != http.StatusOK {
				t.Fatalf("/roster = %d %s", status, resp)
			}
			var files []slacktest.File
			if err := s.slack.Wait(slackWait, func() bool { files = s.slack.Files(); return len(files) == 1 && len(s.slack.Visible(trigger)) > 0 }); err != nil {
				t.Fatalf("no file shared and answer: %v\nstderr:\n%s", err, s.Stderr)
			}
			t.Logf("%s: 300 students from PostgreSQL, CSV shared %s after the command", mode, time.Since(start))
			if files[0].Channel != slacktest.IMChannel("UTEACHER01") {
				t.Fatalf("file shared in %q", files[0].Channel)
			}
			rows, err := csv.NewReader(bytes.NewReader(files[0].Data)).ReadAll()
			if err != nil || len(rows) != 301 {
				t.Fatalf("%d rows, %v", len(rows), err)
			}
			if v := s.slack.Visible(trigger); !strings.Contains(v[len(v)-1].Text, "direct message") {
				t.Fatalf("answer %q", v[len(v)-1].Text)
			}
		})
	}
}

// A teacher's /course reindex re-reads the bound course's folder through
// the real program: a changed file is re-indexed, and the answer says so.
func TestServeSlackCourseReindex(t *testing.T) {
	u, _ := rosterDB(t)
	dir := t.TempDir()
	write := func(text string) {
		if err := os.WriteFile(filepath.Join(dir, "syllabus.md"), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("# Syllabus\n## Grading\nThe exam is 60%.\n")
	env := map[string]string{"DATABASE_URL": u}
	if _, err := runClassbot(t, env, "course", "add", "go101", "--dir", dir); err != nil {
		t.Fatal(err)
	}
	if _, err := runClassbot(t, env, "course", "bind", "go101", "slack", "T0A1B2C3D"); err != nil {
		t.Fatal(err)
	}
	write("# Syllabus\n## Grading\nThe exam is 50%.\n## Late work\nTen percent a day.\n")
	s := startSlackServe(t, map[string]string{"HANDLER_MODE": "sync", "DATABASE_URL": u, "TEACHER_USER_IDS": "UTEACHER01"})
	send := func(trigger, user, text string) string {
		b, err := slacktest.Command(slackPayload, map[string]string{"trigger_id": trigger, "user_id": user,
			"command": "/course", "text": text, "response_url": s.slack.ResponseURL(trigger)})
		if err != nil {
			t.Fatal(err)
		}
		status, resp := s.post(t, slackSecret, time.Now(), b)
		if status != http.StatusOK {
			t.Fatalf("/course %s = %d %s", text, status, resp)
		}
		return decodeSlack(t, resp).Text
	}
	if got := send("reindex-student", "U0STUDENT9", "reindex"); !strings.Contains(got, "only the class") {
		t.Fatalf("student: %q", got)
	}
	if got := send("reindex-teacher", "UTEACHER01", "reindex"); !strings.Contains(got, "Re-indexed &quot;go101&quot;: 1 files, 2 sections: 1 indexed") &&
		!strings.Contains(got, `Re-indexed "go101": 1 files, 2 sections: 1 indexed`) {
		t.Fatalf("teacher: %q", got)
	}
	if got := send("course-student", "U0STUDENT9", ""); !strings.Contains(got, `"go101": 1 file, 2 sections, indexed`) {
		t.Fatalf("student's /course: %q", got)
	}
}
