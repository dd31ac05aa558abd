package bot

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/classbot/classbot/store"
)

// CourseAdmin is what /course needs from a store: which course a class
// searches, the declared courses, and binding a channel to one.
// *store.Postgres and *store.Memory implement it; it must be safe for
// concurrent use.
type CourseAdmin interface {
	// CourseFor returns the course class c searches (see CourseNotes).
	CourseFor(ctx context.Context, c store.Class) (store.Course, error)
	// Courses returns every course with its file and section counts.
	Courses(ctx context.Context) ([]store.Course, error)
	// BindCourse makes class c search the course name, or returns
	// store.ErrNotFound if there is no such course.
	BindCourse(ctx context.Context, name string, c store.Class) error
}

const (
	courseUnavailableText = "This class has no course notes set up: /ask answers from what the teacher told classbot about the course."
	courseFailedText      = "Sorry, I couldn't look up this class's course just now. Please try again in a minute."
	courseUsageText       = "Type `/course` to see which course this channel's /ask answers from; teachers: `/course use NAME` to switch it to another course, `/course reindex` to re-read its notes."
)

func prepareCourse(b *Bot, c Command) (job, error) {
	use, hasUse := option(c, "use")
	v, reindex := option(c, "reindex")
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "no", "false", "0":
		reindex = false
	}
	if !hasUse && !reindex {
		words := strings.Fields(c.Text)
		switch {
		case len(words) == 0:
		case strings.EqualFold(words[0], "use") && len(words) == 2:
			use, hasUse = words[1], true
		case strings.EqualFold(words[0], "reindex") && len(words) == 1:
			reindex = true
		default:
			return nil, &UserError{Msg: courseUsageText}
		}
	}
	use = strings.TrimSpace(use)
	if reindex {
		hasUse = false
		if err := b.teacherOnly(c); err != nil {
			return nil, err
		}
	}
	if hasUse {
		if err := b.teacherOnly(c); err != nil {
			return nil, err
		}
		if err := store.CheckCourseName(use); err != nil {
			return nil, &UserError{Msg: "A course name has only letters, digits, '-', '_' and '.', such as go101. " + courseUsageText}
		}
	}
	if b.admin == nil {
		return nil, &UserError{Msg: courseUnavailableText}
	}
	cl := store.Class{Platform: c.Platform, Workspace: c.Workspace, Channel: c.Channel}
	teacher := b.IsTeacher(c)
	return func(ctx context.Context, _ bool, tr *Trace) Reply {
		start := time.Now()
		sctx, cancel := context.WithTimeout(ctx, b.storeTimeout)
		defer cancel()
		var r Reply
		switch {
		case reindex:
			r = b.courseReindex(ctx, sctx, cl, tr)
		case hasUse:
			r = b.courseUse(sctx, cl, use, tr)
		default:
			r = b.courseShow(sctx, cl, teacher, tr)
		}
		tr.Stored = time.Now()
		tr.Store = tr.Stored.Sub(start)
		return r
	}, nil
}

// courseShow says which course cl searches; a teacher also hears how to
// re-index it and how to switch.
func (b *Bot) courseShow(ctx context.Context, cl store.Class, teacher bool, tr *Trace) Reply {
	co, err := b.admin.CourseFor(ctx, cl)
	if errors.Is(err, store.ErrNotFound) {
		tr.Outcome = OutcomeOK
		return Reply{Text: courseUnavailableText, Ephemeral: true}
	}
	if err != nil {
		tr.fail(OutcomeStoreError, fmt.Errorf("course of the class: %w", err))
		return Reply{Text: courseFailedText, Ephemeral: true}
	}
	all, err := b.admin.Courses(ctx)
	if err != nil {
		tr.fail(OutcomeStoreError, fmt.Errorf("list courses: %w", err))
		return Reply{Text: courseFailedText, Ephemeral: true}
	}
	var names []string
	for _, x := range all {
		names = append(names, x.Name)
		if x.ID == co.ID {
			co.Files, co.Sections = x.Files, x.Sections
		}
	}
	indexed := "not indexed yet"
	if !co.IndexedAt.IsZero() {
		indexed = "indexed " + co.IndexedAt.UTC().Format("2006-01-02 15:04 UTC")
	}
	var t strings.Builder
	fmt.Fprintf(&t, "/ask in this channel answers from the course %q: %d %s, %d %s, %s.",
		co.Name, co.Files, plural(co.Files, "file", "files"), co.Sections, plural(co.Sections, "section", "sections"), indexed)
	if teacher {
		if b.reindex != nil && co.Dir != "" {
			fmt.Fprintf(&t, "\n\nAfter changing the notes in its folder, /course reindex re-reads them (or run on the server: classbot course index %s).", co.Name)
		} else {
			fmt.Fprintf(&t, "\n\nTo re-index it after changing the notes, run on the server: classbot course index %s --dir FOLDER", co.Name)
		}
		fmt.Fprintf(&t, "\nTo switch this channel to another course: /course use NAME (courses: %s).", strings.Join(names, ", "))
	}
	tr.Outcome = OutcomeOK
	return Reply{Text: t.String(), Ephemeral: true}
}

// courseUse binds cl to the course name.
func (b *Bot) courseUse(ctx context.Context, cl store.Class, name string, tr *Trace) Reply {
	err := b.admin.BindCourse(ctx, name, cl)
	if errors.Is(err, store.ErrNotFound) {
		tr.fail(OutcomeInvalid, err)
		var names []string
		if all, lerr := b.admin.Courses(ctx); lerr == nil {
			for _, x := range all {
				names = append(names, x.Name)
			}
		}
		return Reply{Text: fmt.Sprintf("There is no course named %q. Courses: %s.", name, strings.Join(names, ", ")), Ephemeral: true}
	}
	if err != nil {
		tr.fail(OutcomeStoreError, fmt.Errorf("bind course: %w", err))
		return Reply{Text: "Sorry, I couldn't switch this channel's course just now. Nothing was changed; please try again in a minute.", Ephemeral: true}
	}
	if co, err := b.admin.CourseFor(ctx, cl); err == nil {
		b.courses.put(cl, co.ID, time.Now()) // this process's /ask uses it at once
	}
	tr.Outcome = OutcomeOK
	return Reply{Text: fmt.Sprintf("Done: /ask in this channel now answers from the course %q.", name), Ephemeral: true}
}

// courseReindex re-reads the notes of cl's course from its stored folder
// (ctx bounds the indexing, sctx the lookup).
func (b *Bot) courseReindex(ctx, sctx context.Context, cl store.Class, tr *Trace) Reply {
	co, err := b.admin.CourseFor(sctx, cl)
	if errors.Is(err, store.ErrNotFound) {
		tr.Outcome = OutcomeOK
		return Reply{Text: courseUnavailableText, Ephemeral: true}
	}
	if err != nil {
		tr.fail(OutcomeStoreError, fmt.Errorf("course of the class: %w", err))
		return Reply{Text: courseFailedText, Ephemeral: true}
	}
	if b.reindex == nil || co.Dir == "" {
		tr.Outcome = OutcomeOK
		return Reply{Text: fmt.Sprintf("I don't know where the notes of %q are. On the server, run: classbot course index %s --dir FOLDER", co.Name, co.Name), Ephemeral: true}
	}
	rep, err := b.reindex(ctx, co)
	if err != nil {
		tr.fail(OutcomeError, fmt.Errorf("reindex course %s: %w", co.Name, err))
		return Reply{Text: fmt.Sprintf("Sorry, I couldn't re-index %q from its folder just now; nothing was lost. On the server, `classbot course index %s` says what went wrong.", co.Name, co.Name), Ephemeral: true}
	}
	tr.Outcome = OutcomeOK
	return Reply{Text: fmt.Sprintf("Re-indexed %q: %s.", co.Name, rep), Ephemeral: true}
}
