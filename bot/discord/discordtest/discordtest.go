// Package discordtest is a local stand-in for Discord: the REST calls
// classbot makes (interaction callbacks, webhook edits and follow-ups,
// command registration, the gateway URL, direct messages) and the gateway websocket (HELLO,
// IDENTIFY, heartbeats, READY, RESUME, INTERACTION_CREATE). The real
// discordgo client talks to it; tests read what arrived. It also signs HTTP
// interactions like Discord does. Nothing here is used in production.
package discordtest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Request is one REST call as the stand-in received it. Path has the
// /api/vN prefix removed ("webhooks/APP/TOKEN/messages/@original"). A
// multipart request (a message with attachments) has its payload_json
// part as Body and its files in Files.
type Request struct {
	Method string
	Path   string
	Query  string
	Header http.Header
	Body   []byte
	Files  []File
}

// File is one attachment of a multipart request.
type File struct {
	Field       string // the form field, "files[0]"
	Name        string // its filename
	ContentType string
	Data        []byte
}

// readMultipart splits a multipart/form-data body into its payload_json
// and its files; ok is false when the request is not multipart.
func readMultipart(r *http.Request, body []byte) (payload []byte, files []File, ok bool, err error) {
	mt, params, perr := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if perr != nil || mt != "multipart/form-data" {
		return nil, nil, false, nil
	}
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return payload, files, true, nil
		}
		if err != nil {
			return nil, nil, true, err
		}
		data, err := io.ReadAll(p)
		if err != nil {
			return nil, nil, true, err
		}
		if p.FormName() == "payload_json" {
			payload = data
			continue
		}
		files = append(files, File{Field: p.FormName(), Name: p.FileName(), ContentType: p.Header.Get("Content-Type"), Data: data})
	}
}

// JSON decodes the body into v.
func (r Request) JSON(v any) error { return json.Unmarshal(r.Body, v) }

// Server is the stand-in. Create it with New and Close it at the end. It is
// safe for concurrent use.
type Server struct {
	// URL is the base, http://127.0.0.1:PORT.
	URL string
	// APIURL is URL + "/api/v9/", what DISCORD_API_URL should be.
	APIURL string
	// HeartbeatInterval is sent in HELLO. Default 1s.
	HeartbeatInterval time.Duration
	// BotUserID is the bot user's id in READY. Default "1".
	BotUserID string
	// DeniedIntents are intents the application may not use (a
	// privileged intent not switched on in the Developer Portal): an
	// IDENTIFY asking for any of them is closed with 4014, as Discord does.
	DeniedIntents int

	srv      *httptest.Server
	upgrader websocket.Upgrader

	mu         sync.Mutex
	changed    chan struct{} // closed and replaced on every event
	requests   []Request
	identifies int
	resumes    int
	heartbeats int
	intents    int // of the last IDENTIFY
	conns      map[*gwConn]struct{}
	seq        int64
	closed     bool
	wg         sync.WaitGroup

	commandsStatus int             // non-zero: command registration fails with it
	hold           <-chan struct{} // non-nil: webhook calls wait for it to close
	deadTokens     map[string]int  // interaction token -> status its webhook calls get
	dmChannels     map[string]string
	dmStatus       int             // non-zero: direct messages fail with it
	deleted        map[string]bool // "channel/message" ids deleted (DeleteMessage)

	limit       int                    // requests per route per window; 0: no limit
	limitWindow time.Duration          // see RouteLimit
	routes      map[string]*routeState // method + path -> its window
	limited     int                    // requests answered 429
}

// routeState is one route's current rate-limit window.
type routeState struct {
	start time.Time
	used  int
}

// RouteLimit makes every REST route (method and path, as Discord counts a
// webhook token's routes) take at most n requests per window, the way
// Discord documents its per-route limits: each answer carries
// X-RateLimit-Limit, -Remaining, -Reset, -Reset-After and -Bucket, and a
// request past the limit is answered 429 with {"retry_after": seconds,
// "global": false} and Retry-After. RateLimited counts them.
func (s *Server) RouteLimit(n int, window time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limit, s.limitWindow = n, window
	s.routes = make(map[string]*routeState)
}

// RateLimited returns how many requests were answered 429.
func (s *Server) RateLimited() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.limited
}

// rateLimit counts a request on route and sets the rate-limit headers; it
// reports false, having answered 429, when the route's window is used up.
func (s *Server) rateLimit(w http.ResponseWriter, route string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.limit == 0 {
		return true
	}
	now := time.Now()
	st := s.routes[route]
	if st == nil || now.Sub(st.start) >= s.limitWindow {
		st = &routeState{start: now}
		s.routes[route] = st
	}
	resetAt := st.start.Add(s.limitWindow)
	after := resetAt.Sub(now).Seconds()
	h := w.Header()
	h.Set("X-RateLimit-Limit", strconv.Itoa(s.limit))
	h.Set("X-RateLimit-Reset", strconv.FormatFloat(float64(resetAt.UnixMilli())/1000, 'f', 3, 64))
	h.Set("X-RateLimit-Reset-After", strconv.FormatFloat(after, 'f', 3, 64))
	h.Set("X-RateLimit-Bucket", route)
	if st.used >= s.limit {
		s.limited++
		h.Set("X-RateLimit-Remaining", "0")
		h.Set("Retry-After", strconv.Itoa(int(after)+1))
		h.Set("X-RateLimit-Scope", "user")
		writeJSON(w, http.StatusTooManyRequests, map[string]any{"message": "You are being rate limited.", "retry_after": after, "global": false})
		return false
	}
	st.used++
	h.Set("X-RateLimit-Remaining", strconv.Itoa(s.limit-st.used))
	return true
}

// FailWebhooks makes every webhook call with the interaction token (edits
// and follow-ups) answer status, as Discord answers a dead token: 404
// {"message": "Unknown Webhook", "code": 10015}, 401 {"message": "Invalid
// Webhook Token", "code": 50027}, any other status its text and code 0. A
// status of 0 undoes it.
func (s *Server) FailWebhooks(token string, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if status == 0 {
		delete(s.deadTokens, token)
		return
	}
	s.deadTokens[token] = status
}

// DeleteMessage deletes message id of channel, as a moderator or its
// author would: later edits of it are answered 404 {"message": "Unknown
// Message", "code": 10008}, as Discord answers them.
func (s *Server) DeleteMessage(channel, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.deleted == nil {
		s.deleted = map[string]bool{}
	}
	s.deleted[channel+"/"+id] = true
}

// FailDirectMessages makes every message sent to a DM channel answer
// status (403: {"message": "Cannot send messages to this user", "code":
// 50007}). A status of 0 undoes it.
func (s *Server) FailDirectMessages(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dmStatus = status
}

// dmChannel returns the id of the DM channel with user, made on first
// use; s.mu must be held.
func (s *Server) dmChannel(user string) string {
	id, ok := s.dmChannels[user]
	if !ok {
		id = strconv.Itoa(1400000000000000000 + len(s.dmChannels))
		s.dmChannels[user] = id
	}
	return id
}

// DirectMessages returns the messages sent (POST channels/ID/messages) to
// the DM channel with user, including refused ones, in order.
func (s *Server) DirectMessages(user string) []Request {
	s.mu.Lock()
	id, ok := s.dmChannels[user]
	s.mu.Unlock()
	var out []Request
	if !ok {
		return out
	}
	for _, r := range s.Requests() {
		if r.Method == http.MethodPost && r.Path == "channels/"+id+"/messages" {
			out = append(out, r)
		}
	}
	return out
}

// FailCommandRegistrations makes every command registration (PUT
// .../commands) fail with status until it is called with 0.
func (s *Server) FailCommandRegistrations(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.commandsStatus = status
}

// HoldWebhooks makes every webhook call (the edit of the original
// response and follow-up messages) wait until release is closed before it
// is recorded and answered. A call whose client gives up while it waits is
// neither recorded nor answered: the message was not delivered.
func (s *Server) HoldWebhooks(release <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hold = release
}

type gwConn struct {
	ws    *websocket.Conn
	wmu   sync.Mutex
	ready bool
}

func (c *gwConn) write(v any) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return c.ws.WriteJSON(v)
}

// New starts a stand-in on 127.0.0.1.
func New() *Server {
	s := &Server{
		HeartbeatInterval: time.Second,
		changed:           make(chan struct{}),
		conns:             map[*gwConn]struct{}{},
		deadTokens:        map[string]int{},
		dmChannels:        map[string]string{},
		upgrader:          websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }},
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	s.URL = s.srv.URL
	s.APIURL = s.srv.URL + "/api/v9/"
	return s
}

// Close drops the gateway connections and stops the server.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		_ = c.ws.Close()
	}
	s.mu.Unlock()
	s.srv.Close()
	s.wg.Wait()
}

// notify wakes the waiters; s.mu must be held.
func (s *Server) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Requests returns the REST calls received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Wait polls cond, under the stand-in's lock-free snapshot, every time
// something arrives, until it is true or timeout passes.
func (s *Server) Wait(timeout time.Duration, cond func() bool) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		ch := s.changed
		s.mu.Unlock()
		if cond() {
			return nil
		}
		select {
		case <-ch:
		case <-deadline.C:
			if cond() {
				return nil
			}
			return fmt.Errorf("discordtest: condition not met within %s", timeout)
		}
	}
}

// WaitRequest waits for a REST call for which match is true and returns it.
func (s *Server) WaitRequest(timeout time.Duration, match func(Request) bool) (Request, error) {
	var found Request
	err := s.Wait(timeout, func() bool {
		for _, r := range s.Requests() {
			if match(r) {
				found = r
				return true
			}
		}
		return false
	})
	return found, err
}

// Gateway reports the IDENTIFY, RESUME and heartbeat payloads received.
func (s *Server) Gateway() (identifies, resumes, heartbeats int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.identifies, s.resumes, s.heartbeats
}

// ReadyConns reports the gateway connections that got READY or RESUMED.
func (s *Server) ReadyConns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for c := range s.conns {
		if c.ready {
			n++
		}
	}
	return n
}

// SendInteraction dispatches an INTERACTION_CREATE with payload (an
// interaction object) on every ready gateway connection. It returns how
// many got it.
func (s *Server) SendInteraction(payload json.RawMessage) int {
	return s.SendEvent("INTERACTION_CREATE", payload)
}

// Intents returns the intents of the last IDENTIFY.
func (s *Server) Intents() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.intents
}

// SendEvent dispatches an event named t (such as MESSAGE_CREATE) with
// payload on every ready gateway connection. It returns how many got it.
func (s *Server) SendEvent(t string, payload json.RawMessage) int {
	s.mu.Lock()
	s.seq++
	seq := s.seq
	var conns []*gwConn
	for c := range s.conns {
		if c.ready {
			conns = append(conns, c)
		}
	}
	s.mu.Unlock()
	n := 0
	for _, c := range conns {
		if c.write(map[string]any{"op": 0, "t": t, "s": seq, "d": payload}) == nil {
			n++
		}
	}
	return n
}

// DropConnections closes every gateway connection without a close frame,
// as a network failure would.
func (s *Server) DropConnections() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		_ = c.ws.UnderlyingConn().Close()
		delete(s.conns, c)
	}
	s.notify()
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/gateway") {
		s.serveGateway(w, r)
		return
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 26<<20)) // Discord's largest attachment limit, and a margin
	payload, files, multi, merr := readMultipart(r, body)
	if merr != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"message": "Invalid Form Body", "code": 50035})
		return
	}
	if multi {
		body = payload
	}
	path := strings.TrimPrefix(r.URL.Path, "/")
	if rest, ok := strings.CutPrefix(path, "api/"); ok {
		if i := strings.IndexByte(rest, '/'); i > 0 && rest[0] == 'v' {
			rest = rest[i+1:]
		}
		path = rest
	}
	parts := strings.Split(path, "/")
	s.mu.Lock()
	hold, commandsStatus := s.hold, s.commandsStatus
	s.mu.Unlock()
	if hold != nil && parts[0] == "webhooks" {
		select {
		case <-hold:
		case <-r.Context().Done():
			return
		}
	}

	if !s.rateLimit(w, r.Method+" "+path) {
		return
	}
	s.mu.Lock()
	s.requests = append(s.requests, Request{Method: r.Method, Path: path, Query: r.URL.RawQuery, Header: r.Header.Clone(), Body: body, Files: files})
	s.notify()
	deadStatus := 0
	if parts[0] == "webhooks" && len(parts) >= 3 {
		deadStatus = s.deadTokens[parts[2]]
	}
	dmStatus, isDM := s.dmStatus, false
	if len(parts) == 3 && parts[0] == "channels" && parts[2] == "messages" {
		for _, id := range s.dmChannels {
			isDM = isDM || id == parts[1]
		}
	}
	s.mu.Unlock()
	bot := strings.HasPrefix(r.Header.Get("Authorization"), "Bot ")

	switch {
	case deadStatus == http.StatusNotFound:
		writeJSON(w, deadStatus, map[string]any{"message": "Unknown Webhook", "code": 10015})
	case deadStatus == http.StatusUnauthorized:
		writeJSON(w, deadStatus, map[string]any{"message": "Invalid Webhook Token", "code": 50027})
	case deadStatus != 0:
		writeJSON(w, deadStatus, map[string]any{"message": http.StatusText(deadStatus), "code": 0})
	case r.Method == http.MethodPost && path == "users/@me/channels":
		var in struct {
			RecipientID string `json:"recipient_id"`
		}
		if !bot {
			writeJSON(w, http.StatusUnauthorized, map[string]any{"message": "401: Unauthorized", "code": 0})
			return
		}
		if json.Unmarshal(body, &in) != nil || in.RecipientID == "" {
			writeJSON(w, http.StatusBadRequest, map[string]any{"message": "Invalid Form Body", "code": 50035})
			return
		}
		s.mu.Lock()
		id := s.dmChannel(in.RecipientID)
		s.notify()
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]any{"id": id, "type": 1, "recipients": []any{map[string]any{"id": in.RecipientID}}})
	case r.Method == http.MethodPost && len(parts) == 3 && parts[0] == "channels" && parts[2] == "messages":
		switch {
		case !bot:
			writeJSON(w, http.StatusUnauthorized, map[string]any{"message": "401: Unauthorized", "code": 0})
		case isDM && dmStatus == http.StatusForbidden:
			writeJSON(w, dmStatus, map[string]any{"message": "Cannot send messages to this user", "code": 50007})
		case isDM && dmStatus != 0:
			writeJSON(w, dmStatus, map[string]any{"message": http.StatusText(dmStatus), "code": 0})
		default:
			m := message(strconv.Itoa(len(s.Requests())), body)
			m["channel_id"] = parts[1]
			writeJSON(w, http.StatusOK, m)
		}
	case r.Method == http.MethodPut && parts[0] == "applications" && parts[len(parts)-1] == "commands" && commandsStatus != 0:
		writeJSON(w, commandsStatus, map[string]any{"message": http.StatusText(commandsStatus), "code": 0})
	case r.Method == http.MethodGet && path == "gateway":
		ws := "ws" + strings.TrimPrefix(s.URL, "http") + "/gateway"
		writeJSON(w, http.StatusOK, map[string]string{"url": ws})
	case r.Method == http.MethodPost && len(parts) == 4 && parts[0] == "interactions" && parts[3] == "callback":
		var t struct {
			Type int `json:"type"`
		}
		_ = json.Unmarshal(body, &t)
		if t.Type == 9 {
			if err := CheckModal(body); err != nil {
				writeJSON(w, http.StatusBadRequest, map[string]any{"message": "Invalid Form Body: " + err.Error(), "code": 50035})
				return
			}
		}
		w.WriteHeader(http.StatusNoContent)
	case r.Method == http.MethodPatch && len(parts) == 4 && parts[0] == "channels" && parts[2] == "messages":
		if !bot {
			writeJSON(w, http.StatusUnauthorized, map[string]any{"message": "401: Unauthorized", "code": 0})
			return
		}
		s.mu.Lock()
		gone := s.deleted[parts[1]+"/"+parts[3]]
		s.mu.Unlock()
		if gone {
			writeJSON(w, http.StatusNotFound, map[string]any{"message": "Unknown Message", "code": 10008})
			return
		}
		m := message(parts[3], body)
		m["channel_id"] = parts[1]
		writeJSON(w, http.StatusOK, m)
	case r.Method == http.MethodPatch && len(parts) == 5 && parts[0] == "webhooks" && parts[3] == "messages":
		writeJSON(w, http.StatusOK, message(parts[4], body))
	case r.Method == http.MethodPost && len(parts) == 3 && parts[0] == "webhooks":
		writeJSON(w, http.StatusOK, message(strconv.Itoa(len(s.Requests())), body))
	case r.Method == http.MethodPut && parts[0] == "applications" && parts[len(parts)-1] == "commands":
		var cmds []map[string]any
		if err := json.Unmarshal(body, &cmds); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]any{"message": "Invalid Form Body", "code": 50035})
			return
		}
		for i, c := range cmds {
			c["id"] = strconv.Itoa(1000 + i)
			c["application_id"] = parts[1]
		}
		writeJSON(w, http.StatusOK, cmds)
	default:
		writeJSON(w, http.StatusNotFound, map[string]any{"message": "404: Not Found", "code": 0})
	}
}

func message(id string, body []byte) map[string]any {
	var m map[string]any
	_ = json.Unmarshal(body, &m)
	if m == nil {
		m = map[string]any{}
	}
	m["id"] = id
	m["type"] = 0
	return m
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// serveGateway speaks the gateway: HELLO, then READY after IDENTIFY (or
// RESUMED after RESUME), heartbeat ACKs, until the connection ends.
func (s *Server) serveGateway(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		http.Error(w, "closed", http.StatusServiceUnavailable)
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()

	ws, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	c := &gwConn{ws: ws}
	s.mu.Lock()
	s.conns[c] = struct{}{}
	s.notify()
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.notify()
		s.mu.Unlock()
		_ = ws.Close()
	}()

	if c.write(map[string]any{"op": 10, "d": map[string]any{"heartbeat_interval": s.HeartbeatInterval.Milliseconds()}}) != nil {
		return
	}
	for {
		_ = ws.SetReadDeadline(time.Now().Add(3*s.HeartbeatInterval + 10*time.Second))
		_, data, err := ws.ReadMessage()
		if err != nil {
			return
		}
		var p struct {
			Op int             `json:"op"`
			D  json.RawMessage `json:"d"`
		}
		if json.Unmarshal(data, &p) != nil {
			return
		}
		switch p.Op {
		case 1: // heartbeat
			s.mu.Lock()
			s.heartbeats++
			s.notify()
			s.mu.Unlock()
			if c.write(map[string]any{"op": 11}) != nil {
				return
			}
		case 2: // identify
			var id struct {
				Token   string `json:"token"`
				Intents int    `json:"intents"`
			}
			_ = json.Unmarshal(p.D, &id)
			s.mu.Lock()
			s.intents = id.Intents
			denied, self := s.DeniedIntents, s.BotUserID
			s.mu.Unlock()
			if self == "" {
				self = "1"
			}
			if id.Intents&denied != 0 {
				_ = c.ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(4014, "Disallowed intent(s)."))
				return
			}
			if id.Token == "" {
				_ = c.ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(4004, "Authentication failed."))
				return
			}
			s.mu.Lock()
			s.identifies++
			s.seq++
			seq := s.seq
			s.mu.Unlock()
			err := c.write(map[string]any{"op": 0, "t": "READY", "s": seq, "d": map[string]any{
				"v": 10, "session_id": "standin-session", "resume_gateway_url": "ws" + strings.TrimPrefix(s.URL, "http") + "/gateway",
				"user":        map[string]any{"id": self, "username": "classbot", "discriminator": "0", "bot": true},
				"guilds":      []any{},
				"application": map[string]any{"id": "1", "flags": 0},
			}})
			if err != nil {
				return
			}
			s.markReady(c)
		case 6: // resume
			s.mu.Lock()
			s.resumes++
			s.seq++
			seq := s.seq
			s.mu.Unlock()
			if c.write(map[string]any{"op": 0, "t": "RESUMED", "s": seq, "d": map[string]any{}}) != nil {
				return
			}
			s.markReady(c)
		}
	}
}

func (s *Server) markReady(c *gwConn) {
	s.mu.Lock()
	c.ready = true
	s.notify()
	s.mu.Unlock()
}

// Sign returns the X-Signature-Ed25519 value Discord would send.
func Sign(key ed25519.PrivateKey, timestamp string, body []byte) string {
	return hex.EncodeToString(ed25519.Sign(key, append([]byte(timestamp), body...)))
}

// NewRequest returns a POST of body to url signed with key at time at, as
// Discord sends interactions. A nil key leaves the signature headers off.
func NewRequest(ctx context.Context, url string, key ed25519.PrivateKey, at time.Time, body []byte) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Discord-Interactions/1.0 (+https://discord.com)")
	if key != nil {
		ts := strconv.FormatInt(at.Unix(), 10)
		req.Header.Set("X-Signature-Timestamp", ts)
		req.Header.Set("X-Signature-Ed25519", Sign(key, ts, body))
	}
	return req, nil
}

// Response is an interaction response as classbot sends it.
type Response struct {
	Type int `json:"type"`
	Data *struct {
		Content         string        `json:"content"`
		Flags           int           `json:"flags"`
		AllowedMentions *MentionsJSON `json:"allowed_mentions"`
		// A type 9 (modal) response's form.
		CustomID   string `json:"custom_id"`
		Title      string `json:"title"`
		Components []struct {
			Type       int         `json:"type"`
			Components []TextInput `json:"components"`
		} `json:"components"`
	} `json:"data"`
}

// TextInput is one text input of a modal, as classbot sends it.
type TextInput struct {
	Type      int    `json:"type"`
	CustomID  string `json:"custom_id"`
	Label     string `json:"label"`
	Style     int    `json:"style"`
	Required  bool   `json:"required"`
	MinLength int    `json:"min_length"`
	MaxLength int    `json:"max_length"`
}

// Inputs returns a modal response's text inputs by custom_id.
func (r Response) Inputs() map[string]TextInput {
	out := map[string]TextInput{}
	if r.Data == nil {
		return out
	}
	for _, row := range r.Data.Components {
		for _, ti := range row.Components {
			out[ti.CustomID] = ti
		}
	}
	return out
}

// CheckModal returns why body (an interaction response of type 9) is not
// a modal Discord accepts: a custom_id of 1 to 100 characters, a title of
// 1 to 45, 1 to 5 action rows each holding one text input (type 4) with a
// custom_id, a label of 1 to 45 characters, style 1 or 2, and lengths with
// 0 <= min_length <= max_length <= 4000.
func CheckModal(body []byte) error {
	var r Response
	if err := json.Unmarshal(body, &r); err != nil {
		return err
	}
	if r.Type != 9 || r.Data == nil {
		return fmt.Errorf("type %d, want 9 with data", r.Type)
	}
	d := r.Data
	if n := len([]rune(d.CustomID)); n < 1 || n > 100 {
		return fmt.Errorf("custom_id has %d characters", n)
	}
	if n := len([]rune(d.Title)); n < 1 || n > 45 {
		return fmt.Errorf("title has %d characters", n)
	}
	if n := len(d.Components); n < 1 || n > 5 {
		return fmt.Errorf("%d action rows", n)
	}
	for _, row := range d.Components {
		if row.Type != 1 || len(row.Components) != 1 {
			return fmt.Errorf("row of type %d with %d components", row.Type, len(row.Components))
		}
		ti := row.Components[0]
		switch {
		case ti.Type != 4:
			return fmt.Errorf("component type %d, want 4", ti.Type)
		case ti.CustomID == "":
			return errors.New("text input without custom_id")
		case len([]rune(ti.Label)) < 1 || len([]rune(ti.Label)) > 45:
			return fmt.Errorf("label %q has %d characters, want 1 to 45", ti.Label, len([]rune(ti.Label)))
		case ti.Style != 1 && ti.Style != 2:
			return fmt.Errorf("style %d", ti.Style)
		case ti.MinLength < 0 || ti.MaxLength > 4000 || (ti.MaxLength > 0 && ti.MinLength > ti.MaxLength):
			return fmt.Errorf("lengths %d..%d", ti.MinLength, ti.MaxLength)
		}
	}
	return nil
}

// MentionsJSON is allowed_mentions with Parse kept as raw JSON, so a test
// can tell "parse":[] from a missing or null list.
type MentionsJSON struct {
	Parse json.RawMessage `json:"parse"`
}

// NoPings reports whether raw (a message, a response's data, or a
// response) carries allowed_mentions with a present, empty parse list.
func NoPings(raw []byte) error {
	var m struct {
		AllowedMentions *MentionsJSON `json:"allowed_mentions"`
		Data            *struct {
			AllowedMentions *MentionsJSON `json:"allowed_mentions"`
		} `json:"data"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return err
	}
	am := m.AllowedMentions
	if am == nil && m.Data != nil {
		am = m.Data.AllowedMentions
	}
	if am == nil {
		return errors.New("allowed_mentions is missing")
	}
	if p := strings.TrimSpace(string(am.Parse)); p != "[]" {
		return fmt.Errorf("allowed_mentions.parse is %q, want []", p)
	}
	return nil
}
