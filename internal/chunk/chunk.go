// Package chunk cuts a long answer into the messages a chat platform
// accepts. Slack and Discord count a message's length differently (Slack
// after escaping, Discord in UTF-16 code units) and cap the number of
// messages differently; the cutting rules are the same, and live here once.
package chunk

import "strings"

// Ellipsis ends the last part of a text that needed more than the allowed
// number of parts.
const Ellipsis = "…"

// Split cuts text into parts of at most max units each, where a rune costs
// cost(r) units. It prefers to cut at a line break, then at a space or tab,
// and cuts inside a word only when a word alone is too long; never inside a
// rune. Parts are trimmed of surrounding white space.
//
// It returns at most maxParts parts (maxParts <= 0: no limit). When the text
// needs more, the last part is cut short and ends with Ellipsis (which costs
// cost('…') units, counted within max). It never returns an empty list:
// empty text gives one empty part. max must be at least 2.
func Split(text string, max, maxParts int, cost func(rune) int) []string {
	text = strings.TrimSpace(text)
	var parts []string
	for size(text, cost) > max {
		if maxParts > 0 && len(parts) == maxParts-1 {
			room := max - cost([]rune(Ellipsis)[0])
			head := strings.TrimRight(text[:prefixLen(text, room, cost)], " \t\n")
			return append(parts, head+Ellipsis)
		}
		cut := prefixLen(text, max, cost)
		head := text[:cut]
		at, skip := strings.LastIndex(head, "\n"), 1
		if at <= 0 {
			at = strings.LastIndexAny(head, " \t")
		}
		if at <= 0 {
			at, skip = cut, 0
		}
		if p := strings.TrimRight(text[:at], " \t\n"); p != "" {
			parts = append(parts, p)
		}
		text = strings.TrimLeft(text[at+skip:], " \t\n")
	}
	if text != "" || len(parts) == 0 {
		parts = append(parts, text)
	}
	return parts
}

// size is the cost of s.
func size(s string, cost func(rune) int) int {
	n := 0
	for _, r := range s {
		n += cost(r)
	}
	return n
}

// prefixLen returns the length in bytes of the longest prefix of s that
// costs at most n units. It ends on a rune boundary.
func prefixLen(s string, n int, cost func(rune) int) int {
	units := 0
	for i, r := range s {
		units += cost(r)
		if units > n {
			return i
		}
	}
	return len(s)
}
