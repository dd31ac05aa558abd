package slacktest

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"strings"
)

// Command reads a recorded slash command (a form body such as
// bot/slack/testdata/register_command.form) and returns its body with
// fields replaced, keeping the recorded order; fields the recording lacks
// are added at the end. Typical replacements: trigger_id, response_url,
// user_id, text.
func Command(file string, fields map[string]string) ([]byte, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pairs := strings.Split(strings.TrimSpace(string(b)), "&")
	seen := map[string]bool{}
	for i, p := range pairs {
		k, _, _ := strings.Cut(p, "=")
		key, err := url.QueryUnescape(k)
		if err != nil {
			return nil, fmt.Errorf("%s: field %d: %w", file, i+1, err)
		}
		if v, ok := fields[key]; ok {
			pairs[i] = k + "=" + url.QueryEscape(v)
			seen[key] = true
		}
	}
	for k, v := range fields {
		if !seen[k] {
			pairs = append(pairs, url.QueryEscape(k)+"="+url.QueryEscape(v))
		}
	}
	body := []byte(strings.Join(pairs, "&"))
	if _, err := url.ParseQuery(string(body)); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return body, nil
}

// Payload turns a slash command form body into the JSON object a Socket
// Mode slash_commands envelope carries: the same fields, as strings.
func Payload(form []byte) (json.RawMessage, error) {
	v, err := url.ParseQuery(string(form))
	if err != nil {
		return nil, err
	}
	m := make(map[string]string, len(v))
	for k := range v {
		m[k] = v.Get(k)
	}
	return json.Marshal(m)
}
