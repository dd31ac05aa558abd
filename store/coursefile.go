package store

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"path"
	"sort"
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

// Sectioning limits: a section longer than MaxSectionChars runes is cut
// into parts of at most that size, each starting with up to
// SectionOverlapChars runes of the end of the one before, so a sentence
// cut at the boundary is whole in one of them.
const (
	MaxSectionChars     = 1200
	SectionOverlapChars = 200
)

// IsCourseNote reports whether a file name is one classbot indexes:
// Markdown (.md, .markdown) or plain text (.txt).
func IsCourseNote(name string) bool {
	switch strings.ToLower(path.Ext(name)) {
	case ".md", ".markdown", ".txt":
		return true
	}
	return false
}

// ReadCourse reads every Markdown and text file under fsys, recursively, and
// splits each into sections. It returns the files in path order and the
// paths of the other files it skipped (the caller logs them): files of other
// kinds, and Markdown or text files that are not UTF-8. Hidden files and
// folders (a leading dot) are skipped silently. It fails only when fsys
// cannot be read.
func ReadCourse(fsys fs.FS) (files []CourseFile, skipped []string, err error) {
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
		if !d.Type().IsRegular() || !IsCourseNote(p) {
			skipped = append(skipped, p)
			return nil
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		if !utf8.Valid(b) {
			skipped = append(skipped, p)
			return nil
		}
		sum := sha256.Sum256(b)
		files = append(files, CourseFile{Path: p, Hash: hex.EncodeToString(sum[:]), Sections: SplitSections(p, string(b))})
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("reading course notes: %w", err)
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	return files, skipped, nil
}

// SplitSections splits one file into sections. In Markdown (any file but
// .txt) every ATX heading ("# Title" to "###### Title") outside a fenced
// code block starts a section, whose heading path is the headings above it
// ("Grading › Late work"); text before the first heading is a section with
// no heading. A file whose first heading is its only level-1 heading has
// that heading as its title, which the file name already stands for: the
// text right under it is cited "file.md › Title", and the sections below
// it leave it out of their path ("syllabus.md › Grading", not
// "syllabus.md › CS 101 › Grading"). A .txt file has no headings.
// Sections with no text are left out; long ones are cut into overlapping
// parts (MaxSectionChars, SectionOverlapChars) that keep the heading path.
func SplitSections(file, content string) []Section {
	content = strings.ReplaceAll(content, "\r\n", "\n")
	markdown := strings.ToLower(path.Ext(file)) != ".txt"
	titled := markdown && hasTitle(content)
	var (
		out     []Section
		stack   []string // heading titles by level, stack[0] is level 1
		heading string
		body    []string
		fence   string // the open code fence ("```" or "~~~"), if any
	)
	flush := func() {
		text := strings.TrimSpace(strings.Join(body, "\n"))
		body = body[:0]
		if text == "" {
			return
		}
		for _, part := range splitLong(text, MaxSectionChars, SectionOverlapChars) {
			out = append(out, Section{File: file, Heading: heading, Seq: len(out), Text: part})
		}
	}
	for line := range strings.Lines(content) {
		line = strings.TrimRight(line, "\n")
		if markdown {
			if inCodeFence(&fence, line) {
				body = append(body, line)
				continue
			}
			if level, title, ok := atxHeading(line); ok {
				flush()
				for len(stack) < level {
					stack = append(stack, "")
				}
				stack = append(stack[:level-1], title)
				var parts []string
				for i, t := range stack {
					if t != "" && !(titled && i == 0 && level > 1) {
						parts = append(parts, t)
					}
				}
				heading = strings.Join(parts, HeadingSep)
				continue
			}
		}
		body = append(body, line)
	}
	flush()
	return out
}

// hasTitle reports whether the first heading of a Markdown text is its only
// level-1 heading.
func hasTitle(content string) bool {
	first, ones := 0, 0
	fence := ""
	for line := range strings.Lines(content) {
		if inCodeFence(&fence, line) {
			continue
		}
		if level, _, ok := atxHeading(strings.TrimRight(line, "\n")); ok {
			if first == 0 {
				first = level
			}
			if level == 1 {
				ones++
			}
		}
	}
	return first == 1 && ones == 1
}

// inCodeFence tracks fenced code blocks line by line: it reports whether
// line opens a fence ("```" or "~~~"), is inside one or closes it, and
// keeps the open fence in *open ("" outside any).
func inCodeFence(open *string, line string) bool {
	trimmed := strings.TrimSpace(line)
	if *open != "" {
		if strings.HasPrefix(trimmed, *open) {
			*open = ""
		}
		return true
	}
	if strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~") {
		*open = trimmed[:3]
		return true
	}
	return false
}

// atxHeading parses "## Title ##" (up to three spaces of indentation).
func atxHeading(line string) (level int, title string, ok bool) {
	s := strings.TrimLeft(line, " ")
	if len(line)-len(s) > 3 {
		return 0, "", false
	}
	for level < len(s) && s[level] == '#' {
		level++
	}
	if level == 0 || level > 6 || (level < len(s) && s[level] != ' ' && s[level] != '\t') {
		return 0, "", false
	}
	title = strings.TrimSpace(s[level:])
	if t := strings.TrimRight(title, "#"); t != title && (t == "" || strings.HasSuffix(t, " ")) {
		title = strings.TrimSpace(t)
	}
	title = strings.Join(strings.Fields(title), " ")
	return level, title, title != ""
}

// splitLong cuts text into parts of at most max runes, at line breaks where
// it can and between words where a line is too long; each part after the
// first starts with the last lines (or words) of the previous part, up to
// overlap runes.
func splitLong(text string, max, overlap int) []string {
	if utf8.RuneCountInString(text) <= max {
		return []string{text}
	}
	// Units: lines, and the word-cut pieces of lines longer than max.
	var units []string
	for line := range strings.SplitSeq(text, "\n") {
		if utf8.RuneCountInString(line) <= max {
			units = append(units, line)
			continue
		}
		var cur []string
		n := 0
		var words []string
		for _, w := range strings.Fields(line) {
			// A "word" longer than max (a long URL, a pasted blob) is cut
			// into pieces of max runes.
			for r := []rune(w); len(r) > 0; {
				k := min(len(r), max-1)
				words = append(words, string(r[:k]))
				r = r[k:]
			}
		}
		for _, w := range words {
			wl := utf8.RuneCountInString(w) + 1
			if n+wl > max && len(cur) > 0 {
				units = append(units, strings.Join(cur, " "))
				cur, n = nil, 0
			}
			cur = append(cur, w)
			n += wl
		}
		if len(cur) > 0 {
			units = append(units, strings.Join(cur, " "))
		}
	}
	// cur is the part being filled; curSize its runes, one newline per unit
	// included. Sizes are kept as we go: a long section stays linear.
	var parts, cur []string
	var sizes []int // runes of each unit in cur
	curSize := 0
	for _, u := range units {
		un := utf8.RuneCountInString(u)
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
			cur = append([]string(nil), cur[len(cur)-keep:]...)
			sizes = append([]int(nil), sizes[len(sizes)-keep:]...)
			curSize = tailSize
		}
		cur, sizes = append(cur, u), append(sizes, un)
		curSize += un + 1
	}
	if last := strings.TrimSpace(strings.Join(cur, "\n")); last != "" {
		parts = append(parts, last)
	}
	return parts
}
