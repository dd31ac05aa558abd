// Package course embeds classbot's example course: the notes of a small
// programming course (syllabus with grading and late policy, a schedule
// with three assignment deadlines, an exam policy, an FAQ) and an
// evaluation set of questions about it. `classbot demo ask` and
// `classbot course eval` use it when COURSE_DIR is not set.
package course

import "embed"

// Notes holds the course's Markdown files.
//
//go:embed *.md
var Notes embed.FS

// Eval is eval.jsonl: one JSON object a line, {"question": "...",
// "expect": "file.md › Heading › Sub-heading"}, with "expect" empty for
// questions the notes do not answer.
//
//go:embed eval.jsonl
var Eval []byte
