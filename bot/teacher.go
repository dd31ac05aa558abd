package bot

import "strings"

// Teacher-only commands are checked here, on the server, whatever the
// platform showed the user: a command's options and text never make
// anyone a teacher.

// notTeacherText is what a student who types a teacher-only command sees.
// It says nothing about the class or its students.
const notTeacherText = "Sorry, only the class's teachers can use this command. If you are one, ask whoever runs classbot to add your user id to TEACHER_USER_IDS."

func (b *Bot) setupTeachers(opts Options) {
	b.teachers = make(map[string]bool, len(opts.Teachers))
	for _, id := range opts.Teachers {
		if id = strings.TrimSpace(id); id != "" {
			b.teachers[id] = true
		}
	}
	b.roster, b.admin, b.reindex = opts.Roster, opts.Courses, opts.ReindexFunc
}

// IsTeacher reports whether c was typed by a teacher: a user listed in
// Options.Teachers, or on Discord a member whose permissions include
// Manage Server (Command.Admin, from Discord's signed payload).
func (b *Bot) IsTeacher(c Command) bool {
	if c.User == "" {
		return false
	}
	if c.Admin && c.Platform == PlatformDiscord && c.Workspace != "" && c.Workspace != "dm" {
		return true
	}
	return b.teachers[c.User]
}

// teacherOnly returns a *UserError for a student, nil for a teacher.
func (b *Bot) teacherOnly(c Command) error {
	if b.IsTeacher(c) {
		return nil
	}
	return &UserError{Msg: notTeacherText}
}
