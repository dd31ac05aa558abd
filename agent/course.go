package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// SearchCourseTool is the name of the tool NewSearchCourseTool makes.
const SearchCourseTool = "search_course"

// Passage is one section of the course notes as the model sees it.
type Passage struct {
	Citation string  // how an answer cites it: "syllabus.md › Grading"
	Text     string  // the section's text
	Score    float64 // the search's score, higher is better
}

// NoPassagesText is the search_course result when nothing matched.
const NoPassagesText = "No section of the course notes matches this search."

// NewSearchCourseTool returns the search_course tool: the model passes
// {"query": "..."} and gets back the passages search finds, formatted by
// FormatPassages. search is called from the goroutine running Run and
// must honour ctx; its error is shown to the model (see Runner.Run).
func NewSearchCourseTool(search func(ctx context.Context, query string) ([]Passage, error)) Tool {
	return Tool{
		Name: SearchCourseTool,
		Description: "Search the teacher's course notes (syllabus, schedule, policies, FAQ). " +
			"Returns the best matching sections, each headed by its citation. " +
			"Use keywords from the student's question, e.g. \"assignment 2 deadline\".",
		Parameters: json.RawMessage(`{"type":"object","properties":{"query":{"type":"string","description":"words to search the course notes for"}},"required":["query"]}`),
		Func: func(ctx context.Context, arguments json.RawMessage) (string, error) {
			var args struct {
				Query string `json:"query"`
			}
			if err := json.Unmarshal(arguments, &args); err != nil {
				return "", fmt.Errorf("arguments must be {\"query\": \"...\"}: %w", err)
			}
			if strings.TrimSpace(args.Query) == "" {
				return "", errors.New("query is empty: pass the words to search for")
			}
			ps, err := search(ctx, args.Query)
			if err != nil {
				return "", fmt.Errorf("searching the course notes: %w", err)
			}
			return FormatPassages(ps), nil
		},
	}
}

// FormatPassages renders passages for the model (and for `classbot course
// search`): each one a header line "[n] citation (score s)" and its text,
// separated by blank lines; NoPassagesText when there are none.
func FormatPassages(ps []Passage) string {
	if len(ps) == 0 {
		return NoPassagesText
	}
	var b strings.Builder
	for i, p := range ps {
		if i > 0 {
			b.WriteString("\n\n")
		}
		fmt.Fprintf(&b, "[%d] %s (score %.3f)\n%s", i+1, p.Citation, p.Score, strings.TrimSpace(p.Text))
	}
	return b.String()
}

var passageHeader = regexp.MustCompile(`^\[(\d+)\] (.+) \(score (-?[0-9.]+)\)$`)

// ParsePassages reads FormatPassages's output back; text that is not in
// that form gives no passages.
func ParsePassages(s string) []Passage {
	var out []Passage
	var body []string
	flush := func() {
		if len(out) > 0 {
			out[len(out)-1].Text = strings.TrimSpace(strings.Join(body, "\n"))
		}
		body = body[:0]
	}
	for line := range strings.Lines(s) {
		line = strings.TrimRight(line, "\n")
		if m := passageHeader.FindStringSubmatch(line); m != nil && m[1] == strconv.Itoa(len(out)+1) {
			flush()
			score, _ := strconv.ParseFloat(m[3], 64)
			out = append(out, Passage{Citation: m[2], Score: score})
			continue
		}
		body = append(body, line)
	}
	flush()
	return out
}
