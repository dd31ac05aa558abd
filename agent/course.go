package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// SearchCourseTool is the name of the tool NewSearchCourseTool makes.
const SearchCourseTool = "search_course"

// Bounds on what the model may ask of search_course.
const (
	// MaxQueryRunes bounds a search query; a longer one is cut there, at a
	// word boundary when there is one.
	MaxQueryRunes = 500
	// MaxSearchResults bounds the passages one search shows the model.
	MaxSearchResults = 8
	// MaxSearches bounds the searches of one Run; a search past it is not
	// made and the model is told SearchLimitText.
	MaxSearches = 3
)

// MinConfidence is the confidence below which a passage does not answer the
// question: search_course then says NoAnswerText, and the offline model
// declines. It is shared with the bot and the store, which set
// [Passage.Confidence].
const MinConfidence = 0.5

// strongConfidence is where a match stops being "partial" and is "strong".
const strongConfidence = 0.8

// Texts search_course gives the model.
const (
	// NoAnswerText is the result when no passage is at least MinConfidence.
	NoAnswerText = "No section of the course notes answers this."
	// SearchFailedText is the result when the search itself failed (the
	// error is logged, never shown to the model).
	SearchFailedText = "error: the course notes can't be searched right now. " +
		"Tell the student you could not look it up, and suggest asking again later or asking the teacher."
	// SearchLimitText is the result of a search past MaxSearches in one Run.
	SearchLimitText = "search limit reached; answer from what you found."
)

// noAnswerHint follows NoAnswerText in search_course's result.
const noAnswerHint = " Search again with other words, or tell the student the course notes don't say."

// Passage is one section of the course notes as the model sees it.
type Passage struct {
	Citation   string  // how an answer cites it: "syllabus.md › Grading"
	Text       string  // the section's text
	Score      float64 // the search's score, higher is better
	Confidence float64 // how well it answers the query, in [0, 1]; below MinConfidence it does not
}

// Match says in a word how well p matched: "strong", "partial" (at least
// MinConfidence) or "weak".
func (p Passage) Match() string {
	switch {
	case p.Confidence >= strongConfidence:
		return "strong"
	case p.Confidence >= MinConfidence:
		return "partial"
	default:
		return "weak"
	}
}

// NewSearchCourseTool returns the search_course tool: the model passes
// {"query": "..."} and gets back the passages search finds, formatted by
// FormatPassages, at most MaxSearchResults of them; or NoAnswerText when
// none is at least MinConfidence. A query is cut to MaxQueryRunes. A Run
// makes at most MaxSearches searches. search is called from the goroutine
// running Run and must honour ctx; when it fails the model is told
// SearchFailedText and the error goes to the Runner's log.
func NewSearchCourseTool(search func(ctx context.Context, query string) ([]Passage, error)) Tool {
	return Tool{
		Name: SearchCourseTool,
		Description: "Search the teacher's course notes (syllabus, schedule, policies, FAQ). " +
			"Returns the best matching sections, each headed by its citation and how well it matches (strong, partial or weak), " +
			"or says that no section answers the search. " +
			"Use keywords from the student's question, e.g. \"assignment 2 deadline\". " +
			"If the results don't answer the question, search again with other words (a synonym, the term the notes likely use); " +
			"at most " + strconv.Itoa(MaxSearches) + " searches per question. If no search finds it, say the course notes don't say.",
		Parameters:  json.RawMessage(`{"type":"object","properties":{"query":{"type":"string","description":"words to search the course notes for (at most ` + strconv.Itoa(MaxQueryRunes) + ` characters)"}},"required":["query"]}`),
		FailureText: SearchFailedText,
		MaxCalls:    MaxSearches,
		LimitText:   SearchLimitText,
		Func: func(ctx context.Context, arguments json.RawMessage) (string, error) {
			var args struct {
				Query string `json:"query"`
			}
			if err := json.Unmarshal(arguments, &args); err != nil {
				return "", &ArgumentError{Msg: `arguments must be {"query": "..."}`}
			}
			query := cutQuery(args.Query, MaxQueryRunes)
			if query == "" {
				return "", &ArgumentError{Msg: "query is empty: pass the words to search for"}
			}
			ps, err := search(ctx, query)
			if err != nil {
				return "", fmt.Errorf("searching the course notes: %w", err)
			}
			if !anyConfident(ps) {
				return NoAnswerText + noAnswerHint, nil
			}
			return FormatPassages(ps[:min(len(ps), MaxSearchResults)]), nil
		},
	}
}

// cutQuery trims q and cuts it to at most n runes, at the last space
// before the cut when there is one.
func cutQuery(q string, n int) string {
	q = strings.TrimSpace(q)
	if utf8.RuneCountInString(q) <= n {
		return q
	}
	r := []rune(q)[:n]
	if i := strings.LastIndexFunc(string(r), unicode.IsSpace); i > 0 {
		return strings.TrimSpace(string(r)[:i])
	}
	return string(r)
}

func anyConfident(ps []Passage) bool {
	for _, p := range ps {
		if p.Confidence >= MinConfidence {
			return true
		}
	}
	return false
}

// FormatPassages renders passages for the model (and for `classbot course
// search`), separated by blank lines; NoAnswerText when there are none. Each
// passage is a header line
//
//	[n] "citation" (match: strong, confidence 0.92, score 1.500)
//
// and its text. The citation is quoted as a Go string, so that no file name
// (a quote, a newline, a control character) can end the header or start a
// line of its own; a text line that starts with '[' or '\' gets a '\' in
// front, so that no text can pass for a header. ParsePassages reads it back.
func FormatPassages(ps []Passage) string {
	if len(ps) == 0 {
		return NoAnswerText
	}
	var b strings.Builder
	for i, p := range ps {
		if i > 0 {
			b.WriteString("\n\n")
		}
		fmt.Fprintf(&b, "[%d] %s (match: %s, confidence %s, score %s)", i+1, strconv.Quote(p.Citation), p.Match(),
			strconv.FormatFloat(p.Confidence, 'f', 2, 64), strconv.FormatFloat(p.Score, 'f', 3, 64))
		for line := range strings.Lines(strings.TrimSpace(p.Text)) {
			b.WriteByte('\n')
			if strings.HasPrefix(line, "[") || strings.HasPrefix(line, `\`) {
				b.WriteByte('\\')
			}
			b.WriteString(strings.TrimSuffix(line, "\n"))
		}
	}
	return b.String()
}

var passageHeader = regexp.MustCompile(`^\[(\d+)\] ("(?:[^"\\]|\\.)*") \(match: (?:strong|partial|weak), confidence (\S+), score (\S+)\)$`)

// ParsePassages reads FormatPassages's output back (the confidence to two
// decimals, the score to three); text that is not in that form gives no
// passages.
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
		line = strings.TrimSuffix(line, "\n")
		if m := passageHeader.FindStringSubmatch(line); m != nil && m[1] == strconv.Itoa(len(out)+1) {
			citation, err := strconv.Unquote(m[2])
			if err == nil {
				flush()
				confidence, _ := strconv.ParseFloat(m[3], 64)
				score, _ := strconv.ParseFloat(m[4], 64)
				out = append(out, Passage{Citation: citation, Score: score, Confidence: confidence})
				continue
			}
		}
		body = append(body, strings.TrimPrefix(line, `\`))
	}
	flush()
	return out
}
