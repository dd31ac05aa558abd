package store

import (
	"context"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// rankStatsQuery reads the course's section count and mean field lengths;
// rankSynonymsQuery the text of its synonyms file.
const (
	rankStatsQuery    = `SELECT sections, title_len, body_len FROM course_stats`
	rankSynonymsQuery = `SELECT coalesce(string_agg(body, E'\n' ORDER BY seq), '') FROM course_sections WHERE path = $1`
)

// rankTermsQuery returns, for each lexeme of $1, how many sections contain
// it and, when none does and it may be corrected ($2), the vocabulary's
// closest lexemes by trigrams ("lexeme:df"), served by the trigram index.
const rankTermsQuery = `
SELECT q.l, coalesce(t.df, 0),
       CASE WHEN t.df IS NULL AND q.l = ANY($2) THEN ARRAY(
           SELECT s.lexeme || ':' || s.df FROM course_terms s
           WHERE s.lexeme % q.l ORDER BY s.lexeme <-> q.l, s.lexeme LIMIT 5) END
FROM unnest($1::text[]) q(l) LEFT JOIN course_terms t ON t.lexeme = q.l`

// searchCourseQuery finds the candidates: the sections that contain any
// of the query's lexemes ($1, a tsquery of ORs, served by the GIN index on
// tsv), the rankCandidates best by ts_rank, each with its field lengths
// and the query's lexemes in it with the weight of each occurrence
// ("lexeme:AAB": twice in the title, once in the text). The real ranking
// is BM25F in Go (rankDocs).
const searchCourseQuery = `
SELECT path, seq, heading, body, title_len, body_len,
       ARRAY(SELECT u.lexeme || ':' || array_to_string(u.weights, '') FROM unnest(tsv) u WHERE u.lexeme = ANY($2))
FROM course_sections
WHERE tsv @@ $1::tsquery AND path <> $4
ORDER BY ts_rank(tsv, $1::tsquery) DESC, path, seq
LIMIT $3`

// rankPlan is a question ready for the candidate query.
type rankPlan struct {
	q       rankQuery
	st      *rankStats
	tsquery string   // the known lexemes, ORed
	lexemes []string // the query's lexemes
}

// planSearch reads the statistics and vocabulary the question needs (two
// round trips) and builds its query; ok is false when nothing in the
// question can match.
func (p *Postgres) planSearch(ctx context.Context, query string) (plan rankPlan, ok bool, err error) {
	st := &rankStats{df: map[string]float64{}}
	var synText string
	var n, tl, bl int64
	b := &pgx.Batch{}
	b.Queue(rankStatsQuery).QueryRow(func(r pgx.Row) error { return r.Scan(&n, &tl, &bl) })
	b.Queue(rankSynonymsQuery, SynonymsFile).QueryRow(func(r pgx.Row) error { return r.Scan(&synText) })
	if err := p.pool.SendBatch(ctx, b).Close(); err != nil {
		return plan, false, err
	}
	st.sections = float64(n)
	if n > 0 {
		st.avgLen = [2]float64{float64(tl) / float64(n), float64(bl) / float64(n)}
	}
	syns := withFile(synText)
	terms := queryTerms(query, syns)
	if len(terms) == 0 || n == 0 {
		return plan, false, nil
	}
	var correctable []string
	for _, t := range terms {
		if len(t.words) == 1 && len([]rune(t.stems[0])) >= minCorrectChars {
			correctable = append(correctable, t.stems[0])
		}
	}
	similar := map[string][]string{}
	rows, err := p.pool.Query(ctx, rankTermsQuery, candidateLexemes(terms, syns), correctable)
	if err != nil {
		return plan, false, err
	}
	var l string
	var df int64
	var near []string
	_, err = pgx.ForEachRow(rows, []any{&l, &df, &near}, func() error {
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
	if err != nil {
		return plan, false, err
	}
	plan.st = st
	plan.q = buildQuery(terms, syns, rankLookup{stats: st, similar: func(l string) []string { return similar[l] }})
	plan.lexemes = plan.q.lexemes()
	var known []string
	for _, l := range plan.lexemes {
		if st.df[l] > 0 && isWord(l) {
			known = append(known, "'"+l+"'")
		}
	}
	if len(known) == 0 {
		return plan, false, nil
	}
	plan.tsquery = strings.Join(known, " | ")
	return plan, true, nil
}

// isWord says whether l is letters and digits only (safe in a tsquery).
func isWord(l string) bool {
	return l != "" && len(splitWords(l)) == 1 && splitWords(l)[0] == l
}

// searchRanked is SearchCourse's work: plan, fetch candidates, rank in Go.
func (p *Postgres) searchRanked(ctx context.Context, query string, limit int) ([]CourseHit, error) {
	plan, ok, err := p.planSearch(ctx, query)
	if err != nil || !ok {
		return nil, err
	}
	rows, err := p.pool.Query(ctx, searchCourseQuery, plan.tsquery, plan.lexemes, rankCandidates, SynonymsFile)
	if err != nil {
		return nil, err
	}
	var docs []rankDoc
	var s Section
	var seq, tl, bl int32
	var occ []string
	_, err = pgx.ForEachRow(rows, []any{&s.File, &seq, &s.Heading, &s.Text, &tl, &bl, &occ}, func() error {
		s.Seq = int(seq)
		d := rankDoc{Section: s, lens: [2]float64{float64(tl), float64(bl)}, tf: make(map[string][3]float64, len(occ))}
		for _, o := range occ {
			i := strings.LastIndexByte(o, ':')
			var c [3]float64
			for _, w := range o[i+1:] {
				switch w {
				case 'A':
					c[fTitle]++
				case 'B':
					c[fBody]++
				case 'C':
					c[fFile]++
				}
			}
			d.tf[o[:i]] = c
		}
		docs = append(docs, d)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return rankDocs(plan.q, docs, plan.st, limit), nil
}
