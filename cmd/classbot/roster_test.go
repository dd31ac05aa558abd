package main

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/classbot/classbot/internal/pgtest"
	"github.com/classbot/classbot/store"
)

func TestConfigTeacherUserIDs(t *testing.T) {
	c, err := loadConfig(envOf(map[string]string{"TEACHER_USER_IDS": " U0A1B2C3D4E, W012AB3CD ,,1300000000000000099 "}))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.TeacherUserIDs, ",") != "U0A1B2C3D4E,W012AB3CD,1300000000000000099" {
		t.Fatalf("TeacherUserIDs %q", c.TeacherUserIDs)
	}
	for _, bad := range []string{"u0a1b2", "ada", "12345", "U0A1B2C3D4E;DROP", "<@U0A1B2C3D4E>"} {
		if _, err := loadConfig(envOf(map[string]string{"TEACHER_USER_IDS": bad})); err == nil || !strings.Contains(err.Error(), "TEACHER_USER_IDS") {
			t.Errorf("TEACHER_USER_IDS=%q: %v, want an error naming it", bad, err)
		}
	}
}

// rosterDB is a database of its own with the schema, and its store.
func rosterDB(t testing.TB) (string, *store.Postgres) {
	t.Helper()
	u, drop, err := pgtest.Create(t.Context(), testDatabaseURL, "classbot_roster")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = drop() })
	pg, err := store.Open(t.Context(), u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pg.Close)
	if err := store.Migrate(t.Context(), pg.Pool()); err != nil {
		t.Fatal(err)
	}
	return u, pg
}

// copyStudents writes n students of one class straight into the table.
func copyStudents(t testing.TB, pg *store.Postgres, platform, workspace string, n int) {
	t.Helper()
	at := time.Date(2026, 9, 1, 8, 0, 0, 0, time.UTC)
	rows := make([][]any, n)
	for i := range rows {
		ts := at.Add(time.Duration(i) * time.Second)
		rows[i] = []any{platform, workspace, fmt.Sprintf("U%07d", i), fmt.Sprintf("C%d", i%10),
			fmt.Sprintf("Student %05d", i), fmt.Sprintf("s%d@uni.example", i), ts, ts}
	}
	if _, err := pg.Pool().CopyFrom(t.Context(), pgx.Identifier{"registrations"},
		[]string{"platform", "workspace", "user_id", "channel", "name", "email", "created_at", "updated_at"}, pgx.CopyFromRows(rows)); err != nil {
		t.Fatal(err)
	}
}

func exportRows(t *testing.T, env map[string]string, args ...string) [][]string {
	t.Helper()
	out, err := runClassbot(t, env, append([]string{"roster", "export"}, args...)...)
	if err != nil {
		t.Fatalf("roster export %q: %v", args, err)
	}
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatalf("output is not CSV: %v\n%s", err, out)
	}
	if strings.Join(rows[0], ",") != "name,email,channel,registered_at,updated_at" {
		t.Fatalf("header %q", rows[0])
	}
	return rows[1:]
}

func TestRosterExportFilters(t *testing.T) {
	u, pg := rosterDB(t)
	env := map[string]string{"DATABASE_URL": u}
	for _, r := range []store.Registration{
		{Platform: "slack", Workspace: "T1", User: "U1", Channel: "C1", Name: "=1+2", Email: "a@x.org"},
		{Platform: "slack", Workspace: "T1", User: "U2", Channel: "C2", Name: "Grace", Email: "g@x.org"},
		{Platform: "slack", Workspace: "T2", User: "U3", Channel: "C1", Name: "Linus", Email: "l@x.org"},
		{Platform: "discord", Workspace: "900000000000000001", User: "1300000000000000001", Channel: "C1", Name: "@Ken", Email: "k@x.org"},
	} {
		if _, err := pg.UpsertRegistration(t.Context(), r); err != nil {
			t.Fatal(err)
		}
	}
	names := func(rows [][]string) string {
		var n []string
		for _, r := range rows {
			n = append(n, r[0])
		}
		return strings.Join(n, ",")
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "'=1+2,Grace,Linus,'@Ken"},
		{[]string{"--platform", "slack"}, "'=1+2,Grace,Linus"},
		{[]string{"--platform", "slack", "--workspace", "T1"}, "'=1+2,Grace"},
		{[]string{"--workspace", "T1", "--channel", "C2"}, "Grace"},
		{[]string{"--channel", "C1", "--platform", "discord"}, "'@Ken"},
		{[]string{"--workspace", "T9"}, ""},
	} {
		if got := names(exportRows(t, env, tc.args...)); got != tc.want {
			t.Errorf("export %q: %q, want %q", tc.args, got, tc.want)
		}
	}
	rows := exportRows(t, env, "--workspace", "T1", "--channel", "C2")
	if rows[0][1] != "g@x.org" || rows[0][2] != "C2" {
		t.Errorf("row %q", rows[0])
	}
	if _, err := time.Parse(time.RFC3339, rows[0][3]); err != nil {
		t.Errorf("registered_at %q: %v", rows[0][3], err)
	}
	var ue *usageError
	if _, err := runClassbot(t, env, "roster", "export", "--platform", "teams"); !errors.As(err, &ue) {
		t.Errorf("--platform teams: %v, want a usage error", err)
	}
	if _, err := runClassbot(t, nil, "roster", "export"); err == nil || !strings.Contains(err.Error(), "DATABASE_URL") {
		t.Errorf("without DATABASE_URL: %v", err)
	}
}

// The export of 10,000 students streams them all; the time is logged
// (the figure in the README comes from BenchmarkRosterExport).
func TestRosterExport10000(t *testing.T) {
	u, pg := rosterDB(t)
	copyStudents(t, pg, "slack", "TBULK", 10000)
	copyStudents(t, pg, "slack", "TOTHER", 10)
	start := time.Now()
	rows := exportRows(t, map[string]string{"DATABASE_URL": u}, "--platform", "slack", "--workspace", "TBULK")
	t.Logf("roster export of %d students: %s", len(rows), time.Since(start))
	if len(rows) != 10000 || rows[0][0] != "Student 00000" || rows[9999][0] != "Student 09999" {
		t.Fatalf("%d rows, first %q", len(rows), rows[0])
	}
}

func BenchmarkRosterExport(b *testing.B) {
	u, pg := rosterDB(b)
	copyStudents(b, pg, "slack", "TBULK", 10000)
	env := envOf(map[string]string{"DATABASE_URL": u})
	for b.Loop() {
		if err := run(b.Context(), []string{"classbot", "roster", "export", "--workspace", "TBULK"}, env, strings.NewReader(""), io.Discard, io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}
