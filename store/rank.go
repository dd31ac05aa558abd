package store

import (
	"math"
	"slices"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/kljensen/snowball/english"
)

// MinConfidence is the confidence under which SearchCourse returns no
// section: the notes probably don't answer the question.
const MinConfidence = 0.5

// minConfidence is MinConfidence; tests of the ranking lower it.
var minConfidence = MinConfidence

// companionShare is the share of MinConfidence a hit needs beside a more
// confident one: once the question is answered (the best hit holds enough
// of its rare words), the sections ranked next are returned too, down to
// this, often the other parts of a long section or its neighbours.
const companionShare = 0.5

// Ranking parameters (BM25F): a section's fields are its heading path
// (title), its text (body) and its file name's words (file).
const (
	rankK1          = 1.2
	rankCandidates  = 200 // sections ranked in Go, taken from the full-text match
	synonymWeight   = 0.8 // a synonym counts this much of the word itself
	correctWeight   = 0.8 // so does a vocabulary word a typo is corrected to
	splitWeight     = 0.9 // and a joined word's two parts ("officehours")
	minSimilarity   = 0.5
	maxCorrections  = 2
	minCorrectChars = 5 // shorter words are not corrected
)

// unknownWeight is the weight in the confidence of a question's word the
// notes never use (nor any synonym or correction of it), as a share of the
// weight of a word only one section uses: general words of a question
// ("penalty", "remotely") are often not in the notes, so a missing word
// counts less than a rare word that is there.
var unknownWeight = 0.8

var (
	fieldWeight = [3]float64{3, 1, 0.5} // title, body, file
	fieldB      = [2]float64{0.5, 0.75} // length normalisation of title and body
)

// pgEnglishStop is PostgreSQL's english stop word list (english.stop):
// the stores drop the same words.
var pgEnglishStop = setOf(`i me my myself we our ours ourselves you your yours yourself yourselves he him his
	himself she her hers herself it its itself they them their theirs themselves what which who whom this that
	these those am is are was were be been being have has had having do does did doing a an the and but if or
	because as until while of at by for with about against between into through during before after above below
	to from up down in out on off over under again further then once here there when where why how all any both
	each few more most other some such no nor not only own same so than too very s t can will just don should now`)

// chatter are words of a question that say nothing about the course: they
// are left out of the query so that they neither find sections nor lower
// the confidence.
var chatter = setOf(`hi hey hello please pls plz thanks thank thx ty guys anyone someone somebody know knows
	wondering wonder question questions tell ok okay um uh like really actually also get gets got getting going
	gonna wanna need needs want wants u ur im ive id ill dont doesnt didnt cant wont isnt arent wasnt whats hows
	wheres whens whos thats theres youre exactly anything something way able possible allowed much many think
	come comes goes put keep keeps still even sure mean happen happens thing things stuff kind lot maybe` +
	// Function words PostgreSQL's short list keeps (from the SMART list):
	// they say how, not what, and a question about the notes' topic
	// should not be declined for using one the notes don't.
	` another without within towards toward upon via per across whether unless though although since yet else
	ever every either neither already always almost rather quite besides anyway whatever whenever wherever`)

// howWords are the words that make "how" ask for an amount ("how long",
// "how often"): after "how" they are the question, not its topic; the
// answer says "2 hours" or "weekly", not "long".
var howWords = setOf(`long often soon far big large old`)

func setOf(words string) map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(words) {
		m[w] = true
	}
	return m
}

// splitWords returns text's words, lower-cased: runs of letters and digits.
func splitWords(text string) []string {
	return strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
}

// stem is the english Snowball stem of a lower-cased word, as PostgreSQL's
// english configuration computes it.
func stem(w string) string {
	if len(w) < 3 {
		return w
	}
	return english.Stem(w, true)
}

// lexemes returns the stems of text's words, stop words left out, in order.
func lexemes(text string) []string {
	var out []string
	for _, w := range splitWords(text) {
		if !pgEnglishStop[w] {
			out = append(out, stem(w))
		}
	}
	return out
}

// rankDoc is one candidate section: its fields' lengths (distinct
// lexemes), how often each query lexeme occurs in each field, and how
// often each pair of query lexemes occurs side by side (stop words
// between them left out), which is how a phrase ("final exam", "office
// hours") is found.
type rankDoc struct {
	Section
	lens  [2]float64
	tf    map[string][3]float64
	pairs map[string][3]float64 // key: two lexemes joined by a space
}

// docFromText builds a rankDoc from a section's text: every lexeme's
// counts, every pair's and the fields' lengths, or (want not nil) only
// the counts of want's lexemes and pairs. The in-memory store computes
// its statistics this way, and both stores count a candidate's query
// lexemes this way.
func docFromText(s Section, want *lexemeSet) rankDoc {
	d := rankDoc{Section: s, tf: map[string][3]float64{}, pairs: map[string][3]float64{}}
	for f, text := range [3]string{s.title(), s.Text, s.fileWords()} {
		prev := ""
		eachWord(text, want, func(w string) {
			if w == "" {
				prev = "" // a word none of want's lexemes can be
				return
			}
			if pgEnglishStop[w] {
				return
			}
			l := stem(w)
			if want == nil || want.lexemes[l] {
				c := d.tf[l]
				c[f]++
				d.tf[l] = c
			}
			if prev != "" {
				k := prev + " " + l
				if want == nil || want.pairs[k] {
					c := d.pairs[k]
					c[f]++
					d.pairs[k] = c
				}
			}
			prev = l
		})
		if want == nil && f < 2 {
			// The field's length: its distinct lexemes, as PostgreSQL's
			// store keeps it.
			for _, c := range d.tf {
				if c[f] > 0 {
					d.lens[f]++
				}
			}
		}
	}
	return d
}

// lexemeSet is the lexemes a query looks for, with their first letters:
// a word whose first letters match none can't stem to one of them (the
// english stemmer changes endings), so it needn't be stemmed.
type lexemeSet struct {
	lexemes  map[string]bool
	prefixes map[string]bool
	pairs    map[string]bool // side by side lexemes of a phrase: "final exam"
}

const stemPrefix = 3

func newLexemeSet(ls []string) *lexemeSet {
	s := &lexemeSet{lexemes: map[string]bool{}, prefixes: map[string]bool{}, pairs: map[string]bool{}}
	for _, l := range ls {
		s.lexemes[l] = true
		s.prefixes[prefixOf(l)] = true
	}
	return s
}

func prefixOf(w string) string {
	n := 0
	for i := range w {
		if n == stemPrefix {
			return w[:i]
		}
		n++
	}
	return w
}

// eachWord calls fn with each of text's words, lower-cased, as
// splitWords returns them; with want, a word that can't stem to one of its
// lexemes is passed as "" (so that fn still sees which words are side by
// side).
func eachWord(text string, want *lexemeSet, fn func(w string)) {
	var buf []byte
	start := -1
	flush := func(end int) {
		w := text[start:end]
		start = -1
		if want != nil {
			var p [stemPrefix * utf8.UTFMax]byte
			n, k := 0, 0
			for _, r := range w {
				if k == stemPrefix {
					break
				}
				n += utf8.EncodeRune(p[n:], unicode.ToLower(r))
				k++
			}
			if k == stemPrefix && !want.prefixes[string(p[:n])] {
				fn("")
				return
			}
		}
		buf = buf[:0]
		for _, r := range w {
			buf = utf8.AppendRune(buf, unicode.ToLower(r))
		}
		fn(string(buf))
	}
	for i, r := range text {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			if start < 0 {
				start = i
			}
		} else if start >= 0 {
			flush(i)
		}
	}
	if start >= 0 {
		flush(len(text))
	}
}

// rankStats are a course's term statistics.
type rankStats struct {
	sections float64
	avgLen   [2]float64
	df       map[string]float64 // sections that contain a lexeme
}

func (st *rankStats) idf(l string) float64 {
	return idf(st.sections, st.df[l])
}

func idf(n, df float64) float64 {
	return math.Log(1 + (n-df+0.5)/(df+0.5))
}

// rankAlt is one way a query word can be found: every lexeme of it in a
// section (one for a word, several for a phrase), counting weight.
type rankAlt struct {
	lexemes []string
	weight  float64
}

// rankGroup is one word (or two-word phrase) of the question and the ways
// it can be found.
type rankGroup struct {
	word string
	alts []rankAlt
	idf  float64
}

// rankQuery is a question ready to score sections.
type rankQuery struct {
	groups []rankGroup
}

// queryTerm is a word of the question kept for ranking.
type queryTerm struct {
	words []string // one word, or two for a phrase found in the synonyms
	stems []string
}

// queryTerms returns the question's words that carry meaning, stop words
// and chatter left out, each stem once; two adjacent words that form a
// phrase of syns become one term.
func queryTerms(query string, syns *synonyms) []queryTerm {
	var words []string
	prev := ""
	for _, w := range splitWords(query) {
		after := prev
		prev = w
		if pgEnglishStop[w] || chatter[w] || (len(w) == 1 && !unicode.IsDigit(rune(w[0]))) ||
			(after == "how" && howWords[w]) {
			continue
		}
		words = append(words, w)
	}
	var out []queryTerm
	seen := map[string]bool{}
	for i := 0; i < len(words); i++ {
		t := queryTerm{words: words[i : i+1], stems: []string{stem(words[i])}}
		if i+1 < len(words) {
			pair := []string{stem(words[i]), stem(words[i+1])}
			if syns.has(pair) {
				t = queryTerm{words: words[i : i+2], stems: pair}
				i++
			}
		}
		key := strings.Join(t.stems, " ")
		if !seen[key] {
			seen[key] = true
			out = append(out, t)
		}
	}
	return out
}

// rankLookup is what building a query needs from a store's vocabulary.
type rankLookup struct {
	stats *rankStats // df holds every lexeme asked for (absent: 0)
	// similar returns vocabulary lexemes close to l (a word not in the
	// notes), by trigram similarity, best first.
	similar func(l string) []string
}

// candidateLexemes returns the lexemes whose statistics building terms'
// query needs: the terms', their synonyms' and the parts of long words.
func candidateLexemes(terms []queryTerm, syns *synonyms) []string {
	set := map[string]bool{}
	for _, t := range terms {
		for _, s := range t.stems {
			set[s] = true
		}
		for _, p := range syns.of(t.stems) {
			for _, s := range p {
				set[s] = true
			}
		}
		if len(t.words) == 1 {
			for _, p := range splits(t.words[0]) {
				set[p[0]], set[p[1]] = true, true
			}
		}
	}
	out := make([]string, 0, len(set))
	for l := range set {
		out = append(out, l)
	}
	sort.Strings(out)
	return out
}

// splits returns the stems of the ways a long word can be cut into two
// words ("officehours": "offic" "hour").
func splits(w string) [][2]string {
	r := []rune(w)
	if len(r) < 7 {
		return nil
	}
	var out [][2]string
	for i := 3; i <= len(r)-3; i++ {
		a, b := string(r[:i]), string(r[i:])
		if pgEnglishStop[a] || pgEnglishStop[b] {
			continue
		}
		out = append(out, [2]string{stem(a), stem(b)})
	}
	return out
}

// buildQuery turns terms into groups with their alternatives: the word,
// its synonyms, corrections of a word not in the notes, and the parts of a
// joined word. Each group weighs as much as its rarest known way of being
// found; a word the notes never use weighs unknownWeight.
func buildQuery(terms []queryTerm, syns *synonyms, lk rankLookup) rankQuery {
	st := lk.stats
	known := func(ls []string) bool {
		for _, l := range ls {
			if st.df[l] == 0 {
				return false
			}
		}
		return true
	}
	var q rankQuery
	for _, t := range terms {
		g := rankGroup{word: strings.Join(t.words, " ")}
		g.alts = append(g.alts, rankAlt{lexemes: t.stems, weight: 1})
		for _, p := range syns.of(t.stems) {
			if known(p) {
				g.alts = append(g.alts, rankAlt{lexemes: p, weight: synonymWeight})
			}
		}
		if len(t.words) == 1 && !known(t.stems) {
			if len(g.alts) == 1 && len([]rune(t.stems[0])) >= minCorrectChars && lk.similar != nil {
				n := 0
				for _, c := range lk.similar(t.stems[0]) {
					if n == maxCorrections {
						break
					}
					if trigramSimilarity(c, t.stems[0]) >= minSimilarity && st.df[c] > 0 {
						g.alts = append(g.alts, rankAlt{lexemes: []string{c}, weight: correctWeight})
						n++
					}
				}
			}
			for _, p := range splits(t.words[0]) {
				if known(p[:]) {
					g.alts = append(g.alts, rankAlt{lexemes: []string{p[0], p[1]}, weight: splitWeight})
					break
				}
			}
		}
		// The group weighs as much as the word itself when the notes use
		// it, else as its rarest alternative, else as a word never seen.
		g.idf = -1
		for i, a := range g.alts {
			if !known(a.lexemes) {
				continue
			}
			v := 0.0
			for _, l := range a.lexemes {
				v = max(v, st.idf(l))
			}
			if i == 0 {
				g.idf = v
				break
			}
			g.idf = max(g.idf, v)
		}
		switch {
		case g.idf >= 0:
		case isNumber(g.word):
			// A number the notes never use is most often a course or
			// room number written another way ("4530" for "CS4530"):
			// it neither finds a section nor lowers the confidence.
			g.idf = 0
		default:
			g.idf = unknownWeight * idf(st.sections, 1)
		}
		q.groups = append(q.groups, g)
	}
	return q
}

// idf returns the sum of a's lexemes' idf, and whether the notes use
// every one of them.
func (a rankAlt) idf(st *rankStats) (float64, bool) {
	w, known := 0.0, true
	for _, l := range a.lexemes {
		w += st.idf(l)
		known = known && st.df[l] > 0
	}
	return w, known
}

// isNumber reports a word of digits only.
func isNumber(w string) bool {
	return w != "" && strings.Trim(w, "0123456789") == ""
}

// pairs returns the side-by-side lexeme pairs of the query's phrases
// (every alternative of more than one lexeme), joined by a space.
func (q rankQuery) pairs() []string {
	var out []string
	for _, g := range q.groups {
		for _, a := range g.alts {
			for i := 1; i < len(a.lexemes); i++ {
				out = append(out, a.lexemes[i-1]+" "+a.lexemes[i])
			}
		}
	}
	return out
}

// want is the lexemes and pairs a candidate's text is counted for.
func (q rankQuery) want() *lexemeSet {
	s := newLexemeSet(q.lexemes())
	for _, p := range q.pairs() {
		s.pairs[p] = true
	}
	return s
}

// lexemes returns every lexeme the query can match, sorted.
func (q rankQuery) lexemes() []string {
	var out []string
	for _, g := range q.groups {
		for _, a := range g.alts {
			out = append(out, a.lexemes...)
		}
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// score returns d's BM25F score for q and the confidence that d answers
// it: the share of the question's words, weighted by rarity, that d
// contains (a synonym or a correction counts less than the word).
func (q rankQuery) score(d *rankDoc, st *rankStats) (score, confidence float64) {
	var covered, total float64
	for _, g := range q.groups {
		best, bestW := 0.0, 0.0
		// Another way of finding the word never weighs more than the word
		// itself: "final exam" (two lexemes) is not worth more than
		// "midterm" for a question about the midterm.
		own := math.Inf(1)
		if len(g.alts) > 0 && g.idf >= 0 {
			if w, ok := g.alts[0].idf(st); ok {
				own = w
			}
		}
		for i, a := range g.alts {
			// A word's counts, or a phrase's: how often its words are
			// side by side (the least of its pairs').
			var tf [3]float64
			if len(a.lexemes) == 1 {
				tf = d.tf[a.lexemes[0]]
			}
			for i := 1; i < len(a.lexemes); i++ {
				c := d.pairs[a.lexemes[i-1]+" "+a.lexemes[i]]
				for f := range tf {
					if i == 1 || c[f] < tf[f] {
						tf[f] = c[f]
					}
				}
			}
			pseudo := 0.0
			for f := range tf {
				if tf[f] == 0 {
					continue
				}
				norm := 1.0
				if f < 2 && st.avgLen[f] > 0 {
					norm = 1 - fieldB[f] + fieldB[f]*d.lens[f]/st.avgLen[f]
				}
				pseudo += fieldWeight[f] * tf[f] / norm
			}
			if pseudo == 0 {
				continue
			}
			w, _ := a.idf(st)
			if i > 0 {
				w = min(w, own)
			}
			s := a.weight * w * pseudo * (rankK1 + 1) / (pseudo + rankK1)
			if s > best {
				best = s
			}
			bestW = max(bestW, a.weight)
		}
		score += best
		covered += g.idf * bestW
		total += g.idf
	}
	if total > 0 {
		confidence = covered / total
	}
	return score, confidence
}

// rankDocs scores docs for q and returns the best limit, best first (ties:
// by file, then by position), of at least companionShare of MinConfidence;
// nothing when none of them reaches MinConfidence.
func rankDocs(q rankQuery, docs []rankDoc, st *rankStats, limit int) []CourseHit {
	var hits []CourseHit
	best := 0.0
	for i := range docs {
		s, c := q.score(&docs[i], st)
		if s == 0 || c < minConfidence*companionShare {
			continue
		}
		best = max(best, c)
		hits = append(hits, CourseHit{Section: docs[i].Section, Score: s, Confidence: c})
	}
	if best < minConfidence {
		return nil
	}
	sortHits(hits)
	hits = joinParts(hits, limit)
	if len(hits) > limit {
		hits = hits[:limit]
	}
	// What is returned must itself answer: a confident section ranked
	// below the limit doesn't make the ones above it an answer (the
	// agent, which reads only these, would decline anyway).
	for _, h := range hits {
		if h.Confidence >= minConfidence {
			return hits
		}
	}
	return nil
}

// joinParts joins the parts of one cut section among the best limit hits
// into the best one's hit, in the order of the notes: the part a
// question's words find is often next to the part that answers it, and
// one citation is given once. The slots freed go to the next sections.
func joinParts(hits []CourseHit, limit int) []CourseHit {
	var out []CourseHit
	parts := map[string][]int{} // citation -> indexes into hits, by rank
	taken := 0
	for i, h := range hits {
		c := h.Citation()
		if _, ok := parts[c]; !ok {
			if len(parts) == limit {
				continue
			}
			out = append(out, h)
		} else if taken == limit {
			continue
		}
		parts[c] = append(parts[c], i)
		taken++
	}
	for i := range out {
		idx := parts[out[i].Citation()]
		if len(idx) < 2 {
			continue
		}
		secs := make([]Section, len(idx))
		for j, k := range idx {
			secs[j] = hits[k].Section
		}
		sort.Slice(secs, func(a, b int) bool { return secs[a].Seq < secs[b].Seq })
		var b strings.Builder
		b.WriteString(secs[0].Text)
		for j := 1; j < len(secs); j++ {
			next := secs[j].Text
			if secs[j].Seq == secs[j-1].Seq+1 {
				next = next[overlap(secs[j-1].Text, next):]
				b.WriteString("\n")
			} else {
				b.WriteString("\n…\n")
			}
			b.WriteString(strings.TrimLeft(next, " \n"))
		}
		out[i].Text = b.String()
	}
	return out
}

// overlap returns the length of the longest end of a that starts b (the
// text a part repeats of the part before it).
func overlap(a, b string) int {
	for n := min(len(a), len(b), 4*SectionOverlapChars); n > 0; n-- {
		if strings.HasSuffix(a, b[:n]) {
			return n
		}
	}
	return 0
}

// trigrams returns the set of pg_trgm's trigrams of a word: the word,
// lower-cased, with two spaces before it and one after, cut in threes.
func trigrams(w string) map[string]bool {
	r := []rune("  " + strings.ToLower(w) + " ")
	out := make(map[string]bool, len(r))
	for i := 0; i+3 <= len(r); i++ {
		out[string(r[i:i+3])] = true
	}
	return out
}

// trigramSimilarity is pg_trgm's similarity of two words: shared trigrams
// over all trigrams.
func trigramSimilarity(a, b string) float64 {
	ta, tb := trigrams(a), trigrams(b)
	shared := 0
	for t := range ta {
		if tb[t] {
			shared++
		}
	}
	all := len(ta) + len(tb) - shared
	if all == 0 {
		return 0
	}
	return float64(shared) / float64(all)
}

// rankSections ranks sections for query the way the PostgreSQL store
// does, computing the statistics from sections themselves (the in-memory
// store). The synonyms file's sections supply synonyms and are never hits.
func rankSections(sections []Section, query string, limit int) []CourseHit {
	var synText []string
	docs := make([]rankDoc, 0, len(sections))
	st := &rankStats{df: map[string]float64{}}
	sort.Slice(sections, func(i, j int) bool {
		if sections[i].File != sections[j].File {
			return sections[i].File < sections[j].File
		}
		return sections[i].Seq < sections[j].Seq
	})
	for _, s := range sections {
		if s.File == SynonymsFile {
			synText = append(synText, s.Text)
			continue
		}
		d := docFromText(s, nil)
		for l := range d.tf {
			st.df[l]++
		}
		st.avgLen[0] += d.lens[0]
		st.avgLen[1] += d.lens[1]
		docs = append(docs, d)
	}
	st.sections = float64(len(docs))
	if len(docs) > 0 {
		st.avgLen[0] /= st.sections
		st.avgLen[1] /= st.sections
	}
	syns := withFile(strings.Join(synText, "\n"))
	terms := queryTerms(query, syns)
	if len(terms) == 0 {
		return nil
	}
	q := buildQuery(terms, syns, rankLookup{stats: st, similar: func(l string) []string {
		type cand struct {
			l string
			s float64
		}
		var cs []cand
		for v := range st.df {
			if s := trigramSimilarity(v, l); s >= 0.3 {
				cs = append(cs, cand{v, s})
			}
		}
		sort.Slice(cs, func(i, j int) bool {
			if cs[i].s != cs[j].s {
				return cs[i].s > cs[j].s
			}
			return cs[i].l < cs[j].l
		})
		var out []string
		for _, c := range cs[:min(len(cs), 5)] {
			out = append(out, c.l)
		}
		return out
	}})
	return rankDocs(q, docs, st, limit)
}
