package store

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Section is one passage of the course notes: the text under one heading
// of one file (or one part of it, when the text under that heading is long).
type Section struct {
	File    string // the file's path inside the notes folder, with forward slashes: "syllabus.md", "week1/lab.md"
	Heading string // the heading path, outermost first, joined by HeadingSep; empty for text before the first heading
	Seq     int    // position in the file, from 0
	Text    string // the passage, without its heading line
}

// HeadingSep joins a heading path and a citation's parts: "syllabus.md › Grading › Late work".
const HeadingSep = " › "

// Citation names the section the way answers cite it: the file, then the
// heading path ("syllabus.md › Grading"); a file's text before its first
// heading is cited by the file alone.
func (s Section) Citation() string {
	if s.Heading == "" {
		return s.File
	}
	return s.File + HeadingSep + s.Heading
}

// title is what the search weighs most: the words of the heading path.
func (s Section) title() string {
	return strings.ReplaceAll(s.Heading, HeadingSep, " ")
}

// fileWords are the words of the file's name ("exam-policy.md" -> "exam
// policy"): every section of the file has them, so the search weighs them
// below the text.
func (s Section) fileWords() string {
	name := strings.TrimSuffix(s.File, path.Ext(s.File))
	return strings.Join(strings.FieldsFunc(name, func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	}), " ")
}

// CourseFile is one file of course notes and its sections.
type CourseFile struct {
	Path     string // inside the notes folder, forward slashes
	Hash     string // hex SHA-256 of the file's bytes: a file is re-indexed when it changes
	Sections []Section
}

// SkippedFile is a file of the notes folder that ReadCourse did not index,
// and why, in words a teacher can act on.
type SkippedFile struct {
	Path   string // inside the notes folder; may not be valid UTF-8 (see Reason)
	Reason string // "contains a NUL byte", "12.0 MB, over the 10.0 MB limit", ...
}

func (s SkippedFile) String() string { return strconv.Quote(s.Path) + ": " + s.Reason }

// Sectioning limits: a section longer than MaxSectionChars runes is cut
// into parts of at most that size, each starting with up to
// SectionOverlapChars runes of the end of the one before, so a sentence
// cut at the boundary is whole in one of them. A heading longer than
// MaxHeadingChars runes makes ReadCourse skip its file (SplitSections cuts
// it). A path longer than MaxPathBytes is skipped.
const (
	MaxSectionChars     = 1600
	SectionOverlapChars = 200
	MaxHeadingChars     = 300
	MaxPathBytes        = 1024
)

// DefaultMaxFileBytes is the size over which ReadCourse skips a file
// unless ReadCourseOptions says otherwise.
const DefaultMaxFileBytes int64 = 10 << 20

// ReadCourseOptions tunes ReadCourse; the zero value gives the defaults.
type ReadCourseOptions struct {
	// MaxFileBytes: a file larger than this is skipped without being read
	// past it. Zero or less means DefaultMaxFileBytes (10 MB).
	MaxFileBytes int64
}

// IsCourseNote reports whether a file name is one classbot indexes:
// Markdown (.md, .markdown), plain text (.txt), HTML (.html, .htm) or PDF.
func IsCourseNote(name string) bool {
	switch strings.ToLower(path.Ext(name)) {
	case ".md", ".markdown", ".txt", ".html", ".htm", ".pdf":
		return true
	}
	return false
}

// ReadCourse reads every notes file under fsys (IsCourseNote), recursively,
// and splits each into sections (ParseCourseFile). It returns the files in
// path order, and the files it skipped with the reason for each: files of
// other kinds; names that are not UTF-8, hold control characters or the
// citation separator, or paths over MaxPathBytes; files over the size cap
// (opts, at most one ReadCourseOptions), which are never read past it; and
// files ParseCourseFile refuses (not UTF-8, a NUL byte, a heading over
// MaxHeadingChars, a PDF it cannot read). Hidden files and folders (a
// leading dot) are skipped silently. It fails only when fsys cannot be
// walked or a file cannot be opened or read.
func ReadCourse(fsys fs.FS, opts ...ReadCourseOptions) (files []CourseFile, skipped []SkippedFile, err error) {
	maxBytes := DefaultMaxFileBytes
	if len(opts) > 0 && opts[0].MaxFileBytes > 0 {
		maxBytes = opts[0].MaxFileBytes
	}
	skip := func(p, reason string) { skipped = append(skipped, SkippedFile{Path: p, Reason: reason}) }
	err = fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != "." && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		if reason := checkNotePath(p); reason != "" {
			skip(p, reason)
			return nil
		}
		if !d.Type().IsRegular() {
			skip(p, "not a regular file")
			return nil
		}
		if !IsCourseNote(p) {
			skip(p, "not a notes file (Markdown, text, HTML or PDF)")
			return nil
		}
		f, reason, err := readNote(fsys, p, maxBytes)
		switch {
		case err != nil:
			return err
		case reason != "":
			skip(p, reason)
		default:
			files = append(files, f)
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("reading course notes: %w", err)
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	return files, skipped, nil
}

// readNote reads one notes file, never past maxBytes, and parses it. A
// non-empty reason says why the file is skipped.
func readNote(fsys fs.FS, p string, maxBytes int64) (f CourseFile, reason string, err error) {
	fh, err := fsys.Open(p)
	if err != nil {
		return f, "", err
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return f, "", err
	}
	if st.Size() > maxBytes {
		return f, tooBig(st.Size(), maxBytes), nil
	}
	// The builder holds the content once; the hash is taken on the way.
	var b strings.Builder
	b.Grow(int(st.Size()) + 1)
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(&b, h), io.LimitReader(fh, maxBytes+1))
	if err != nil {
		return f, "", fmt.Errorf("%s: %w", p, err)
	}
	if n > maxBytes { // it grew since Stat
		return f, tooBig(n, maxBytes), nil
	}
	sections, err := ParseCourseFile(p, b.String())
	if err != nil {
		return f, err.Error(), nil
	}
	return CourseFile{Path: p, Hash: hex.EncodeToString(h.Sum(nil)), Sections: sections}, "", nil
}

func tooBig(size, limit int64) string {
	if size > limit+1 {
		return fmt.Sprintf("%s, over the %s limit", FormatFileSize(size), FormatFileSize(limit))
	}
	return fmt.Sprintf("over the %s limit", FormatFileSize(limit))
}

// checkNotePath says why a file's path cannot be indexed, or "": a name
// that is not UTF-8, holds a control or bidirectional-formatting character,
// or holds the citation separator could make a citation lie about where a
// passage comes from.
func checkNotePath(p string) string {
	switch {
	case !utf8.ValidString(p):
		return "the file name is not valid UTF-8"
	case len(p) > MaxPathBytes:
		return fmt.Sprintf("the path is longer than %d bytes", MaxPathBytes)
	case strings.Contains(p, strings.TrimSpace(HeadingSep)):
		return fmt.Sprintf("the file name contains %q, which citations use between headings", strings.TrimSpace(HeadingSep))
	case strings.IndexFunc(p, forgesText) >= 0:
		return "the file name contains control characters"
	}
	return ""
}

// forgesText reports control characters and the invisible ones that
// reorder or hide text (bidirectional overrides and isolates).
func forgesText(r rune) bool {
	return unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) || r == '\u2028' || r == '\u2029'
}

// ParseCourseFile splits the content of the notes file named file into
// sections by its kind (the extension): Markdown and text as SplitSections
// does, HTML (.html, .htm) and PDF (.pdf) by their own parsers. Its error,
// when content cannot be indexed, is the reason in words a teacher can act
// on: not UTF-8, a NUL byte, a heading over MaxHeadingChars, a PDF without
// a readable text layer.
func ParseCourseFile(file, content string) ([]Section, error) {
	ext := strings.ToLower(path.Ext(file))
	if ext == ".pdf" {
		return splitPDF(file, content)
	}
	if !utf8.ValidString(content) {
		return nil, errors.New("not valid UTF-8 text (save it as UTF-8)")
	}
	if i := strings.IndexByte(content, 0); i >= 0 {
		return nil, fmt.Errorf("contains a NUL byte (at byte %d): not a text file", i)
	}
	switch ext {
	case ".html", ".htm":
		return splitHTML(file, content, true)
	case ".txt":
		return splitText(file, content), nil
	}
	return splitMarkdown(file, content, true)
}

// SplitSections splits one Markdown or text file into sections, as
// ParseCourseFile does but never refusing: a heading over MaxHeadingChars
// is cut to it. HTML files are split as HTML; any other name as Markdown,
// except .txt, which has no headings. See docs/course.md for the rules.
// Sections with no text are left out; long ones are cut into overlapping
// parts (MaxSectionChars, SectionOverlapChars) that keep the heading path.
func SplitSections(file, content string) []Section {
	var out []Section
	switch strings.ToLower(path.Ext(file)) {
	case ".txt":
		return splitText(file, content)
	case ".html", ".htm":
		out, _ = splitHTML(file, content, false)
	default:
		out, _ = splitMarkdown(file, content, false)
	}
	return out
}

// splitText makes a text file's sections: no headings.
func splitText(file, content string) []Section {
	s := sectioner{file: file}
	for line := range strings.Lines(content) {
		s.text(line)
	}
	return s.done()
}

// sectioner gathers the text of one file under its headings and cuts it
// into sections. The zero value with file set is ready; headings come
// through head, text through text, and done returns the sections.
type sectioner struct {
	file    string
	titled  bool     // the first heading is the only level-1 heading: the paths below it leave it out
	stack   []string // heading titles by level, stack[0] is level 1
	heading string   // the current heading path
	body    []byte   // the current section's text
	out     []Section
}

// text adds a line (its line break, if any, is normalised) to the current section.
func (s *sectioner) text(line string) {
	line = strings.TrimRight(line, "\r\n")
	s.body = append(s.body, line...)
	s.body = append(s.body, '\n')
}

// head starts a section under a heading of the given level (1 to 6).
func (s *sectioner) head(level int, title string) {
	s.flush()
	for len(s.stack) < level {
		s.stack = append(s.stack, "")
	}
	s.stack = append(s.stack[:level-1], title)
	var parts []string
	for i, t := range s.stack {
		if t != "" && !(s.titled && i == 0 && level > 1) {
			parts = append(parts, t)
		}
	}
	s.heading = strings.Join(parts, HeadingSep)
}

// setHeading starts a section under a heading path given whole.
func (s *sectioner) setHeading(h string) {
	s.flush()
	s.heading = h
}

func (s *sectioner) flush() {
	text := strings.TrimSpace(string(s.body))
	s.body = s.body[:0]
	if text == "" {
		return
	}
	for _, part := range splitLong(text, MaxSectionChars, SectionOverlapChars) {
		s.out = append(s.out, Section{File: s.file, Heading: s.heading, Seq: len(s.out), Text: part})
	}
}

func (s *sectioner) done() []Section {
	s.flush()
	return s.out
}

// headingTitle normalises a heading's text (spaces collapsed). Over
// MaxHeadingChars runes it is an error when strict, else cut; a huge one
// is never split into words.
func headingTitle(raw string, line int, strict bool) (string, error) {
	if collapsedLen(raw, MaxHeadingChars) > MaxHeadingChars {
		if strict {
			return "", headingError(line)
		}
		raw = cutRunes(raw, 4*MaxHeadingChars)
	}
	title := strings.Join(strings.Fields(raw), " ")
	if utf8.RuneCountInString(title) > MaxHeadingChars {
		title = strings.TrimSpace(cutRunes(title, MaxHeadingChars))
	}
	return title, nil
}

// collapsedLen counts the runes of s with its runs of spaces as one and
// its ends trimmed, stopping once past limit.
func collapsedLen(s string, limit int) int {
	n, space := 0, false
	for _, r := range strings.TrimSpace(s) {
		if unicode.IsSpace(r) {
			space = true
			continue
		}
		if space {
			n++
			space = false
		}
		if n++; n > limit {
			break
		}
	}
	return n
}

func headingError(line int) error {
	if line > 0 {
		return fmt.Errorf("the heading on line %d is longer than %d characters", line, MaxHeadingChars)
	}
	return fmt.Errorf("a heading is longer than %d characters", MaxHeadingChars)
}

// cutRunes returns the first n runes of s.
func cutRunes(s string, n int) string {
	for i := range s {
		if n == 0 {
			return s[:i]
		}
		n--
	}
	return s
}

// splitLong cuts text into parts of at most max runes, at line breaks where
// it can and between words where a line is too long; each part after the
// first starts with the last lines (or words) of the previous part, up to
// overlap runes. Its memory is a small multiple of the text's, whatever
// the text: lines and their pieces are slices of text, not copies.
func splitLong(text string, max, overlap int) []string {
	if utf8.RuneCountInString(text) <= max {
		return []string{text}
	}
	// cur is the part being filled; curSize its runes, one newline per unit
	// included. Sizes are kept as we go: a long section stays linear.
	var parts, cur []string
	var sizes []int // runes of each unit in cur
	curSize := 0
	add := func(u string, un int) {
		if len(cur) > 0 && curSize+un > max {
			if p := strings.TrimSpace(strings.Join(cur, "\n")); p != "" {
				parts = append(parts, p)
			}
			// Carry the tail of cur over, as long as it fits the overlap
			// and leaves room for u.
			keep, tailSize := 0, 0
			for j := len(cur) - 1; j >= 0; j-- {
				next := tailSize + sizes[j] + 1
				if next > overlap || next+un > max {
					break
				}
				keep, tailSize = keep+1, next
			}
			cur = append(cur[:0], cur[len(cur)-keep:]...)
			sizes = append(sizes[:0], sizes[len(sizes)-keep:]...)
			curSize = tailSize
		}
		cur, sizes = append(cur, u), append(sizes, un)
		curSize += un + 1
	}
	// Units: lines, and the pieces of lines longer than max.
	for line := range strings.SplitSeq(text, "\n") {
		if n := utf8.RuneCountInString(line); n <= max {
			add(line, n)
			continue
		}
		for piece := range linePieces(line, max) {
			add(piece, utf8.RuneCountInString(piece))
		}
	}
	if last := strings.TrimSpace(strings.Join(cur, "\n")); last != "" {
		parts = append(parts, last)
	}
	return parts
}

// linePieces cuts a line into pieces of at most max runes, between words
// where it can (a "word" longer than max-1 runes, a long URL or a pasted
// blob, is cut inside). The pieces are slices of line, trimmed.
func linePieces(line string, max int) func(yield func(string) bool) {
	return func(yield func(string) bool) {
		for line != "" {
			line = strings.TrimLeftFunc(line, unicode.IsSpace)
			if line == "" {
				return
			}
			// Walk up to max runes; remember the last space seen.
			end, lastSpace, n := len(line), -1, 0
			for i, r := range line {
				if n == max {
					end = i
					break
				}
				if unicode.IsSpace(r) {
					lastSpace = i
				}
				n++
			}
			if end < len(line) {
				// Cut between words; one word longer than the piece
				// is cut inside.
				if r, _ := utf8.DecodeRuneInString(line[end:]); !unicode.IsSpace(r) && lastSpace > 0 {
					end = lastSpace
				}
			}
			if piece := strings.TrimRightFunc(line[:end], unicode.IsSpace); piece != "" {
				if !yield(piece) {
					return
				}
			}
			line = line[end:]
		}
	}
}

// FormatFileSize writes a size in bytes for people: "512 B", "12.5 KB",
// "10.0 MB" (1 KB = 1,024 bytes).
func FormatFileSize(n int64) string {
	switch {
	case n < 1<<10:
		return fmt.Sprintf("%d B", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KB", float64(n)/(1<<10))
	case n < 1<<30:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.1f GB", float64(n)/(1<<30))
}

// ParseFileSize reads a size such as COURSE_MAX_FILE_BYTES: a whole number
// of bytes ("10485760") or a number with KB, MB or GB ("512KB", "10MB",
// "1.5 MB"; 1 KB = 1,024 bytes; case does not matter). It must be above 0.
func ParseFileSize(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KB", 1 << 10}, {"MB", 1 << 20}, {"GB", 1 << 30}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"B", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	bad := fmt.Errorf("must be a size such as 10MB, 512KB or a number of bytes, not %q", s)
	if n, err := strconv.ParseInt(t, 10, 64); err == nil {
		if n <= 0 || n > (1<<62)/mult {
			return 0, bad
		}
		return n * mult, nil
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || f <= 0 || f*float64(mult) < 1 || f*float64(mult) > 1<<62 || mult == 1 {
		return 0, bad
	}
	return int64(f * float64(mult)), nil
}
