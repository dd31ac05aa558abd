package discord_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/classbot/classbot/bot"
	"github.com/classbot/classbot/bot/discord/discordtest"
	"github.com/classbot/classbot/store"
)

const (
	teacherID = "1300000000000000099" // on the fixture's teacher list
	studentID = "1300000000000000001" // the recorded payload's member
)

// withMember sets the interaction's member id and permissions.
func withMember(t *testing.T, b []byte, user, permissions string) []byte {
	t.Helper()
	return patch(t, b, func(m map[string]any) {
		mem := m["member"].(map[string]any)
		mem["permissions"] = permissions
		mem["user"].(map[string]any)["id"] = user
	})
}

func seedGuild(t *testing.T, s *store.Memory, n int) {
	t.Helper()
	for i := range n {
		name := fmt.Sprintf("Student %03d", i)
		if i == 0 {
			name = "=cmd|' /C calc'!A0"
		}
		if _, err := s.UpsertRegistration(t.Context(), store.Registration{Platform: bot.PlatformDiscord, Workspace: guildID,
			User: fmt.Sprintf("14%017d", i), Channel: fmt.Sprintf("15%017d", i%4), Name: name, Email: fmt.Sprintf("s%d@uni.example", i)}); err != nil {
			t.Fatal(err)
		}
	}
}

// rosterFile returns the CSV attached to req, parsed, after checking the
// message is ephemeral, mentions nobody and lists the attachment.
func rosterFile(t *testing.T, req discordtest.Request) (content string, rows [][]string) {
	t.Helper()
	if len(req.Files) != 1 || req.Files[0].Name != bot.RosterFileName || req.Files[0].Field != "files[0]" || req.Files[0].ContentType != "text/csv" {
		t.Fatalf("%s %s: files %+v, want roster.csv as files[0]", req.Method, req.Path, req.Files)
	}
	if err := discordtest.NoPings(req.Body); err != nil {
		t.Fatal(err)
	}
	var m struct {
		Content     string `json:"content"`
		Attachments []struct {
			ID       string `json:"id"`
			Filename string `json:"filename"`
		} `json:"attachments"`
	}
	if err := req.JSON(&m); err != nil {
		t.Fatalf("payload_json %q: %v", req.Body, err)
	}
	if req.Method == http.MethodPatch && (len(m.Attachments) != 1 || m.Attachments[0].ID != "0" || m.Attachments[0].Filename != bot.RosterFileName) {
		t.Fatalf("edit's attachments %+v: the edit must keep exactly the new file", m.Attachments)
	}
	rows, err := csv.NewReader(bytes.NewReader(req.Files[0].Data)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return m.Content, rows
}

// A teacher's /roster over HTTP interactions: deferred (ephemeral), then
// the edit carries the summary and the CSV of all 300 students as an
// attachment.
func TestDiscordRosterAttachment(t *testing.T) {
	for _, mode := range []bot.Mode{bot.ModeAsync, bot.ModeSync} {
		t.Run(string(mode), func(t *testing.T) {
			f := setup(t, options{mode: mode, open: true, teachers: []string{teacherID}})
			seedGuild(t, f.store, 300)
			id := "1200000000000000700"
			start := time.Now()
			status, body := f.post(interaction(t, id, "roster", nil)) // the recorded member has Manage Server
			if status != http.StatusOK {
				t.Fatalf("status %d", status)
			}
			if r := decodeResponse(t, body); r.Type != 5 || r.Data == nil || r.Data.Flags != 64 {
				t.Fatalf("first response %s, want an ephemeral deferral", body)
			}
			edit, err := f.discord.WaitRequest(wait, isEdit("token-"+id))
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("300 students: CSV at the stand-in %s after the command", time.Since(start))
			content, rows := rosterFile(t, edit)
			if !strings.Contains(content, "300 students registered here") || !strings.Contains(content, "Newest 20:") {
				t.Errorf("content %q", content)
			}
			if len(rows) != 301 || rows[0][1] != "email" {
				t.Fatalf("%d rows, header %v", len(rows), rows[0])
			}
			if rows[1][0] != "'=cmd|' /C calc'!A0" {
				t.Errorf("formula name became %q", rows[1][0])
			}
		})
	}
}

// Through the gateway in sync mode, the type 4 callback itself is
// multipart with the attachment.
func TestDiscordGatewayRosterCallbackHasTheFile(t *testing.T) {
	f := setup(t, options{mode: bot.ModeSync, botToken: "test-bot-token", open: true, teachers: []string{}})
	seedGuild(t, f.store, 3)
	runGateway(t, f)
	waitReady(t, f)
	id := "1200000000000000710"
	f.discord.SendInteraction(json.RawMessage(interaction(t, id, "roster", nil)))
	cb, err := f.discord.WaitRequest(wait, isCallback(id))
	if err != nil {
		t.Fatal(err)
	}
	var resp discordtest.Response
	if err := cb.JSON(&resp); err != nil || resp.Type != 4 || resp.Data == nil || resp.Data.Flags != 64 {
		t.Fatalf("callback %s, want an ephemeral type 4", cb.Body)
	}
	if _, rows := rosterFile(t, cb); len(rows) != 4 {
		t.Fatalf("%d rows", len(rows))
	}
}

// A member without Manage Server and not on TEACHER_USER_IDS is refused,
// whatever the options claim, and learns nothing; a listed teacher
// without the permission is served.
func TestDiscordRosterTeacherCheck(t *testing.T) {
	f := setup(t, options{mode: bot.ModeAsync, open: true, teachers: []string{teacherID}})
	seedGuild(t, f.store, 5)
	forged := map[string]string{"user": teacherID, "teacher": "true", "permissions": "32"}
	for i, body := range [][]byte{
		withMember(t, interaction(t, "1200000000000000720", "roster", nil), studentID, "2048"),
		withMember(t, interaction(t, "1200000000000000721", "roster", forged), studentID, "0"),
	} {
		status, resp := f.post(body)
		r := decodeResponse(t, resp)
		if status != http.StatusOK || r.Type != 4 || r.Data == nil || r.Data.Flags != 64 || !strings.Contains(r.Data.Content, "only the class's teachers") {
			t.Fatalf("student %d: %d %s", i, status, resp)
		}
		if strings.Contains(string(resp), "Student") || strings.Contains(string(resp), "uni.example") {
			t.Fatalf("refusal reveals the roster: %s", resp)
		}
	}
	id := "1200000000000000722"
	status, resp := f.post(withMember(t, interaction(t, id, "roster", nil), teacherID, "2048"))
	if status != http.StatusOK || decodeResponse(t, resp).Type != 5 {
		t.Fatalf("listed teacher: %d %s", status, resp)
	}
	edit, err := f.discord.WaitRequest(wait, isEdit("token-"+id))
	if err != nil {
		t.Fatal(err)
	}
	if _, rows := rosterFile(t, edit); len(rows) != 6 {
		t.Fatalf("%d rows", len(rows))
	}
	f.shutdown()
	for _, r := range f.discord.Requests() {
		if len(r.Files) > 0 && !strings.Contains(r.Path, "token-"+id) {
			t.Errorf("a file went to %s", r.Path)
		}
	}
}

// /course use from a member without Manage Server is refused; from one
// with it, the channel is bound.
func TestDiscordCourseUse(t *testing.T) {
	f := setup(t, options{mode: bot.ModeSync, open: true, teachers: []string{}})
	if _, err := f.store.PutCourse(t.Context(), "go101", ""); err != nil {
		t.Fatal(err)
	}
	cl := store.Class{Platform: bot.PlatformDiscord, Workspace: guildID, Channel: "1100000000000000003"}
	status, resp := f.post(withMember(t, interaction(t, "1200000000000000730", "course", map[string]string{"use": "go101"}), studentID, "2048"))
	if r := decodeResponse(t, resp); status != http.StatusOK || !strings.Contains(r.Data.Content, "only the class's teachers") {
		t.Fatalf("student: %d %s", status, resp)
	}
	if co, err := f.store.CourseFor(t.Context(), cl); err == nil && co.Name == "go101" {
		t.Fatal("a student's /course use bound the channel")
	}
	status, resp = f.post(interaction(t, "1200000000000000731", "course", map[string]string{"use": "go101"}))
	if r := decodeResponse(t, resp); status != http.StatusOK || !strings.Contains(r.Data.Content, `now answers from the course "go101"`) {
		t.Fatalf("teacher: %d %s", status, resp)
	}
	if co, err := f.store.CourseFor(t.Context(), cl); err != nil || co.Name != "go101" {
		t.Fatalf("channel's course %q, %v", co.Name, err)
	}
}

// Teacher-only commands are registered for Manage Server only.
func TestDiscordTeacherCommandsHiddenFromStudents(t *testing.T) {
	f := setup(t, options{botToken: "test-bot-token"})
	if err := f.adapter.RegisterCommands(t.Context()); err != nil {
		t.Fatal(err)
	}
	var cmds []struct {
		Name        string  `json:"name"`
		Permissions *string `json:"default_member_permissions"`
	}
	if err := f.discord.Requests()[0].JSON(&cmds); err != nil {
		t.Fatal(err)
	}
	perms := map[string]string{}
	for _, c := range cmds {
		if c.Permissions != nil {
			perms[c.Name] = *c.Permissions
		}
	}
	if perms["roster"] != "32" || perms["course"] != "" || perms["register"] != "" {
		t.Fatalf("default_member_permissions %v, want roster: 32 only", perms)
	}
}

// A queue worker's FollowUp with a file edits the original with the
// attachment; running it again replaces it (one file stays).
func TestDiscordReopenedFollowUpAttachesTheFile(t *testing.T) {
	w := setupWorker(t, "")
	id := "1200000000000000740"
	r := w.reopen(id)
	rep := bot.Reply{Text: "3 students registered here.", Ephemeral: true,
		File: &bot.File{Name: bot.RosterFileName, Data: []byte("name,email,channel,registered_at,updated_at\n")}}
	for range 2 {
		if err := r.FollowUp(t.Context(), rep); err != nil {
			t.Fatal(err)
		}
	}
	edits, followUps := w.webhookCalls("token-" + id)
	if len(edits) != 2 || len(followUps) != 0 {
		t.Fatalf("%d edits, %d follow-ups", len(edits), len(followUps))
	}
	for _, e := range edits {
		if content, rows := rosterFile(t, e); content != rep.Text || len(rows) != 1 {
			t.Fatalf("edit %q with %d rows", content, len(rows))
		}
	}
}
