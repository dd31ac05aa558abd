package store

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"time"
)

// memCourses is Memory's courses, guarded by Memory.mu.
type memCourses struct {
	byID    map[int64]*memCourse
	nextID  int64
	classes map[Class]int64 // course id by class
}

type memCourse struct {
	Course
	files map[string]CourseFile // by path
}

func newMemCourses(now time.Time) memCourses {
	m := memCourses{byID: map[int64]*memCourse{}, classes: map[Class]int64{}}
	m.add(DefaultCourse, "", now)
	return m
}

func (m *memCourses) add(name, dir string, now time.Time) *memCourse {
	m.nextID++
	c := &memCourse{Course: Course{ID: m.nextID, Name: name, Dir: dir, CreatedAt: now}, files: map[string]CourseFile{}}
	m.byID[c.ID] = c
	return c
}

func (m *memCourses) byName(name string) *memCourse {
	for _, c := range m.byID {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// bare is c without what only Courses fills.
func (c *memCourse) bare() Course {
	out := c.Course
	out.Classes, out.Files, out.Sections = nil, 0, 0
	return out
}

// PutCourse creates the course name, or updates its Dir if it exists (an
// empty dir keeps the stored one), and returns it.
func (m *Memory) PutCourse(ctx context.Context, name, dir string) (Course, error) {
	if err := ctx.Err(); err != nil {
		return Course{}, err
	}
	if err := CheckCourseName(name); err != nil {
		return Course{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.courses.byName(name)
	if c == nil {
		c = m.courses.add(name, dir, m.now())
	} else if dir != "" {
		c.Dir = dir
	}
	return c.bare(), nil
}

// CourseByName returns the course called name, or ErrNotFound.
func (m *Memory) CourseByName(ctx context.Context, name string) (Course, error) {
	if err := ctx.Err(); err != nil {
		return Course{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.courses.byName(name)
	if c == nil {
		return Course{}, fmt.Errorf("%w: course %s", ErrNotFound, name)
	}
	return c.bare(), nil
}

// CourseFor returns the course class c searches: the one bound to its
// channel, else the one bound to its workspace, else the default course.
func (m *Memory) CourseFor(ctx context.Context, c Class) (Course, error) {
	if err := ctx.Err(); err != nil {
		return Course{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if id, ok := m.courses.classes[c]; ok {
		return m.courses.byID[id].bare(), nil
	}
	if id, ok := m.courses.classes[Class{Platform: c.Platform, Workspace: c.Workspace}]; ok {
		return m.courses.byID[id].bare(), nil
	}
	if d := m.courses.byName(DefaultCourse); d != nil {
		return d.bare(), nil
	}
	return Course{}, fmt.Errorf("%w: course of %s", ErrNotFound, c)
}

// Courses returns every course by name, with its classes and its file and
// section counts.
func (m *Memory) Courses(ctx context.Context) ([]Course, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Course
	for _, c := range m.courses.byID {
		co := c.bare()
		co.Files = len(c.files)
		for _, f := range c.files {
			co.Sections += len(f.Sections)
		}
		for cl, id := range m.courses.classes {
			if id == c.ID {
				co.Classes = append(co.Classes, cl)
			}
		}
		sort.Slice(co.Classes, func(i, j int) bool {
			a, b := co.Classes[i], co.Classes[j]
			return a.Platform < b.Platform || a.Platform == b.Platform &&
				(a.Workspace < b.Workspace || a.Workspace == b.Workspace && a.Channel < b.Channel)
		})
		out = append(out, co)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// RemoveCourse deletes the course name, its notes and its classes'
// bindings. It returns ErrNotFound if there is no such course, and
// ErrInvalid for the default course.
func (m *Memory) RemoveCourse(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if name == DefaultCourse {
		return fmt.Errorf("%w: the default course can't be removed", ErrInvalid)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.courses.byName(name)
	if c == nil {
		return fmt.Errorf("%w: course %s", ErrNotFound, name)
	}
	delete(m.courses.byID, c.ID)
	for cl, id := range m.courses.classes {
		if id == c.ID {
			delete(m.courses.classes, cl)
		}
	}
	return nil
}

// BindCourse makes class c search the course name; a class bound to
// another course moves. It returns ErrNotFound if there is no such course.
func (m *Memory) BindCourse(ctx context.Context, name string, c Class) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := c.check(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	co := m.courses.byName(name)
	if co == nil {
		return fmt.Errorf("%w: course %s", ErrNotFound, name)
	}
	m.courses.classes[c] = co.ID
	return nil
}

// UnbindCourse removes class c's own binding, if any, and reports whether
// there was one.
func (m *Memory) UnbindCourse(ctx context.Context, c Class) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if err := c.check(); err != nil {
		return false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.courses.classes[c]
	delete(m.courses.classes, c)
	return ok, nil
}

// course returns the course with id, or ErrNotFound; m.mu must be held.
func (m *Memory) course(id int64) (*memCourse, error) {
	c, ok := m.courses.byID[id]
	if !ok {
		return nil, fmt.Errorf("%w: course %d", ErrNotFound, id)
	}
	return c, nil
}

// CourseHashes returns the content hash of every file indexed in course, by path.
func (m *Memory) CourseHashes(ctx context.Context, course int64) (map[string]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]string)
	if c, ok := m.courses.byID[course]; ok {
		for p, f := range c.files {
			out[p] = f.Hash
		}
	}
	return out, nil
}

// ReplaceCourseFile stores f and its sections in course, in place of what
// was indexed there for f.Path.
func (m *Memory) ReplaceCourseFile(ctx context.Context, course int64, f CourseFile) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkCourseFile(f); err != nil {
		return err
	}
	f.Sections = append([]Section(nil), f.Sections...)
	m.mu.Lock()
	defer m.mu.Unlock()
	c, err := m.course(course)
	if err != nil {
		return err
	}
	c.files[f.Path] = f
	return nil
}

// RemoveCourseFiles removes the files of course at paths and their sections.
func (m *Memory) RemoveCourseFiles(ctx context.Context, course int64, paths []string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if c, ok := m.courses.byID[course]; ok {
		for _, p := range paths {
			delete(c.files, p)
		}
	}
	return nil
}

// SetCourseIndexed records that course's notes were indexed now.
func (m *Memory) SetCourseIndexed(ctx context.Context, course int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	c, err := m.course(course)
	if err != nil {
		return err
	}
	c.IndexedAt = m.now()
	return nil
}

// SearchCourse returns up to limit sections of course that answer query,
// best first, ranked as PostgreSQL's store ranks them (rankSections);
// sections under MinConfidence are left out. It never returns another
// course's sections.
func (m *Memory) SearchCourse(ctx context.Context, course int64, query string, limit int) ([]CourseHit, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, nil
	}
	m.mu.Lock()
	var sections []Section
	if c, ok := m.courses.byID[course]; ok {
		for _, f := range c.files {
			sections = append(sections, f.Sections...)
		}
	}
	m.mu.Unlock()
	return rankSections(sections, query, limit), nil
}

// AddAskTurn remembers one answered /ask.
func (m *Memory) AddAskTurn(ctx context.Context, t AskTurn) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := t.check(); err != nil {
		return err
	}
	if t.At.IsZero() {
		t.At = m.now()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.stillTheirs(t.Platform, t.Via, t.User) {
		return nil // forgotten meanwhile: nothing to remember
	}
	m.asks = append(m.asks, t)
	return nil
}

// AskTurns returns the last limit turns of key answered at or after since,
// oldest first.
func (m *Memory) AskTurns(ctx context.Context, key AskKey, since time.Time, limit int) ([]AskTurn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, nil
	}
	m.mu.Lock()
	var turns []AskTurn
	for _, t := range m.asks {
		if t.AskKey == key && !t.At.Before(since) {
			turns = append(turns, t)
		}
	}
	m.mu.Unlock()
	sort.SliceStable(turns, func(i, j int) bool { return turns[i].At.Before(turns[j].At) })
	if len(turns) > limit {
		turns = turns[len(turns)-limit:]
	}
	return turns, nil
}

// PurgeAskTurns deletes the remembered turns answered before olderThan and
// returns how many it deleted.
func (m *Memory) PurgeAskTurns(ctx context.Context, olderThan time.Time) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	before := len(m.asks)
	m.asks = slices.DeleteFunc(m.asks, func(t AskTurn) bool { return t.At.Before(olderThan) })
	return int64(before - len(m.asks)), nil
}
