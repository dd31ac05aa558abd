package store

import (
	"slices"
	"strings"
)

// SynonymsFile is the notes file where a teacher lists the course's own
// synonyms and short forms: one group per line, comma-separated ("lab,
// practical, tutorial"); lines starting with # are comments. The search
// reads it from the index and never returns it as a section.
const SynonymsFile = "synonyms.txt"

// builtinSynonyms are the words and short forms students and teachers use
// for the same things in a course, and forms the english stemmer doesn't
// join ("taught" and "teach").
var builtinSynonyms = []string{
	"homework, hw, assignment, problem set, pset, exercise sheet",
	"exam, midterm, final exam, examination", // not "finals": it stems to "final" (final project, final grade)
	"quiz, quizzes",
	"ta, tas, teaching assistant, teaching staff, course staff, staff",
	"prof, professor, instructor, teacher",
	"due, deadline, due date",
	"late day, extension, late submission, late work",
	"office hours, oh, office hrs",
	"hours, hrs, hr",
	"ops, operations",
	"diff, difference",
	"info, information",
	"repo, repository",
	"env, environment",
	"textbook, book, reading, required text",
	"syllabus, course policies, course information, course info",
	"ppl, people",
	"grade, mark",
	"prereq, prereqs, prerequisite, prerequisites",
	"cheating, plagiarism, academic integrity, academic honesty, academic misconduct",
	"collaborate, collaboration, work together, group work",
	"submit, submission, hand in, turn in, upload",
	"attend, attendance",
	"absent, absence, miss class",
	"forum, piazza, ed, edstem, campuswire, discussion board, zulip, slack, discord, message board",
	"recitation, discussion section, tutorial",
	"regrade, regrading, re grade, regrade request, grade dispute, grade appeal, grading concern",
	"worth, weight, weighted, percentage",
	"penalty, deduction, deducted",
	"enroll, enrolled, enrollment, register, registration",
	"drop, withdraw, withdrawal",
	"online, remote, remotely, virtual, virtually",
	"sick, ill, illness",
	"partner, teammate, group member",
	"chatgpt, copilot, generative ai, llm, gpt",
	"teach, taught",
	"private, privacy",
	"write, wrote, written",
	"choose, chose, chosen",
	"buy, bought, purchase",
	"email, e mail",
	"lecture, class meeting",
	"schedule, calendar",
	"laptop, computer",
	"room, location",
}

// synonyms maps a word's or phrase's stems to the other members of its
// groups, as stems.
type synonyms struct {
	groups map[string][][]string // key: stems joined by spaces
}

var builtinSyns = parseSynonyms(strings.Join(builtinSynonyms, "\n"), nil)

// parseSynonyms reads groups, one per line, comma-separated, onto base
// (nil: nothing). Empty lines and lines starting with # are skipped.
func parseSynonyms(text string, base *synonyms) *synonyms {
	s := &synonyms{groups: map[string][][]string{}}
	if base != nil {
		for k, v := range base.groups {
			s.groups[k] = v
		}
	}
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		var members [][]string
		seen := map[string]bool{}
		for _, m := range strings.Split(line, ",") {
			st := lexemes(m)
			if k := strings.Join(st, " "); len(st) > 0 && len(st) <= 3 && !seen[k] {
				seen[k] = true
				members = append(members, st)
			}
		}
		if len(members) < 2 {
			continue
		}
		for i, m := range members {
			key := strings.Join(m, " ")
			for j, o := range members {
				if j != i && !slices.ContainsFunc(s.groups[key], func(h []string) bool { return slices.Equal(h, o) }) {
					s.groups[key] = append(s.groups[key], o)
				}
			}
		}
	}
	return s
}

// withFile returns the built-in synonyms plus the groups of a synonyms
// file's text.
func withFile(text string) *synonyms {
	if strings.TrimSpace(text) == "" {
		return builtinSyns
	}
	return parseSynonyms(text, builtinSyns)
}

// of returns the members of stems' groups other than stems itself.
func (s *synonyms) of(stems []string) [][]string {
	if s == nil {
		return nil
	}
	return s.groups[strings.Join(stems, " ")]
}

// has says whether stems (a phrase) is a member of a group.
func (s *synonyms) has(stems []string) bool {
	return len(s.of(stems)) > 0
}
