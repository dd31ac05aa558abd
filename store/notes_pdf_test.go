package store_test

import (
	"bytes"
	"strings"
	"testing"

	"codeberg.org/go-pdf/fpdf"

	"github.com/classbot/classbot/store"
)

// syllabusPDF writes a small PDF with a text layer, as a teacher's
// exported syllabus: pages of text and, with outline, bookmarks.
func syllabusPDF(t *testing.T, outline bool) string {
	t.Helper()
	f := fpdf.New("P", "mm", "A4", "")
	f.SetFont("Helvetica", "", 12)
	page := func(bookmark string, level int, lines ...string) {
		f.AddPage()
		if outline && bookmark != "" {
			f.Bookmark(bookmark, level, -1)
		}
		for _, l := range lines {
			f.MultiCell(0, 6, l, "", "L", false)
		}
	}
	page("Course information", 0, "CS 101 Introduction to Programming", "Instructor: Ada Lovelace, office hours Tuesdays in room 204.")
	page("", 0, "Lectures are on Mondays and Wednesdays at 10am.")
	page("Grading", 0, "Homework counts for 40% and the final exam for 60%.")
	page("Late work", 1, "Late work loses 10% per day, up to three days.")
	var b bytes.Buffer
	if err := f.Output(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestPDFOneSectionPerPage(t *testing.T) {
	got, err := store.ParseCourseFile("syllabus.pdf", syllabusPDF(t, false))
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ citation, text string }{
		{"syllabus.pdf › p. 1", "CS 101 Introduction to Programming\nInstructor: Ada Lovelace, office hours Tuesdays in room 204."},
		{"syllabus.pdf › p. 2", "Lectures are on Mondays and Wednesdays at 10am."},
		{"syllabus.pdf › p. 3", "Homework counts for 40% and the final exam for 60%."},
		{"syllabus.pdf › p. 4", "Late work loses 10% per day, up to three days."},
	}
	if len(got) != len(want) {
		t.Fatalf("%d sections:\n%s", len(got), noteAllText(got))
	}
	for i, w := range want {
		if got[i].Citation() != w.citation || got[i].Text != w.text {
			t.Errorf("section %d: %s %q, want %s %q", i, got[i].Citation(), got[i].Text, w.citation, w.text)
		}
	}
}

func TestPDFOutlineNamesThePages(t *testing.T) {
	got, err := store.ParseCourseFile("syllabus.pdf", syllabusPDF(t, true))
	if err != nil {
		t.Fatal(err)
	}
	want := "syllabus.pdf › Course information › p. 1; syllabus.pdf › Course information › p. 2; " +
		"syllabus.pdf › Grading › p. 3; syllabus.pdf › Grading › Late work › p. 4"
	if c := strings.Join(noteCitations(got), "; "); c != want {
		t.Errorf("citations\n%s\nwant\n%s", c, want)
	}
}

func TestPDFThatCannotBeReadIsSkipped(t *testing.T) {
	for name, content := range map[string]string{
		"not a PDF": "%PDF-1.4\nnothing else",
		"truncated": syllabusPDF(t, false)[:500],
		"no text":   blankPDF(t),
	} {
		t.Run(name, func(t *testing.T) {
			if got, err := store.ParseCourseFile("x.pdf", content); err == nil {
				t.Errorf("sections %+v, want an error", got)
			} else {
				t.Log(err)
			}
		})
	}
}

func blankPDF(t *testing.T) string {
	f := fpdf.New("P", "mm", "A4", "")
	f.AddPage()
	f.Rect(10, 10, 50, 50, "D") // a drawing, as a scan is an image: no text
	var b bytes.Buffer
	if err := f.Output(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// FuzzParsePDF: a damaged PDF is refused with a reason or read, never a
// panic; what is read keeps the sectioning's promises.
func FuzzParsePDF(f *testing.F) {
	t := &testing.T{}
	whole := syllabusPDF(t, true)
	f.Add(whole)
	f.Add(whole[:len(whole)/2] + whole[len(whole)/2+40:])
	f.Add(strings.Replace(whole, "/Next", "/Prev", 1))
	f.Fuzz(func(t *testing.T, content string) {
		got, err := store.ParseCourseFile("f.pdf", content)
		if err != nil {
			return
		}
		for i, s := range got {
			if s.Seq != i || strings.TrimSpace(s.Text) == "" || len([]rune(s.Text)) > store.MaxSectionChars {
				t.Fatalf("part %d: %+v", i, s)
			}
		}
	})
}

// A damaged number in a PDF must not make the reader allocate by it: one
// such file exhausted memory, which no recover catches, and stopped the
// whole process.
func TestPDFDamagedSizesAreRefused(t *testing.T) {
	whole := syllabusPDF(t, false)
	if !strings.Contains(whole, "xref\n0 ") {
		t.Fatal("no xref table in the test PDF")
	}
	for name, damaged := range map[string]string{
		"xref start": strings.Replace(whole, "xref\n0 ", "xref\n99999999999 ", 1),
		"xref count": strings.Replace(whole, "xref\n0 ", "xref\n0 99999999999", 1),
		"size":       strings.Replace(whole, "/Size ", "/Size 99999999999", 1),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := store.ParseCourseFile("x.pdf", damaged); err == nil || !strings.Contains(err.Error(), "damaged") {
				t.Errorf("err %v", err)
			}
		})
	}
	for in, ok := range map[string]bool{
		"1 0 obj\n<< /Type /Font /Subtype /CIDFontType2 /W [1 3 500 4 [600 700]] >>\nendobj\n":                 true,
		"2 0 obj\n<< /DecodeParms << /Predictor 12 /Columns 5 >> /Type /XRef /W [1 2 1] /Size 30 >>\nstream\n": true,
		"2 0 obj\n<< /Type /XRef /W [1 2000000000 1] /Size 30 >>\nstream\n":                                    false,
		"2 0 obj\n<< /DecodeParms << /Columns 99999999999 >> >>\nstream\n":                                     false,
		"trailer\n<< /Size -5 >>\n": false,
	} {
		if err := store.CheckPDFSizes(in); (err == nil) != ok {
			t.Errorf("CheckPDFSizes(%q) = %v, want ok %v", in, err, ok)
		}
	}
}
