package store

import (
	"context"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// rankStatsQuery reads the course's section count and mean field lengths;
// rankSynonymsQuery the text of its synonyms file.
const (
	rankStatsQuery = `
SELECT coalesce(sum(sections), 0), coalesce(sum(title_len), 0), coalesce(sum(body_len), 0)
FROM course_stats WHERE course_id = $1`
	rankSynonymsQuery = `
SELECT coalesce(string_agg(body, E'\n' ORDER BY seq), '') FROM course_sections
WHERE course_id = $2 AND path = $1`
)

// rankTermsQuery returns, for each lexeme of $1, how many sections of
// course $3 contain
// it and, when none does and it may be corrected ($2), the vocabulary's
// closest lexemes by trigrams ("lexeme:df"), served by the trigram index.
const rankTermsQuery = `
SELECT q.l, coalesce(t.df, 0),
       CASE WHEN t.df IS NULL AND q.l = ANY($2) THEN ARRAY(
           SELECT s.lexeme || ':' || s.df FROM course_terms s
           WHERE s.course_id = $3 AND lower(s.lexeme) % q.l ORDER BY lower(s.lexeme) <-> q.l, s.lexeme LIMIT 5) END
FROM unnest($1::text[]) q(l) LEFT JOIN course_terms t ON t.course_id = $3 AND t.lexeme = q.l`

// searchCourseQuery finds the candidates: the sections that contain any
// of the query's lexemes ($1, a tsquery of ORs, served by the GIN index on
// tsv), the $2 best by ts_rank, each with its field lengths. The real
// ranking is BM25F in Go (rankDocs), which counts the query's lexemes in
// the candidates' text.
const searchCourseQuery = `
SELECT path, seq, heading, body, title_len, body_len
FROM course_sections
WHERE course_id = $4 AND tsv @@ $1::tsquery AND path <> $3
ORDER BY ts_rank(tsv, $1::tsquery) DESC, path, seq
LIMIT $2`

// searchAllQuery is searchCourseQuery when every match is a candidate
// (the lexemes' section counts add up to at most the limit).
const searchAllQuery = `
SELECT path, seq, heading, body, title_len, body_len
FROM course_sections
WHERE course_id = $4 AND tsv @@ $1::tsquery AND path <> $3
LIMIT $2`

// rankPlan is a question ready for the candidate query.
type rankPlan struct {
	q       rankQuery
	st      *rankStats
	tsquery string   // the known lexemes, ORed
	sql     string   // the candidate query
	lexemes []string // the query's lexemes
}

// planSearch reads the statistics and vocabulary the question needs and
// builds its query; ok is false when nothing in the question can match.
// It takes one round trip, two when the notes have a synonyms file that
// brings words of its own.
func (p *Postgres) planSearch(ctx context.Context, course int64, query string) (plan rankPlan, ok bool, err error) {
	st := &rankStats{df: map[string]float64{}}
	similar := map[string][]string{}
	var synText string
	var n, tl, bl int64
	terms := queryTerms(query, builtinSyns)
	asked := map[string]bool{}
	b := &pgx.Batch{}
	b.Queue(rankStatsQuery, course).QueryRow(func(r pgx.Row) error { return r.Scan(&n, &tl, &bl) })
	b.Queue(rankSynonymsQuery, SynonymsFile, course).QueryRow(func(r pgx.Row) error { return r.Scan(&synText) })
	p.queueTerms(b, course, candidateLexemes(terms, builtinSyns), terms, asked, st, similar)
	if err := p.pool.SendBatch(ctx, b).Close(); err != nil {
		return plan, false, err
	}
	syns := builtinSyns
	if synText != "" {
		syns = withFile(synText)
		terms = queryTerms(query, syns)
		var more []string
		for _, l := range candidateLexemes(terms, syns) {
			if !asked[l] {
				more = append(more, l)
			}
		}
		if len(more) > 0 {
			b := &pgx.Batch{}
			p.queueTerms(b, course, more, terms, asked, st, similar)
			if err := p.pool.SendBatch(ctx, b).Close(); err != nil {
				return plan, false, err
			}
		}
	}
	st.sections = float64(n)
	if n > 0 {
		st.avgLen = [2]float64{float64(tl) / float64(n), float64(bl) / float64(n)}
	}
	if len(terms) == 0 || n == 0 {
		return plan, false, nil
	}
	plan.st = st
	plan.q = buildQuery(terms, syns, rankLookup{stats: st, similar: func(l string) []string { return similar[l] }})
	plan.lexemes = plan.q.lexemes()
	var known []string
	for _, l := range plan.lexemes {
		if st.df[l] > 0 && isWord(l) {
			known = append(known, l)
		}
	}
	if len(known) == 0 {
		return plan, false, nil
	}
	// The candidates are the sections holding the rarest lexemes, up to
	// about maxMatched sections: in a large course a common word would
	// match thousands of sections that its low weight can't lift to the top.
	sort.SliceStable(known, func(i, j int) bool { return st.df[known[i]] < st.df[known[j]] })
	var or []string
	matched := 0.0
	for _, l := range known {
		if len(or) > 0 && matched+st.df[l] > maxMatched {
			break
		}
		matched += st.df[l]
		or = append(or, "'"+l+"'")
	}
	plan.tsquery = strings.Join(or, " | ")
	plan.sql = searchCourseQuery
	if matched <= rankCandidates {
		plan.sql = searchAllQuery
	}
	return plan, true, nil
}

// maxMatched bounds the sections the candidate query ranks by ts_rank.
const maxMatched = 3000

// queueTerms queues rankTermsQuery for lexemes into b; its results go
// into st.df and similar (the corrections of terms' words the notes don't use).
func (p *Postgres) queueTerms(b *pgx.Batch, course int64, lexemes []string, terms []queryTerm, asked map[string]bool, st *rankStats, similar map[string][]string) {
	var correctable []string
	for _, t := range terms {
		if len(t.words) == 1 && len([]rune(t.stems[0])) >= minCorrectChars {
			correctable = append(correctable, t.stems[0])
		}
	}
	for _, l := range lexemes {
		asked[l] = true
	}
	b.Queue(rankTermsQuery, lexemes, correctable, course).Query(func(rows pgx.Rows) error {
		var l string
		var df int64
		var near []string
		_, err := pgx.ForEachRow(rows, []any{&l, &df, &near}, func() error {
			if df > 0 {
				st.df[l] = float64(df)
			}
			for _, c := range near {
				i := strings.LastIndexByte(c, ':')
				cdf, _ := strconv.ParseFloat(c[i+1:], 64)
				st.df[c[:i]] = cdf
				similar[l] = append(similar[l], c[:i])
			}
			return nil
		})
		return err
	})
}

// isWord says whether l is letters and digits only (safe in a tsquery).
func isWord(l string) bool {
	return l != "" && len(splitWords(l)) == 1 && splitWords(l)[0] == l
}

// searchRanked is SearchCourse's work: plan, fetch candidates, rank in Go.
func (p *Postgres) searchRanked(ctx context.Context, course int64, query string, limit int) ([]CourseHit, error) {
	plan, ok, err := p.planSearch(ctx, course, query)
	if err != nil || !ok {
		return nil, err
	}
	rows, err := p.pool.Query(ctx, plan.sql, plan.tsquery, rankCandidates, SynonymsFile, course)
	if err != nil {
		return nil, err
	}
	want := plan.q.want()
	var docs []rankDoc
	var s Section
	var seq, tl, bl int32
	_, err = pgx.ForEachRow(rows, []any{&s.File, &seq, &s.Heading, &s.Text, &tl, &bl}, func() error {
		s.Seq = int(seq)
		d := docFromText(s, want)
		d.lens = [2]float64{float64(tl), float64(bl)}
		docs = append(docs, d)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return rankDocs(plan.q, docs, plan.st, limit), nil
}
