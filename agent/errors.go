package agent

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	openai "github.com/sashabaranov/go-openai"
)

// ProviderError is a model provider's error answer (an HTTP status of 400 or
// more). It keeps the status and the provider's error type and code, and
// never the message or body: providers repeat the request there, and the
// request holds what a student typed. Run's errors carry a *ProviderError
// instead of go-openai's *openai.APIError or *openai.RequestError.
type ProviderError struct {
	StatusCode int    // the HTTP status
	Type       string // the provider's error type, e.g. "invalid_request_error"; empty if none or not a short token
	Code       string // the provider's error code, e.g. "context_length_exceeded"; empty if none or not a short token
}

func (e *ProviderError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "model provider answered HTTP %d", e.StatusCode)
	if t := http.StatusText(e.StatusCode); t != "" {
		b.WriteString(" " + t)
	}
	var detail []string
	if e.Type != "" {
		detail = append(detail, "type "+e.Type)
	}
	if e.Code != "" {
		detail = append(detail, "code "+e.Code)
	}
	if len(detail) > 0 {
		b.WriteString(" (" + strings.Join(detail, ", ") + ")")
	}
	return b.String()
}

// IsPermanent reports whether err holds a model provider's answer that
// retrying will not change: an HTTP 4xx other than 408 Request Timeout,
// 409 Conflict and 429 Too Many Requests. It looks through wrapped errors, so
// it may be given Run's error. It is false for every other error, including
// 5xx answers, transport failures and cancellation.
func IsPermanent(err error) bool {
	switch s := statusOf(err); {
	case s < 400 || s >= 500:
		return false
	case s == http.StatusRequestTimeout, s == http.StatusConflict, s == http.StatusTooManyRequests:
		return false
	default:
		return true
	}
}

// statusOf returns the HTTP status behind err, or 0 if there was none.
func statusOf(err error) int {
	var (
		ce     *callError
		pe     *ProviderError
		apiErr *openai.APIError
		reqErr *openai.RequestError
	)
	switch {
	case errors.As(err, &ce) && ce.status != 0:
		return ce.status
	case errors.As(err, &pe):
		return pe.StatusCode
	case errors.As(err, &apiErr):
		return apiErr.HTTPStatusCode
	case errors.As(err, &reqErr):
		return reqErr.HTTPStatusCode
	}
	return 0
}

// withoutBody returns err with go-openai's provider errors replaced by a
// *ProviderError, which drops the message and body; other errors (transport
// failures, cancellation) are returned as they are.
func withoutBody(err error) error {
	var (
		apiErr *openai.APIError
		reqErr *openai.RequestError
	)
	switch {
	case errors.As(err, &apiErr):
		return &ProviderError{StatusCode: apiErr.HTTPStatusCode, Type: shortToken(apiErr.Type), Code: shortToken(apiErr.Code)}
	case errors.As(err, &reqErr):
		return &ProviderError{StatusCode: reqErr.HTTPStatusCode}
	}
	return err
}

// maxTokenLen bounds the provider's error type and code kept in errors.
const maxTokenLen = 64

// shortToken returns v as text if it is a short identifier-like token (a
// string or a number, of letters, digits, '_', '-' and '.'), otherwise "".
func shortToken(v any) string {
	var s string
	switch v := v.(type) {
	case string:
		s = v
	case float64:
		s = strconv.FormatFloat(v, 'f', -1, 64)
	case int:
		s = strconv.Itoa(v)
	default:
		return ""
	}
	if len(s) > maxTokenLen {
		return ""
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return ""
		}
	}
	return s
}
