package slack

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"

	"github.com/classbot/classbot/internal/platformhttp"
)

// urlPrefix is one parsed entry of Config.ResponseURLPrefixes.
type urlPrefix struct {
	scheme string // "http" or "https"
	host   string // lower-case host name or IP address, without brackets
	port   string // never empty: the scheme's default when the URL has none
	path   string // escaped path, ending in "/"
}

// errResponseURL is why a response_url is refused. Its message never
// shows the URL: a response_url is a credential.
var errResponseURL = errors.New("slack: response_url is not under SLACK_RESPONSE_URL_PREFIX")

// parsePrefixes checks and parses Config.ResponseURLPrefixes.
func parsePrefixes(raw []string) ([]urlPrefix, error) {
	out := make([]urlPrefix, 0, len(raw))
	for _, r := range raw {
		r = strings.TrimSpace(r)
		u, err := url.Parse(r)
		if err != nil || u.Opaque != "" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
			return nil, fmt.Errorf("slack: response URL prefix %q must be an http(s) URL like https://hooks.slack.com/, without user, query or fragment", r)
		}
		p, ok := splitURL(u)
		if !ok {
			return nil, fmt.Errorf("slack: response URL prefix %q must be an http(s) URL like https://hooks.slack.com/", r)
		}
		if hasDotSegment(u.Path) {
			return nil, fmt.Errorf("slack: response URL prefix %q must not contain . or .. in its path", r)
		}
		if !strings.HasSuffix(p.path, "/") {
			p.path += "/" // a prefix ends at a segment boundary: /commands/ never matches /commandsX
		}
		out = append(out, p)
	}
	return out, nil
}

// splitURL returns u's scheme, host, port and escaped path, with the
// scheme's default port filled in. ok is false unless u is an absolute
// http(s) URL with a host.
func splitURL(u *url.URL) (urlPrefix, bool) {
	p := urlPrefix{scheme: strings.ToLower(u.Scheme), host: strings.ToLower(u.Hostname()), port: u.Port(), path: u.EscapedPath()}
	switch p.scheme {
	case "http":
		if p.port == "" {
			p.port = "80"
		}
	case "https":
		if p.port == "" {
			p.port = "443"
		}
	default:
		return p, false
	}
	if p.host == "" {
		return p, false
	}
	if p.path == "" {
		p.path = "/"
	}
	return p, true
}

// hasDotSegment reports whether a (decoded) path has a "." or ".." segment,
// which a server may resolve to a place outside the prefix.
func hasDotSegment(path string) bool {
	for _, seg := range strings.Split(path, "/") {
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}

// checkResponseURL returns nil if classbot may post to raw, and
// errResponseURL if not (see Config.ResponseURLPrefixes). An empty
// response_url is accepted: nothing will be posted to it, and a reply that
// needs it falls back to chat.postEphemeral. It does no I/O.
func (a *Adapter) checkResponseURL(raw string) error {
	if raw == "" {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil || u.Opaque != "" || u.User != nil || hasDotSegment(u.Path) {
		return errResponseURL
	}
	got, ok := splitURL(u)
	if !ok {
		return errResponseURL
	}
	for _, p := range a.prefixes {
		if got.scheme == p.scheme && got.host == p.host && got.port == p.port && strings.HasPrefix(got.path, p.path) {
			return nil
		}
	}
	return errResponseURL
}

// responseURLHost is what may be logged of a refused response_url: its
// scheme and host, which tell the teacher what to add to
// SLACK_RESPONSE_URL_PREFIX, and never its path (the credential).
func responseURLHost(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(not a URL)"
	}
	return u.Scheme + "://" + u.Host
}

// newHookClient returns the client for response_url posts: the adapters'
// bounded client, without a proxy (the address dialled must be the one
// checked), following no redirects (a 3xx is a failed post, so a body with
// a student's email is never re-posted elsewhere), and dialling only public
// addresses unless a prefix names a private one as an IP and port.
func newHookClient(prefixes []urlPrefix) *http.Client {
	allowed := map[netip.AddrPort]bool{}
	for _, p := range prefixes {
		ip, err := netip.ParseAddr(p.host)
		if err != nil {
			continue // a host name: it may resolve to public addresses only
		}
		if ap, err := netip.ParseAddrPort(net.JoinHostPort(ip.Unmap().String(), p.port)); err == nil {
			allowed[ap] = true
		}
	}
	hc := platformhttp.NewHTTPClient()
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if tr, ok := hc.Transport.(*http.Transport); ok {
		tr.Proxy = nil
		dialer := &net.Dialer{
			Timeout:   platformhttp.DialTimeout,
			KeepAlive: platformhttp.DialKeepAlive,
			Control: func(_, address string, _ syscall.RawConn) error {
				return checkDialAddress(address, allowed)
			},
		}
		tr.DialContext = dialer.DialContext
	}
	return hc
}

// checkDialAddress refuses an address that is not public, unless a prefix
// allowed it exactly. address is the resolved "ip:port" about to be dialled.
func checkDialAddress(address string, allowed map[netip.AddrPort]bool) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("slack: response_url address %q not understood", address)
	}
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	if publicAddr(ap.Addr()) || allowed[ap] {
		return nil
	}
	return fmt.Errorf("slack: response_url resolves to %s, a non-public address no SLACK_RESPONSE_URL_PREFIX names", ap.Addr())
}

var (
	sharedSpace = netip.MustParsePrefix("100.64.0.0/10") // carrier-grade NAT (RFC 6598)
	thisNetwork = netip.MustParsePrefix("0.0.0.0/8")
	nat64       = netip.MustParsePrefix("64:ff9b::/96") // embeds an IPv4 address
)

// publicAddr reports whether ip is a global unicast address outside the
// private, loopback, link-local, shared (CGNAT) and "this network" ranges.
// A NAT64 address is judged by the IPv4 address it embeds.
func publicAddr(ip netip.Addr) bool {
	ip = ip.Unmap()
	if nat64.Contains(ip) {
		b := ip.As16()
		ip = netip.AddrFrom4([4]byte(b[12:16]))
	}
	return ip.IsGlobalUnicast() && !ip.IsPrivate() && !ip.IsLoopback() && !ip.IsLinkLocalUnicast() &&
		!sharedSpace.Contains(ip) && !thisNetwork.Contains(ip)
}
