package store_test

import (
	"io/fs"
	"runtime"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/classbot/classbot/store"
)

func TestReadCourseRecursesAndSkipsOtherFiles(t *testing.T) {
	fsys := fstest.MapFS{
		"syllabus.md":       {Data: []byte("# Grading\nExam 40%.\n")},
		"week1/lab.txt":     {Data: []byte("Bring a laptop.")},
		"week1/photo.png":   {Data: []byte("\x89PNG")},
		".git/config":       {Data: []byte("x")},
		"notes.markdown":    {Data: []byte("text")},
		"latin1.md":         {Data: []byte("caf\xe9")},
		"week1/.draft.md":   {Data: []byte("hidden")},
		"week2/link.md":     {Data: []byte("x"), Mode: fs.ModeSymlink},
		"week2/schedule.md": {Data: []byte("## Week 2\nLab on Tuesday.")},
	}
	files, skipped, err := store.ReadCourse(fsys)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, f := range files {
		paths = append(paths, f.Path)
		if len(f.Hash) != 64 {
			t.Errorf("%s: hash %q", f.Path, f.Hash)
		}
	}
	if strings.Join(paths, ",") != "notes.markdown,syllabus.md,week1/lab.txt,week2/schedule.md" {
		t.Errorf("files %v", paths)
	}
	want := map[string]string{
		"latin1.md":       "not valid UTF-8",
		"week1/photo.png": "not a notes file",
		"week2/link.md":   "not a regular file",
	}
	if len(skipped) != len(want) {
		t.Errorf("skipped %v, want %v (hidden files are silent)", skipped, want)
	}
	for _, s := range skipped {
		if !strings.Contains(s.Reason, want[s.Path]) || want[s.Path] == "" {
			t.Errorf("skipped %s: %q, want a reason with %q", s.Path, s.Reason, want[s.Path])
		}
	}
	if files[1].Sections[0].Citation() != "syllabus.md › Grading" {
		t.Errorf("citation %q", files[1].Sections[0].Citation())
	}
}

// TestReadCourseSkipsAndReportsBadFiles: one bad file costs only itself,
// and the report names it and says why.
func TestReadCourseSkipsAndReportsBadFiles(t *testing.T) {
	long := strings.Repeat("d/", 520) + "x.md"
	cases := []struct {
		name, path, content, reason string
	}{
		{"NUL byte", "nul.md", "# Exam\nroom 12\x00\n", "NUL byte"},
		{"name not UTF-8", "bad\xffname.md", "# Exam\n", "file name is not valid UTF-8"},
		{"path too long", long, "# Exam\n", "longer than 1024 bytes"},
		{"newline in name", "syllabus.md\nFAQ.md", "# Exam\n", "control characters"},
		{"bidi override in name", "exam\u202egnp.md", "# Exam\n", "control characters"},
		{"citation separator in name", "syllabus.md › Grading.md", "x", "citations use between headings"},
		{"content not UTF-8", "latin1.txt", "caf\xe9", "not valid UTF-8"},
		{"heading too long", "long.md", "# Intro\nok\n## " + strings.Repeat("word ", 100) + "\ntext\n", "line 3 is longer than 300 characters"},
		{"huge heading", "huge.md", "# " + strings.Repeat("x", 1<<20) + "\ntext\n", "line 1 is longer than 300 characters"},
		{"HTML heading too long", "page.html", "<h2>" + strings.Repeat("word ", 100) + "</h2><p>x</p>", "longer than 300 characters"},
		{"setext heading too long", "setext.md", strings.Repeat("word ", 100) + "\n====\n", "line 2 is longer"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fsys := fstest.MapFS{
				c.path:        {Data: []byte(c.content)},
				"syllabus.md": {Data: []byte("# Grading\nExam 40%.\n")},
			}
			files, skipped, err := store.ReadCourse(fsys)
			if err != nil {
				t.Fatal(err)
			}
			if len(files) != 1 || files[0].Path != "syllabus.md" {
				t.Errorf("files %v, want only syllabus.md", files)
			}
			if len(skipped) != 1 || skipped[0].Path != c.path || !strings.Contains(skipped[0].Reason, c.reason) {
				t.Errorf("skipped %v, want %q because %q", skipped, c.path, c.reason)
			}
		})
	}
}

func TestReadCourseSkipsFilesOverTheSizeCap(t *testing.T) {
	fsys := fstest.MapFS{
		"big.md":   {Data: []byte(strings.Repeat("a", 2048))},
		"small.md": {Data: []byte(strings.Repeat("a", 1024))},
	}
	files, skipped, err := store.ReadCourse(fsys, store.ReadCourseOptions{MaxFileBytes: 1024})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 || files[0].Path != "small.md" {
		t.Errorf("files %v, want small.md (exactly at the cap)", files)
	}
	if len(skipped) != 1 || skipped[0].Path != "big.md" || skipped[0].Reason != "2.0 KB, over the 1.0 KB limit" {
		t.Errorf("skipped %v", skipped)
	}

	// The default is 10 MB.
	fsys = fstest.MapFS{"big.md": {Data: make([]byte, store.DefaultMaxFileBytes+1)}}
	if _, skipped, _ := store.ReadCourse(fsys); len(skipped) != 1 || !strings.Contains(skipped[0].Reason, "over the 10.0 MB limit") {
		t.Errorf("skipped %v", skipped)
	}
}

// growingFS serves a file whose Stat says it is small and whose content is
// not: ReadCourse must not read past the cap whatever Stat says.
type growingFS struct{ fstest.MapFS }

type growingFile struct {
	fs.File
	read int
}

func (f *growingFile) Stat() (fs.FileInfo, error) { return smallInfo{}, nil }
func (f *growingFile) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'a'
	}
	f.read += len(p)
	return len(p), nil
}

type smallInfo struct{}

func (smallInfo) Name() string       { return "endless.md" }
func (smallInfo) Size() int64        { return 10 }
func (smallInfo) Mode() fs.FileMode  { return 0o644 }
func (smallInfo) ModTime() time.Time { return time.Time{} }
func (smallInfo) IsDir() bool        { return false }
func (smallInfo) Sys() any           { return nil }

var lastGrowing *growingFile

func (g growingFS) Open(name string) (fs.File, error) {
	if name == "endless.md" {
		f, err := g.MapFS.Open(name)
		if err != nil {
			return nil, err
		}
		lastGrowing = &growingFile{File: f}
		return lastGrowing, nil
	}
	return g.MapFS.Open(name)
}

func TestReadCourseNeverReadsPastTheCap(t *testing.T) {
	fsys := growingFS{fstest.MapFS{"endless.md": {Data: []byte("0123456789")}}}
	files, skipped, err := store.ReadCourse(fsys, store.ReadCourseOptions{MaxFileBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 0 || len(skipped) != 1 || skipped[0].Reason != "over the 1.0 MB limit" {
		t.Errorf("files %v, skipped %v", files, skipped)
	}
	if lastGrowing == nil || lastGrowing.read > 1<<20+64<<10 {
		t.Errorf("read %d bytes of an endless file with a 1 MB cap", lastGrowing.read)
	}
}

// TestReadCourseMemoryStaysBoundedOnAOneLineFile: a file that is one long
// line (a pasted blob, minified text) costs a small multiple of its size,
// not one slice entry or allocation per word.
func TestReadCourseMemoryStaysBoundedOnAOneLineFile(t *testing.T) {
	const size = 8 << 20
	line := []byte(strings.Repeat("a ", size/2))
	page := []byte(strings.Repeat("<b>a</b> ", size/9))
	fsys := fstest.MapFS{"blob.md": {Data: line}, "blob.txt": {Data: line}, "blob.html": {Data: page}}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	files, skipped, err := store.ReadCourse(fsys)
	runtime.ReadMemStats(&after)
	if err != nil || len(skipped) != 0 || len(files) != 3 {
		t.Fatalf("files %d, skipped %v, err %v", len(files), skipped, err)
	}
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("%d MB allocated for three %d MB one-line files", allocated>>20, size>>20)
	if limit := uint64(3 * 8 * size); allocated > limit {
		t.Errorf("allocated %d MB for three %d MB files, want at most %d MB", allocated>>20, size>>20, limit>>20)
	}
	if n := len(files[1].Sections); n < size/store.MaxSectionChars { // blob.md
		t.Errorf("%d sections", n)
	}
}

func BenchmarkReadCourseOneLineFile(b *testing.B) {
	const size = 8 << 20
	fsys := fstest.MapFS{"blob.md": {Data: []byte(strings.Repeat("word ", size/5))}}
	b.ReportAllocs()
	b.SetBytes(size)
	for b.Loop() {
		if _, _, err := store.ReadCourse(fsys); err != nil {
			b.Fatal(err)
		}
	}
}

func TestParseFileSize(t *testing.T) {
	for in, want := range map[string]int64{
		"10MB": 10 << 20, "512KB": 512 << 10, "512kb": 512 << 10, "1048576": 1 << 20,
		"1.5 MB": 3 << 19, "2G": 2 << 30, "100B": 100, " 10 MB ": 10 << 20,
	} {
		if got, err := store.ParseFileSize(in); err != nil || got != want {
			t.Errorf("ParseFileSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "-1MB", "ten", "1.5", "MB", "0.1B", "99999999999GB"} {
		if got, err := store.ParseFileSize(in); err == nil {
			t.Errorf("ParseFileSize(%q) = %d, want an error", in, got)
		}
	}
}

// A policy of a few paragraphs, as syllabi have them, stays one section:
// cut in two, the part a question's words find is often not the part
// that answers it.
func TestSplitSectionsKeepsAPolicyOfAFewParagraphsWhole(t *testing.T) {
	para := strings.Repeat("Late work loses ten percent per day unless an extension was granted. ", 7)
	text := "## Late work\n\n" + para + "\n\n" + para + "\n\n" + para + "\n"
	if n := len([]rune(text)); n < 1400 {
		t.Fatalf("test text has %d runes, want a section over 1,400", n)
	}
	if got := store.SplitSections("syllabus.md", text); len(got) != 1 {
		t.Errorf("got %d parts, want the section whole", len(got))
	}
}
