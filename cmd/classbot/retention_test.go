package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/classbot/classbot/internal/pgtest"
)

// serve purges ledger rows older than INTERACTIONS_RETENTION at start, and
// keeps the young ones; the store's group commit shows in /metrics.
func TestServePurgesOldLedgerRows(t *testing.T) {
	var out, errOut lockedBuffer
	if err := run(t.Context(), []string{"classbot", "migrate"}, envOf(map[string]string{"DATABASE_URL": testDatabaseURL}), strings.NewReader(""), &out, &errOut); err != nil {
		t.Fatal(err)
	}
	// Fresh ids, so the test can run again against the same database.
	oldID, youngID := fmt.Sprintf("retention-old-%d", time.Now().UnixNano()), fmt.Sprintf("retention-young-%d", time.Now().UnixNano())
	var ignored string
	old, young := time.Now().Add(-3*time.Hour), time.Now().Add(-time.Minute)
	pgtest.QueryRow(t, testDatabaseURL, `
INSERT INTO interactions (platform, id, command, mode, received_at, outcome)
VALUES ('console', $1, 'ask', 'async', $2, 'ok'),
       ('console', $3, 'ask', 'async', $4, 'ok')
RETURNING id`, []any{oldID, old, youngID, young}, &ignored)

	s := startServe(t, map[string]string{"DATABASE_URL": testDatabaseURL, "INTERACTIONS_RETENTION": "2h"})
	deadline := time.Now().Add(20 * time.Second)
	for {
		var n int
		pgtest.QueryRow(t, testDatabaseURL, `SELECT count(*) FROM interactions WHERE id = $1`, []any{oldID}, &n)
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the row older than INTERACTIONS_RETENTION was not purged within 20s of start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	var n int
	pgtest.QueryRow(t, testDatabaseURL, `SELECT count(*) FROM interactions WHERE id = $1`, []any{youngID}, &n)
	if n != 1 {
		t.Fatal("a row younger than INTERACTIONS_RETENTION was purged")
	}
	m := getBody(t, s.MetricsURL+"/metrics")
	for _, want := range []string{"classbot_ledger_purged_rows_total", "classbot_store_batch_rows_bucket", "classbot_store_commit_seconds_bucket"} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestRetentionMustBeADuration(t *testing.T) {
	_, err := loadConfig(envOf(map[string]string{"INTERACTIONS_RETENTION": "a month"}))
	if err == nil || !strings.Contains(err.Error(), "INTERACTIONS_RETENTION") {
		t.Fatalf("loadConfig = %v, want an error naming INTERACTIONS_RETENTION", err)
	}
}
