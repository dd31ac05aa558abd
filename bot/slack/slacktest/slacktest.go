// Package slacktest is a local stand-in for Slack: the Web API methods
// classbot calls (apps.connections.open, chat.postEphemeral, auth.test,
// chat.startStream, chat.appendStream, chat.stopStream, chat.postMessage,
// chat.update, conversations.replies,
// conversations.open and the file upload: files.getUploadURLExternal, the
// upload URL, files.completeUploadExternal), the
// Socket Mode websocket (hello, envelopes, pings, and the acknowledgements
// that come back), and the response_url of slash commands, which records
// what is posted to it. Blocks on messages are checked against Block Kit's
// limits (checkBlocks: invalid_blocks, as Slack answers). The real slack-go
// client talks to it; tests read
// what arrived. It also signs slash commands as Slack does and builds them
// from recorded form bodies. Nothing here is used in production.
package slacktest

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// MaxResponseURLPosts is how many posts a response_url takes; later ones
// get 404 "used_url", as on Slack.
const MaxResponseURLPosts = 5

// Call is one HTTP request as the stand-in received it: a Web API call
// (Path "api/chat.postEphemeral") or a post to a response_url (Path
// "commands/ID").
type Call struct {
	Method string
	Path   string
	Header http.Header
	Body   []byte
	Form   url.Values // the parsed form of a form-encoded body
}

// JSON decodes the body into v.
func (c Call) JSON(v any) error { return json.Unmarshal(c.Body, v) }

// Message is the JSON body of a response_url post.
type Message struct {
	ResponseType    string          `json:"response_type"`
	Text            string          `json:"text"`
	ReplaceOriginal bool            `json:"replace_original"`
	Blocks          json.RawMessage `json:"blocks,omitempty"`
}

// Message decodes the call's body as a response_url message.
func (c Call) Message() (Message, error) {
	var m Message
	err := json.Unmarshal(c.Body, &m)
	return m, err
}

// Ack is a Socket Mode acknowledgement as it came back over the websocket.
type Ack struct {
	EnvelopeID string          `json:"envelope_id"`
	Payload    json.RawMessage `json:"payload"`
}

// Server is the stand-in. Create it with New and Close it at the end. It is
// safe for concurrent use.
type Server struct {
	// URL is the base, http://127.0.0.1:PORT.
	URL string
	// APIURL is URL + "/api/", what SLACK_API_URL should be.
	APIURL string
	// PingInterval is how often the websocket pings the client (Slack does,
	// and slack-go reconnects when pings stop). Set it before the first
	// connection. Default 500 ms.
	PingInterval time.Duration
	// AppToken, when set, is the only app-level token apps.connections.open
	// accepts; any other gets "invalid_auth". Default: any xapp- token.
	AppToken string

	srv      *httptest.Server
	upgrader websocket.Upgrader

	mu          sync.Mutex
	changed     chan struct{} // closed and replaced on every event
	calls       []Call
	acks        []Ack
	opens       int
	pongs       int
	connections int
	conns       map[*wsConn]struct{}
	failing     map[string]failure         // response_url id -> what to answer
	redirects   map[string]string          // response_url id -> Location of a 302
	holds       map[string]<-chan struct{} // response_url id -> answer once closed
	posts       map[string]int             // response_url id -> posts so far
	delivered   map[string]int             // response_url id -> posts answered "ok"
	visible     map[string][]Message       // response_url id -> messages a student would see
	envelope    int
	closed      bool
	wg          sync.WaitGroup

	missing  map[string]bool    // bot token scopes the app lacks (RemoveScope)
	uploads  map[string]*upload // file id -> an upload not yet completed
	shared   []File             // completed uploads, in order
	nextFile int

	streams     map[string]*Streamed // ts -> a message of chat.startStream or chat.postMessage
	streamOrder []string
	streamFail  string // non-empty: chat.startStream fails with it
	nextTS      int
}

// File is a file uploaded through files.getUploadURLExternal, the upload
// URL and files.completeUploadExternal, as it was shared.
type File struct {
	ID       string
	Name     string // the filename given to files.getUploadURLExternal
	Title    string
	Channel  string // channel_id of files.completeUploadExternal
	Comment  string // its initial_comment
	Data     []byte // what was posted to the upload URL
	Declared int    // the length given to files.getUploadURLExternal
}

type upload struct {
	name   string
	length int
	data   []byte
	posted bool
}

// RemoveScope makes the bot token lack scope (such as "files:write" or
// "im:write"): the Web API methods that need it answer "missing_scope".
func (s *Server) RemoveScope(scope string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.missing[scope] = true
}

// Files returns the files shared so far (uploads completed with
// files.completeUploadExternal).
func (s *Server) Files() []File {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]File(nil), s.shared...)
}

// IMChannel is the id conversations.open gives the direct message with user.
func IMChannel(user string) string { return "D" + user }

// scopeOf is the bot token scope each Web API method of the file upload needs.
var scopeOf = map[string]string{
	"api/conversations.open":           "im:write",
	"api/files.getUploadURLExternal":   "files:write",
	"api/files.completeUploadExternal": "files:write",
}

// serveFiles answers conversations.open, the upload's three steps, and
// reports whether c was one of them.
func (s *Server) serveFiles(w http.ResponseWriter, r *http.Request, c Call, token string) bool {
	id, isUpload := strings.CutPrefix(c.Path, "upload/")
	if _, ok := scopeOf[c.Path]; !ok && !isUpload {
		return false
	}
	if !strings.HasPrefix(token, "xoxb-") {
		if isUpload {
			http.Error(w, "invalid_auth", http.StatusForbidden)
		} else {
			writeJSON(w, map[string]any{"ok": false, "error": "not_authed"})
		}
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.notify()
	if scope := scopeOf[c.Path]; scope != "" && s.missing[scope] {
		writeJSON(w, map[string]any{"ok": false, "error": "missing_scope", "needed": scope, "provided": "commands,chat:write"})
		return true
	}
	switch {
	case isUpload:
		u := s.uploads[id]
		if u == nil || r.Method != http.MethodPost {
			http.Error(w, "not_found", http.StatusNotFound)
			return true
		}
		mt, params, err := mime.ParseMediaType(c.Header.Get("Content-Type"))
		if err != nil || mt != "multipart/form-data" {
			http.Error(w, "bad_request", http.StatusBadRequest)
			return true
		}
		mr := multipart.NewReader(bytes.NewReader(c.Body), params["boundary"])
		for {
			p, err := mr.NextPart()
			if err != nil {
				break
			}
			if p.FormName() == "file" {
				u.data, _ = io.ReadAll(p)
				u.posted = true
			}
		}
		if !u.posted {
			http.Error(w, "no_file", http.StatusBadRequest)
			return true
		}
		_, _ = io.WriteString(w, "OK - "+strconv.Itoa(len(u.data)))
	case c.Path == "api/conversations.open":
		users := c.Form.Get("users")
		if users == "" || strings.Contains(users, ",") {
			writeJSON(w, map[string]any{"ok": false, "error": "users_list_not_supplied"})
			return true
		}
		writeJSON(w, map[string]any{"ok": true, "channel": map[string]any{"id": IMChannel(users), "is_im": true, "user": users}})
	case c.Path == "api/files.getUploadURLExternal":
		n, err := strconv.Atoi(c.Form.Get("length"))
		if c.Form.Get("filename") == "" || err != nil || n <= 0 {
			writeJSON(w, map[string]any{"ok": false, "error": "invalid_arguments"})
			return true
		}
		s.nextFile++
		fid := "F" + strconv.Itoa(1000+s.nextFile)
		s.uploads[fid] = &upload{name: c.Form.Get("filename"), length: n}
		writeJSON(w, map[string]any{"ok": true, "upload_url": s.URL + "/upload/" + fid, "file_id": fid})
	case c.Path == "api/files.completeUploadExternal":
		var files []struct {
			ID    string `json:"id"`
			Title string `json:"title"`
		}
		if json.Unmarshal([]byte(c.Form.Get("files")), &files) != nil || len(files) == 0 {
			writeJSON(w, map[string]any{"ok": false, "error": "invalid_arguments"})
			return true
		}
		var out []map[string]any
		for _, f := range files {
			u := s.uploads[f.ID]
			if u == nil || !u.posted {
				writeJSON(w, map[string]any{"ok": false, "error": "file_not_found"})
				return true
			}
			delete(s.uploads, f.ID)
			s.shared = append(s.shared, File{ID: f.ID, Name: u.name, Title: f.Title, Channel: c.Form.Get("channel_id"),
				Comment: c.Form.Get("initial_comment"), Data: u.data, Declared: u.length})
			out = append(out, map[string]any{"id": f.ID, "title": f.Title})
		}
		writeJSON(w, map[string]any{"ok": true, "files": out})
	}
	return true
}

type wsConn struct {
	ws  *websocket.Conn
	wmu sync.Mutex
}

func (c *wsConn) write(v any) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return c.ws.WriteJSON(v)
}

// New starts a stand-in on 127.0.0.1.
func New() *Server {
	s := &Server{
		PingInterval: 500 * time.Millisecond,
		changed:      make(chan struct{}),
		conns:        map[*wsConn]struct{}{},
		failing:      map[string]failure{},
		redirects:    map[string]string{},
		holds:        map[string]<-chan struct{}{},
		posts:        map[string]int{},
		delivered:    map[string]int{},
		visible:      map[string][]Message{},
		missing:      map[string]bool{},
		uploads:      map[string]*upload{},
		// slack-go sends Origin: https://api.slack.com; accept any.
		upgrader: websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }},
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	s.URL = s.srv.URL
	s.APIURL = s.srv.URL + "/api/"
	return s
}

// Close drops the websocket connections and stops the server.
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

// ResponseURL returns a response_url for a command, served by the stand-in.
func (s *Server) ResponseURL(id string) string { return s.URL + "/commands/" + id }

// failure is how posts to a failing response_url are answered.
type failure struct {
	status int
	body   string
}

// FailResponseURL makes posts to ResponseURL(id) answer status with the
// body "expired_url", as Slack answers an expired one.
func (s *Server) FailResponseURL(id string, status int) {
	s.FailResponseURLWith(id, status, "expired_url")
}

// FailResponseURLWith makes posts to ResponseURL(id) answer status with
// body (a status of 0 undoes it).
func (s *Server) FailResponseURLWith(id string, status int, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if status == 0 {
		delete(s.failing, id)
		return
	}
	s.failing[id] = failure{status: status, body: body}
}

// RedirectResponseURL makes posts to ResponseURL(id) answer 302 Found
// with Location: location (a client that follows it would post again).
func (s *Server) RedirectResponseURL(id, location string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.redirects[id] = location
}

// HoldResponseURL makes posts to ResponseURL(id) wait for release to be
// closed (or for the post to be abandoned by its client) before they are
// answered. A held post is recorded when it arrives; the Calls of an
// abandoned one are still there, so count successes with Delivered.
func (s *Server) HoldResponseURL(id string, release <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.holds[id] = release
}

// Calls returns the HTTP requests received so far, in order.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// Posts returns what was posted to ResponseURL(id), in order, including
// posts that were answered with an error.
func (s *Server) Posts(id string) []Call {
	return s.match(func(c Call) bool { return c.Path == "commands/"+id })
}

// Delivered returns how many posts to ResponseURL(id) were answered "ok"
// (written to the connection: the client may still have gone by then).
func (s *Server) Delivered(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.delivered[id]
}

// Visible returns the messages a student would see from the posts to
// ResponseURL(id) answered "ok", in order: a post with replace_original
// replaces the last one shown (or is shown, if none is), any other post
// adds one.
func (s *Server) Visible(id string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.visible[id]...)
}

// APICalls returns the calls of the Web API method (e.g. "chat.postEphemeral").
func (s *Server) APICalls(method string) []Call {
	return s.match(func(c Call) bool { return c.Path == "api/"+method })
}

func (s *Server) match(f func(Call) bool) []Call {
	var out []Call
	for _, c := range s.Calls() {
		if f(c) {
			out = append(out, c)
		}
	}
	return out
}

// Acks returns the Socket Mode acknowledgements received so far.
func (s *Server) Acks() []Ack {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Ack(nil), s.acks...)
}

// AckFor returns the acknowledgement of envelope id, if it came.
func (s *Server) AckFor(id string) (Ack, bool) {
	for _, a := range s.Acks() {
		if a.EnvelopeID == id {
			return a, true
		}
	}
	return Ack{}, false
}

// SocketStats counts what happened on the Socket Mode side.
type SocketStats struct {
	Opens       int // apps.connections.open calls that got a URL
	Connections int // websocket connections that were sent hello, ever
	Open        int // websocket connections open now
	Pongs       int // pongs received for the stand-in's pings
}

// Socket reports the Socket Mode counts so far.
func (s *Server) Socket() SocketStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return SocketStats{Opens: s.opens, Connections: s.connections, Open: len(s.conns), Pongs: s.pongs}
}

// Wait checks cond every time something arrives, until it is true or
// timeout passes.
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
			return fmt.Errorf("slacktest: condition not met within %s", timeout)
		}
	}
}

// WaitCall waits for a call for which match is true and returns the
// first such call, in the order the calls arrived.
func (s *Server) WaitCall(timeout time.Duration, match func(Call) bool) (Call, error) {
	var found Call
	err := s.Wait(timeout, func() bool {
		for _, c := range s.Calls() {
			if match(c) {
				found = c
				return true
			}
		}
		return false
	})
	return found, err
}

// WaitPosts waits until ResponseURL(id) got at least n posts and returns them.
func (s *Server) WaitPosts(timeout time.Duration, id string, n int) ([]Call, error) {
	var got []Call
	err := s.Wait(timeout, func() bool { got = s.Posts(id); return len(got) >= n })
	if err != nil {
		return got, fmt.Errorf("response_url %s got %d posts, want %d: %w", id, len(got), n, err)
	}
	return got, nil
}

// WaitAck waits for the acknowledgement of envelope id.
func (s *Server) WaitAck(timeout time.Duration, id string) (Ack, error) {
	var a Ack
	err := s.Wait(timeout, func() bool {
		var ok bool
		a, ok = s.AckFor(id)
		return ok
	})
	return a, err
}

// SendSlashCommand sends a slash_commands envelope carrying payload (the
// command's fields as a JSON object) on every open connection. It returns
// the envelope id and how many connections got it.
func (s *Server) SendSlashCommand(payload json.RawMessage) (string, int) {
	return s.SendEnvelope("slash_commands", payload)
}

// SendEnvelope sends an envelope of type typ (slash_commands, events_api,
// interactive) on every open connection, and returns its id and how many
// connections got it.
func (s *Server) SendEnvelope(typ string, payload json.RawMessage) (string, int) {
	s.mu.Lock()
	s.envelope++
	id := "envelope-" + strconv.Itoa(s.envelope)
	conns := s.connList()
	s.mu.Unlock()
	n := 0
	for _, c := range conns {
		if c.write(map[string]any{
			"envelope_id": id, "type": typ, "payload": payload, "accepts_response_payload": typ != "events_api",
		}) == nil {
			n++
		}
	}
	return id, n
}

// Disconnect asks every client to reconnect, as Slack does before it
// rotates a connection.
func (s *Server) Disconnect() {
	s.mu.Lock()
	conns := s.connList()
	s.mu.Unlock()
	for _, c := range conns {
		_ = c.write(map[string]any{"type": "disconnect", "reason": "refresh_requested", "debug_info": map[string]any{"host": "slacktest"}})
	}
}

// connList returns the open connections; s.mu must be held.
func (s *Server) connList() []*wsConn {
	out := make([]*wsConn, 0, len(s.conns))
	for c := range s.conns {
		out = append(out, c)
	}
	return out
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/link") {
		s.serveSocket(w, r)
		return
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 16<<20))
	c := Call{Method: r.Method, Path: strings.TrimPrefix(r.URL.Path, "/"), Header: r.Header.Clone(), Body: body}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		c.Form, _ = url.ParseQuery(string(body))
	}
	token := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	if token == "" && c.Form != nil {
		token = c.Form.Get("token")
	}

	s.mu.Lock()
	s.calls = append(s.calls, c)
	var (
		status   int
		failBody string
		location string
		hold     <-chan struct{}
	)
	id, isResponseURL := strings.CutPrefix(c.Path, "commands/")
	if isResponseURL {
		location, hold = s.redirects[id], s.holds[id]
		s.posts[id]++
		switch {
		case s.failing[id].status != 0:
			status, failBody = s.failing[id].status, s.failing[id].body
		case s.posts[id] > MaxResponseURLPosts:
			status = -http.StatusNotFound
		}
	}
	if c.Path == "api/apps.connections.open" && s.acceptsAppToken(token) {
		s.opens++
	}
	s.notify()
	s.mu.Unlock()

	if hold != nil {
		select {
		case <-hold:
		case <-r.Context().Done():
			return
		}
	}
	if s.serveFiles(w, r, c, token) || s.serveAssistant(w, c, token) {
		return
	}
	switch {
	case isResponseURL:
		switch {
		case location != "":
			http.Redirect(w, r, location, http.StatusFound)
		case r.Method != http.MethodPost:
			http.Error(w, "method_not_allowed", http.StatusMethodNotAllowed)
		case status > 0:
			http.Error(w, failBody, status)
		case status < 0:
			http.Error(w, "used_url", -status)
		case !json.Valid(body):
			http.Error(w, "invalid_payload", http.StatusBadRequest)
		case checkBlocks(messageBlocks(body)) != "":
			http.Error(w, "invalid_blocks", http.StatusBadRequest)
		default:
			_, _ = io.WriteString(w, "ok")
			var m Message
			_ = json.Unmarshal(body, &m)
			s.mu.Lock()
			s.delivered[id]++
			if v := s.visible[id]; m.ReplaceOriginal && len(v) > 0 {
				v[len(v)-1] = m
			} else {
				s.visible[id] = append(v, m)
			}
			s.notify()
			s.mu.Unlock()
		}
	case c.Path == "api/apps.connections.open":
		s.mu.Lock()
		ok := s.acceptsAppToken(token)
		s.mu.Unlock()
		if !ok {
			writeJSON(w, map[string]any{"ok": false, "error": "invalid_auth"})
			return
		}
		writeJSON(w, map[string]any{"ok": true, "url": "ws" + strings.TrimPrefix(s.URL, "http") + "/link/?ticket=slacktest"})
	case c.Path == "api/chat.postEphemeral":
		switch {
		case !strings.HasPrefix(token, "xoxb-"):
			writeJSON(w, map[string]any{"ok": false, "error": "not_authed"})
		case c.Form.Get("channel") == "" || c.Form.Get("user") == "":
			writeJSON(w, map[string]any{"ok": false, "error": "channel_not_found"})
		case c.Form.Get("text") == "":
			writeJSON(w, map[string]any{"ok": false, "error": "no_text"})
		case checkBlocks(c.Form.Get("blocks")) != "":
			writeJSON(w, map[string]any{"ok": false, "error": "invalid_blocks"})
		default:
			writeJSON(w, map[string]any{"ok": true, "message_ts": strconv.FormatInt(time.Now().UnixMicro(), 10)[:10] + ".000100"})
		}
	case c.Path == "api/auth.test":
		if !strings.HasPrefix(token, "xoxb-") {
			writeJSON(w, map[string]any{"ok": false, "error": "invalid_auth"})
			return
		}
		writeJSON(w, map[string]any{"ok": true, "url": "https://cs101-fall.slack.com/", "team": "CS101", "user": "classbot",
			"team_id": "T0A1B2C3D", "user_id": "U0BOT0000", "bot_id": "B0BOT0000"})
	case s.serveStream(w, c, token), s.serveReplies(w, c, token):
	case strings.HasPrefix(c.Path, "api/"):
		writeJSON(w, map[string]any{"ok": false, "error": "unknown_method"})
	default:
		http.NotFound(w, r)
	}
}

// messageBlocks returns the blocks of a response_url message's JSON body,
// or "" when it has none.
func messageBlocks(body []byte) string {
	var m Message
	if json.Unmarshal(body, &m) != nil || len(m.Blocks) == 0 || string(m.Blocks) == "null" {
		return ""
	}
	return string(m.Blocks)
}

// acceptsAppToken says whether apps.connections.open takes token; s.mu
// must be held.
func (s *Server) acceptsAppToken(token string) bool {
	if s.AppToken != "" {
		return token == s.AppToken
	}
	return strings.HasPrefix(token, "xapp-")
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// serveSocket speaks Socket Mode: hello, then pings every PingInterval;
// every message the client sends is recorded as an acknowledgement.
func (s *Server) serveSocket(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		http.Error(w, "closed", http.StatusServiceUnavailable)
		return
	}
	s.wg.Add(1)
	interval := s.PingInterval
	s.mu.Unlock()
	defer s.wg.Done()

	ws, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	c := &wsConn{ws: ws}
	ws.SetPongHandler(func(string) error {
		s.mu.Lock()
		s.pongs++
		s.notify()
		s.mu.Unlock()
		return nil
	})
	if c.write(map[string]any{
		"type": "hello", "num_connections": 1,
		"debug_info":      map[string]any{"host": "slacktest", "build_number": 1, "approximate_connection_time": 18060},
		"connection_info": map[string]any{"app_id": "A0A1B2C3D4E"},
	}) != nil {
		_ = ws.Close()
		return
	}
	s.mu.Lock()
	s.conns[c] = struct{}{}
	s.connections++
	s.notify()
	s.mu.Unlock()

	stop := make(chan struct{})
	defer func() {
		close(stop)
		s.mu.Lock()
		delete(s.conns, c)
		s.notify()
		s.mu.Unlock()
		_ = ws.Close()
	}()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if ws.WriteControl(websocket.PingMessage, []byte("slacktest"), time.Now().Add(5*time.Second)) != nil {
					return
				}
			}
		}
	}()

	for {
		_, data, err := ws.ReadMessage()
		if err != nil {
			return
		}
		var a Ack
		if json.Unmarshal(data, &a) != nil || a.EnvelopeID == "" {
			continue
		}
		s.mu.Lock()
		s.acks = append(s.acks, a)
		s.notify()
		s.mu.Unlock()
	}
}

// Sign returns the X-Slack-Signature value Slack would send for body at
// timestamp ts (Unix seconds): v0=hex(HMAC-SHA256(secret, "v0:ts:body")).
func Sign(secret, ts string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(m, "v0:%s:", ts)
	m.Write(body)
	return "v0=" + hex.EncodeToString(m.Sum(nil))
}

// NewRequest returns a POST of body to url signed with secret at time at,
// as Slack sends slash commands. An empty secret leaves the signature
// headers off.
func NewRequest(ctx context.Context, url, secret string, at time.Time, body []byte) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", "Slackbot 1.0 (+https://api.slack.com/robots)")
	if secret != "" {
		ts := strconv.FormatInt(at.Unix(), 10)
		req.Header.Set("X-Slack-Request-Timestamp", ts)
		req.Header.Set("X-Slack-Signature", Sign(secret, ts, body))
	}
	return req, nil
}
