package slack

import "strings"

// unescaper undoes Slack's escaping of the three characters it escapes in
// text sent to apps. A strings.Replacer makes one pass and never looks at
// what it has written, so "&amp;lt;" (a typed "&lt;") becomes "&lt;", as if
// &amp; were replaced last.
var unescaper = strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&")

// PlainText turns the text of a slash command, as Slack sends it, into the
// plain text the student typed. Slack escapes a typed &, < and > as &amp;,
// &lt; and &gt;, so every raw < … > in the text is Slack's own markup:
//
//   - a link, <https://x.example|x.example> or <https://x.example>, becomes
//     its label, or its URL when it has no label;
//   - an email link, <mailto:ada@example.com|ada@example.com>, becomes its
//     label, or the address after "mailto:";
//   - a user or channel mention, <@U123|ada> or <#C123|general>, becomes
//     @ada or #general (@U123, #C123 without a label);
//   - a special mention, <!here>, <!channel>, <!everyone>, becomes @here,
//     @channel, @everyone; <!subteam^S1|@team> becomes @team and
//     <!date^…|fallback> its fallback text;
//
// and then, in the text and in each label, &lt; and &gt; become < and >, and
// &amp; becomes & (only these three entities: Slack escapes nothing else).
// The markup is taken apart before the entities are undone, so a typed
// "<!channel>" stays the text <!channel>, never a mention. A < without a
// closing > is kept as text. The result is never longer than s, and valid
// UTF-8 whenever s is (it cuts only at ASCII bytes). It is safe for
// concurrent use.
func PlainText(s string) string {
	if !strings.ContainsAny(s, "<&") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for {
		open := strings.IndexByte(s, '<')
		if open < 0 {
			break
		}
		end := strings.IndexByte(s[open:], '>')
		if end < 0 {
			break
		}
		b.WriteString(unescaper.Replace(s[:open]))
		b.WriteString(plainMarkup(s[open+1 : open+end]))
		s = s[open+end+1:]
	}
	b.WriteString(unescaper.Replace(s))
	return b.String()
}

// plainMarkup returns the plain text of one piece of Slack markup, the part
// between < and >.
func plainMarkup(m string) string {
	target, label, _ := strings.Cut(m, "|")
	target, label = unescaper.Replace(target), unescaper.Replace(label)
	switch {
	case strings.HasPrefix(target, "@"), strings.HasPrefix(target, "#"):
		if label != "" {
			return target[:1] + strings.TrimPrefix(label, target[:1])
		}
		return target
	case strings.HasPrefix(target, "!"):
		name, _, _ := strings.Cut(target[1:], "^")
		switch name {
		case "here", "channel", "everyone":
			return "@" + name
		}
		if label != "" {
			return label
		}
		if name == "date" {
			return ""
		}
		return "@" + name
	case label != "":
		return label
	default:
		return strings.TrimPrefix(target, "mailto:")
	}
}
