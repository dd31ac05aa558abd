package store_test

import (
	"strings"
	"testing"

	"github.com/classbot/classbot/store"
)

func TestHTMLPageSections(t *testing.T) {
	got := parseNotes(t, "course-page.html")
	want := []struct{ citation, text string }{
		{"course-page.html › CS 101 – Syllabus", "Welcome to CS 101, Fall 2026."},
		{"course-page.html › Staff", "Instructor: Ada Lovelace, office hours Tuesdays 2–4pm in room 204.\n- TA: Grace Hopper\n- TA: Alan Turing"},
		{"course-page.html › Grading", "Part | Weight\nHomework | 40%\nFinal exam | 60%"},
		{"course-page.html › Grading › Late work", "Late work loses 10% per day."},
		{"course-page.html › Setup", "pip install numpy\n  python -m venv .venv\n© 2026 CS 101 staff"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d sections, want %d:\n%s", len(got), len(want), noteAllText(got))
	}
	for i, w := range want {
		if got[i].Citation() != w.citation || strings.ReplaceAll(got[i].Text, "\u00a0", " ") != w.text {
			t.Errorf("section %d: %s\n%q\nwant %s\n%q", i, got[i].Citation(), got[i].Text, w.citation, w.text)
		}
	}
	text := noteAllText(got)
	for _, gone := range []string{"font-family", "analytics", "NavScheduleLink", "Old section", "Room 101", "Enable JavaScript", "<"} {
		if strings.Contains(text, gone) {
			t.Errorf("%q from a script, style, nav, comment or tag is indexed:\n%s", gone, text)
		}
	}
}

func TestHTMLTitleAndOnlyH1(t *testing.T) {
	// A page whose first heading is its only h1: the h1 is its title, as
	// in Markdown; the <title> heads the text above it.
	got := store.SplitSections("week1.html", "<title>Site</title><p>top</p><h1>Week 1</h1><p>intro</p><h2>Lab</h2><p>bring a laptop</p>")
	if c := strings.Join(noteCitations(got), "; "); c != "week1.html › Site; week1.html › Week 1; week1.html › Lab" {
		t.Errorf("citations %q", c)
	}
	// Unclosed tags and bad markup still give the text.
	got = store.SplitSections("bad.htm", "<h2>Rules<p>No phones<td>in exams")
	if text := noteAllText(got); !strings.Contains(text, "No phones") || !strings.Contains(text, "in exams") {
		t.Errorf("bad markup:\n%s", text)
	}
}

func TestHTMLHeadingTooLong(t *testing.T) {
	page := "<h2>" + strings.Repeat("<b>word</b> ", 400) + "</h2><p>x</p>"
	if _, err := store.ParseCourseFile("page.html", page); err == nil || !strings.Contains(err.Error(), "longer than 300 characters") {
		t.Errorf("ParseCourseFile: %v", err)
	}
	got := store.SplitSections("page.html", page)
	if len(got) != 1 || len([]rune(got[0].Heading)) > store.MaxHeadingChars {
		t.Errorf("SplitSections: %+v", got)
	}
}

func TestHTMLTextBeforeCodeIsKept(t *testing.T) {
	got := store.SplitSections("x.html", "<h2>Run</h2>Type this: <pre>  make test\n  make run</pre>then wait.")
	if len(got) != 1 || got[0].Text != "Type this:\n  make test\n  make run\nthen wait." {
		t.Errorf("%+v", got)
	}
}

func BenchmarkParseHTMLInlineTags(b *testing.B) {
	page := strings.Repeat("<b>a</b> ", (8<<20)/9)
	b.ReportAllocs()
	b.SetBytes(int64(len(page)))
	for b.Loop() {
		if _, err := store.ParseCourseFile("blob.html", page); err != nil {
			b.Fatal(err)
		}
	}
}
