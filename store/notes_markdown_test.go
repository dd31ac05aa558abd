package store_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/classbot/classbot/store"
)

// parseNotes parses a file under testdata/notes as ReadCourse would.
func parseNotes(t *testing.T, name string) []store.Section {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "notes", name))
	if err != nil {
		t.Fatal(err)
	}
	got, err := store.ParseCourseFile(name, string(b))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return got
}

// sectionText is the text of every section with the citation, joined.
func noteSectionText(secs []store.Section, citation string) string {
	var b strings.Builder
	for _, s := range secs {
		if s.Citation() == citation {
			b.WriteString(s.Text + "\n")
		}
	}
	return b.String()
}

func noteAllText(secs []store.Section) string {
	var b strings.Builder
	for _, s := range secs {
		b.WriteString(s.Citation() + "\n" + s.Text + "\n")
	}
	return b.String()
}

func noteCitations(secs []store.Section) []string {
	var out []string
	for _, s := range secs {
		if len(out) == 0 || out[len(out)-1] != s.Citation() {
			out = append(out, s.Citation())
		}
	}
	return out
}

func TestMarkdownYAMLFrontMatter(t *testing.T) {
	got := parseNotes(t, "cs4530-staffer-bell.md")
	// The name stands for a title; the office hours, role, email and
	// section are searchable ("prof bell's office hours" finds the page
	// through "Instructor"); the rest (photo, website...) is site
	// machinery.
	if c := noteCitations(got); len(c) != 1 || c[0] != "cs4530-staffer-bell.md › Jonathan Bell" {
		t.Errorf("citations %q", c)
	}
	text := noteAllText(got)
	for _, kept := range []string{"office-hours: Weds 2-3pm, Fri 9-10am", "role: Instructor", "email: j.bell@northeastern.edu", "section: CS4530 Section 2"} {
		if !strings.Contains(text, kept) {
			t.Errorf("%q lost:\n%s", kept, text)
		}
	}
	for _, gone := range []string{"photo", "bell-sq.jpg", "---", "website"} {
		if strings.Contains(text, gone) {
			t.Errorf("%q kept:\n%s", gone, text)
		}
	}

	got = parseNotes(t, "cs4530-schedule.md")
	text = noteAllText(got)
	if c := noteCitations(got); len(c) != 1 || c[0] != "cs4530-schedule.md › Calendar" {
		t.Errorf("citations %q", c)
	}
	for _, gone := range []string{"layout", "permalink", "nav_order"} {
		if strings.Contains(text, gone) {
			t.Errorf("%q kept:\n%s", gone, text)
		}
	}
}

func TestMarkdownTablesAreRowsOfCells(t *testing.T) {
	text := noteAllText(parseNotes(t, "cs4530-schedule.md"))
	for _, want := range []string{
		"Dates | Topics | Notes",
		"Apr 18-22 | Team Meetings + Demos |",
		"Apr 29, May 2 or May 4 | Final exam (online). <br />The exam will be 2 hours",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("row %q missing:\n%s", want, text)
		}
	}
	for _, gone := range []string{"|---", "--|", "{%", "{{", "{:", "schedule-table"} {
		if strings.Contains(text, gone) {
			t.Errorf("%q kept:\n%s", gone, text)
		}
	}

	got := store.SplitSections("t.md", "## Grades\n\nPart | Weight\n:--- | ---:\nExam | 40%\n")
	if len(got) != 1 || got[0].Text != "Part | Weight\nExam | 40%" {
		t.Errorf("a table without outer pipes: %+v", got)
	}
}

func TestMarkdownLiquidAndKramdownRemoved(t *testing.T) {
	got := parseNotes(t, "cs4530-week1.md")
	dates := noteSectionText(got, "cs4530-week1.md › Important Dates:")
	if !strings.Contains(dates, "[HW1]() **Due Jan 28 by 10pm**") || strings.Contains(dates, "{") || strings.Contains(dates, "include") {
		t.Errorf("Important Dates:\n%s", dates)
	}
	text := noteAllText(got)
	// The front matter's lesson list (title: ... under lessons:) is not
	// the page's title; its YAML comments are gone.
	if strings.Contains(text, "automatically add the lecture") || strings.Contains(text, "Introduction to this class") {
		t.Errorf("front matter kept:\n%s", text)
	}
	if c := noteCitations(got); c[0] != "cs4530-week1.md › Learning Objectives:" {
		t.Errorf("citations %q", c)
	}

	got = store.SplitSections("x.md", "# T\nbefore {% comment %}\nold room 101\n{% endcomment %} after\n{%- raw -%}\n{{ page.title }} x\n")
	if text := noteAllText(got); strings.Contains(text, "101") || !strings.Contains(text, "before") || !strings.Contains(text, "after") ||
		strings.Contains(text, "raw") || strings.Contains(text, "page.title") {
		t.Errorf("liquid comment:\n%s", text)
	}
	// An unclosed "{{" on its line is text, and hides nothing after it.
	got = store.SplitSections("x.md", "## Sets\nthe set {{1}, {2} and more\n## Next\nnext text\n")
	if text := noteAllText(got); !strings.Contains(text, "the set {{1}, {2} and more") || !strings.Contains(text, "next text") {
		t.Errorf("unclosed tag:\n%s", text)
	}
}

func TestMarkdownTOMLFrontMatter(t *testing.T) {
	got := parseNotes(t, "cs6120-lesson6.md")
	c := noteCitations(got)
	if len(c) < 2 || c[0] != "cs6120-lesson6.md › Static Single Assignment" || c[1] != "cs6120-lesson6.md › Gist" {
		t.Errorf("citations %q", c)
	}
	first := noteSectionText(got, "cs6120-lesson6.md › Static Single Assignment")
	if strings.TrimSpace(first) != `due = "September 28"` {
		t.Errorf("front matter kept as %q, want only the due date", first)
	}
	if text := noteAllText(got); strings.Contains(text, "Todd Mowry") || strings.Contains(text, "+++") || strings.Contains(text, "thread") {
		t.Errorf("front matter kept:\n%s", text)
	}

	got = store.SplitSections("post.md", "+++\ntitle = \"Welcome\"\ndate = 2023-08-14\n[extra]\nlocation = \"Gates 114\"\n+++\nHello.\n")
	if text := noteSectionText(got, "post.md › Welcome"); text != "date = 2023-08-14\nlocation = \"Gates 114\"\nHello.\n" {
		t.Errorf("dates and places: %q", text)
	}
	// Front matter that does not parse is left as text: nothing is lost.
	got = store.SplitSections("x.md", "---\nnot: [yaml\n---\nbody\n")
	if text := noteAllText(got); !strings.Contains(text, "not: [yaml") || !strings.Contains(text, "body") {
		t.Errorf("bad front matter:\n%s", text)
	}
	// Unclosed front matter is text.
	got = store.SplitSections("x.md", "+++\ntitle = \"x\"\nbody\n")
	if text := noteAllText(got); !strings.Contains(text, "body") {
		t.Errorf("unclosed front matter:\n%s", text)
	}
}

func TestMarkdownSetextHeadings(t *testing.T) {
	got := parseNotes(t, "cs6120-README.md")
	c := noteCitations(got)
	if strings.Join(c, "; ") != "cs6120-README.md › CS 6120; cs6120-README.md › Adding Blog Posts" {
		t.Errorf("citations %q", c)
	}
	if blog := noteSectionText(got, "cs6120-README.md › Adding Blog Posts"); !strings.Contains(blog, "To add a blog post") || strings.Contains(blog, "-----") {
		t.Errorf("Adding Blog Posts:\n%s", blog)
	}

	for _, c := range []struct{ name, in, want string }{
		{"two lines", "Intro\n\nLate work\npolicy\n---\ntext\n", "x.md; x.md › Late work policy"},
		{"thematic break after a blank line", "Intro\n\n---\ntext\n", "x.md"},
		{"under a list item", "- item\n---\ntext\n", "x.md"},
		{"under a table row", "| a | b |\n---\ntext\n", "x.md"},
		{"indented four spaces", "Intro\n    ---\ntext\n", "x.md"},
		{"in a code block", "```\nIntro\n---\n```\ntext\n", "x.md"},
		{"after a comment", "Intro\n<!-- note -->\n---\ntext\n", "x.md"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := strings.Join(noteCitations(store.SplitSections("x.md", c.in)), "; "); got != c.want {
				t.Errorf("citations %q, want %q", got, c.want)
			}
		})
	}
}

func TestMarkdownHTMLCommentsHideTheirText(t *testing.T) {
	in := "# Course\n## Office hours\nRoom 204, Tuesdays.\n<!--\n## Old office hours\nRoom 101, Mondays.\n-->\n" +
		"See you there. <!-- stale: room 99 --> Bring questions.\n```html\n<!-- kept: code -->\n```\n"
	got := store.SplitSections("c.md", in)
	text := noteAllText(got)
	for _, gone := range []string{"101", "Old office hours", "99", "<!--"} {
		if strings.Contains(strings.ReplaceAll(text, "<!-- kept: code -->", ""), gone) {
			t.Errorf("%q from a comment is indexed:\n%s", gone, text)
		}
	}
	if c := noteCitations(got); len(c) != 1 || c[0] != "c.md › Office hours" {
		t.Errorf("citations %q: a comment became a heading", c)
	}
	if !strings.Contains(text, "See you there.  Bring questions.") || !strings.Contains(text, "<!-- kept: code -->") {
		t.Errorf("text around the comment, or a comment in code, lost:\n%s", text)
	}
	// An unclosed comment hides the rest, as a browser does.
	if got := store.SplitSections("c.md", "## A\nx <!-- y\n## B\nz\n"); noteAllText(got) != "c.md › A\nx\n" {
		t.Errorf("unclosed comment: %q", noteAllText(got))
	}
}

func TestMarkdownOneLineFenceHidesNothing(t *testing.T) {
	got := parseNotes(t, "cpsc330-setup.md")
	c := noteCitations(got)
	if c[len(c)-1] != "cpsc330-setup.md › Virtual environment › Debugging" {
		t.Errorf("citations %q", c)
	}
	text := noteAllText(got)
	if !strings.Contains(text, "```(base) kvarada@CPSC-W-KVARADA01:~$ jupyter lab```") || !strings.Contains(text, "conda activate cpsc330") {
		t.Errorf("code lost:\n%s", text)
	}
}

func TestMarkdownCodeBlocksKeptAndNotParsed(t *testing.T) {
	in := "## Run it\n~~~~\n# not a heading\n<!-- not a comment -->\n~~~\nstill code\n~~~~\nafter\n````\n```\n# code\n````\n"
	got := store.SplitSections("x.md", in)
	if c := noteCitations(got); len(c) != 1 {
		t.Errorf("citations %q: a line in code became a heading", c)
	}
	for _, want := range []string{"# not a heading", "<!-- not a comment -->", "still code", "after", "# code"} {
		if !strings.Contains(got[0].Text, want) {
			t.Errorf("%q lost:\n%s", want, got[0].Text)
		}
	}
}

func TestMarkdownDropsLinkDefinitions(t *testing.T) {
	text := "## Blog\n\nRead our [course blog][blog] and the [source][gh].\n\n" +
		"[blog]: @/blog/_index.md\n[gh]: https://github.com/x/course \"The source\"\n" +
		"[^1]: A footnote is shown.\n[not a definition]: because it goes on with words\n"
	got := store.SplitSections("index.md", text)
	if len(got) != 1 {
		t.Fatalf("got %d sections, want 1", len(got))
	}
	want := "Read our [course blog][blog] and the [source][gh].\n\n[^1]: A footnote is shown.\n[not a definition]: because it goes on with words"
	if got[0].Text != want {
		t.Errorf("text = %q, want %q", got[0].Text, want)
	}
}
