package store

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// CourseHit is one section found by SearchCourse and how well it matched:
// Score orders hits (higher is better; the scale depends on the question),
// Confidence in [0, 1] says how much of the question's rare vocabulary the
// section holds (the first hit has at least MinConfidence; the others at
// least half of it).
type CourseHit struct {
	Section
	Score      float64
	Confidence float64
}

// CourseIndexReport says what IndexCourse changed.
type CourseIndexReport struct {
	Files     int // files in the notes
	Sections  int // sections in the notes
	Indexed   int // files (re-)indexed because they were new or changed
	Unchanged int // files whose hash matched the index
	Removed   int // indexed files no longer in the notes
}

func (r CourseIndexReport) String() string {
	return fmt.Sprintf("%d files, %d sections: %d indexed, %d unchanged, %d removed",
		r.Files, r.Sections, r.Indexed, r.Unchanged, r.Removed)
}

// DefaultCourse is the name of the course that always exists: COURSE_DIR
// is indexed into it, and a class with no course of its own searches it.
const DefaultCourse = "default"

// Course is one course: a name, the notes indexed under it and the classes
// it serves.
type Course struct {
	ID        int64
	Name      string
	Dir       string // the folder its notes were last indexed from; informative
	CreatedAt time.Time
	IndexedAt time.Time // when IndexCourse last finished for it; zero: never

	// Courses fills these; CourseByName and CourseFor leave them zero.
	Classes  []Class
	Files    int
	Sections int
}

// Class is where students ask: a Slack workspace or Discord server
// (Channel "") or one channel of it.
type Class struct {
	Platform  string
	Workspace string // Slack team id, Discord guild id
	Channel   string // "": the whole workspace or server
}

func (c Class) String() string {
	if c.Channel == "" {
		return c.Platform + " " + c.Workspace
	}
	return c.Platform + " " + c.Workspace + " " + c.Channel
}

func (c Class) check() error {
	switch {
	case c.Platform == "" || len(c.Platform) > 32:
		return fmt.Errorf("%w: class platform", ErrInvalid)
	case c.Workspace == "" || len(c.Workspace) > maxKeyBytes:
		return fmt.Errorf("%w: class workspace", ErrInvalid)
	case len(c.Channel) > maxKeyBytes:
		return fmt.Errorf("%w: class channel", ErrInvalid)
	}
	return nil
}

// MaxCourseNameBytes bounds a course's name.
const MaxCourseNameBytes = 100

// CheckCourseName returns ErrInvalid unless name is 1 to MaxCourseNameBytes
// letters, digits, '-', '_' or '.': a name an operator types on a command
// line without quoting.
func CheckCourseName(name string) error {
	if name == "" || len(name) > MaxCourseNameBytes {
		return fmt.Errorf("%w: a course name is 1 to %d characters", ErrInvalid, MaxCourseNameBytes)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return fmt.Errorf("%w: a course name has only letters, digits, '-', '_' and '.'", ErrInvalid)
		}
	}
	return nil
}

// CourseIndex is what IndexCourse needs from a store; *Postgres and
// *Memory implement it. Every method works on one course, by id, and
// never touches another.
type CourseIndex interface {
	CourseHashes(ctx context.Context, course int64) (map[string]string, error)
	ReplaceCourseFile(ctx context.Context, course int64, f CourseFile) error
	RemoveCourseFiles(ctx context.Context, course int64, paths []string) error
	SetCourseIndexed(ctx context.Context, course int64) error
}

// IndexCourse brings the index of one course up to date with files (from
// ReadCourse): a file whose content hash differs from the indexed one, or
// that is new, has its sections replaced (one transaction per file);
// indexed files that are gone are removed; then the course's IndexedAt is
// set. With force every file is re-indexed. Other courses are not touched.
// It stops at the first error; files done before it stay done.
func IndexCourse(ctx context.Context, idx CourseIndex, course int64, files []CourseFile, force bool) (CourseIndexReport, error) {
	rep := CourseIndexReport{Files: len(files)}
	have, err := idx.CourseHashes(ctx, course)
	if err != nil {
		return rep, err
	}
	seen := make(map[string]bool, len(files))
	for _, f := range files {
		seen[f.Path] = true
		rep.Sections += len(f.Sections)
		if h, ok := have[f.Path]; ok && h == f.Hash && !force {
			rep.Unchanged++
			continue
		}
		if err := idx.ReplaceCourseFile(ctx, course, f); err != nil {
			return rep, err
		}
		rep.Indexed++
	}
	var gone []string
	for p := range have {
		if !seen[p] {
			gone = append(gone, p)
		}
	}
	if len(gone) > 0 {
		if err := idx.RemoveCourseFiles(ctx, course, gone); err != nil {
			return rep, err
		}
		rep.Removed = len(gone)
	}
	return rep, idx.SetCourseIndexed(ctx, course)
}

// checkCourseFile checks a file before it is stored.
func checkCourseFile(f CourseFile) error {
	if f.Path == "" || len(f.Path) > 1024 {
		return fmt.Errorf("%w: course file path", ErrInvalid)
	}
	if f.Hash == "" || len(f.Hash) > 128 {
		return fmt.Errorf("%w: course file hash", ErrInvalid)
	}
	for _, s := range f.Sections {
		if s.File != f.Path {
			return fmt.Errorf("%w: section of %s filed under another file", ErrInvalid, f.Path)
		}
	}
	return nil
}

// AskKey says whose memory it is: one student in one channel of one
// workspace on one platform. Memory never crosses keys.
type AskKey struct {
	Platform  string
	Workspace string
	Channel   string
	User      string
}

func (k AskKey) check() error {
	switch {
	case k.Platform == "" || len(k.Platform) > 32:
		return fmt.Errorf("%w: platform", ErrInvalid)
	case k.User == "" || len(k.User) > maxKeyBytes:
		return fmt.Errorf("%w: user", ErrInvalid)
	case len(k.Workspace) > maxKeyBytes || len(k.Channel) > maxKeyBytes:
		return fmt.Errorf("%w: workspace or channel", ErrInvalid)
	}
	return nil
}

// AskTurn is one remembered /ask: the student's question and the answer
// they were given, word for word.
type AskTurn struct {
	AskKey
	Question string
	Answer   string
	At       time.Time // when it was answered; zero: now
	// Via is the ledger id of the /ask that was answered: the turn is
	// remembered only while that ledger row is still the student's (see
	// Forget). Empty: not tied to a command.
	Via string
}

// MaxAskTurnBytes bounds the question and the answer of a remembered turn
// (each); longer text is refused with ErrInvalid. An /ask question is at
// most a few hundred characters and an answer a few thousand.
const MaxAskTurnBytes = 64 << 10

func (t AskTurn) check() error {
	if err := t.AskKey.check(); err != nil {
		return err
	}
	if strings.TrimSpace(t.Question) == "" || len(t.Question) > MaxAskTurnBytes || len(t.Answer) > MaxAskTurnBytes {
		return fmt.Errorf("%w: question or answer", ErrInvalid)
	}
	return nil
}
