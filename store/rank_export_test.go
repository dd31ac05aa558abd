package store

// Stem and TrigramSimilarity let the tests compare the ranking's word
// handling with PostgreSQL's.
var (
	Stem              = stem
	TrigramSimilarity = trigramSimilarity
)
