package slack

import (
	"net/netip"
	"testing"
)

func TestCheckResponseURL(t *testing.T) {
	a, err := New(Config{ResponseURLPrefixes: []string{"https://hooks.slack.com/commands/", "http://127.0.0.1:8089"}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		url string
		ok  bool
	}{
		{"https://hooks.slack.com/commands/T0A1B2C3D/7712345678901/QW1xZ0xr", true},
		{"https://HOOKS.slack.com:443/commands/T0A1B2C3D/1/x", true},
		{"https://hooks.slack.com/commands/T0A%2F1/x?y=1", true},
		{"http://127.0.0.1:8089/anything", true},
		{"", true}, // nothing is posted to it
		{"https://hooks.slack.com/commandsX/T0A1B2C3D/1/x", false},
		{"https://hooks.slack.com/other", false},
		{"https://hooks.slack.com/commands/../api/x", false},
		{"https://hooks.slack.com/commands/%2e%2e/api/x", false},
		{"http://hooks.slack.com/commands/T0A1B2C3D/1/x", false},
		{"https://hooks.slack.com:8443/commands/T0A1B2C3D/1/x", false},
		{"https://user:pass@hooks.slack.com/commands/T0A1B2C3D/1/x", false},
		{"https://user@hooks.slack.com/commands/T0A1B2C3D/1/x", false},
		{"https://hooks.slack.com.evil.example/commands/x", false},
		{"https://evil.example/commands/x", false},
		{"http://127.0.0.1:8090/anything", false},
		{"http://127.0.0.1/anything", false},
		{"http://localhost:8089/anything", false},
		{"ftp://hooks.slack.com/commands/x", false},
		{"https:hooks.slack.com/commands/x", false},
		{"//hooks.slack.com/commands/x", false},
		{"/commands/x", false},
		{"not a url", false},
		{"https://hooks.slack.com\x00/commands/x", false},
	}
	for _, tt := range tests {
		if err := a.checkResponseURL(tt.url); (err == nil) != tt.ok {
			t.Errorf("checkResponseURL(%q) = %v, want ok %v", tt.url, err, tt.ok)
		}
	}
}

func TestNewRefusesBadPrefixes(t *testing.T) {
	for _, p := range []string{
		"hooks.slack.com", "ftp://hooks.slack.com/", "https://u:p@hooks.slack.com/", "https://hooks.slack.com/?x=1",
		"https://hooks.slack.com/#x", "https:///commands/", "https://hooks.slack.com/a/../b/",
	} {
		if _, err := New(Config{ResponseURLPrefixes: []string{p}}); err == nil {
			t.Errorf("New accepted the response URL prefix %q", p)
		}
	}
	a, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if a.checkResponseURL("https://hooks.slack.com/commands/T1/2/x") != nil || a.checkResponseURL("https://slack.example/commands/T1/2/x") == nil {
		t.Fatal("the default prefixes are not https://hooks.slack.com/ alone")
	}
}

func TestDialGuard(t *testing.T) {
	for _, tt := range []struct {
		ip     string
		public bool
	}{
		{"8.8.8.8", true},
		{"2001:4860:4860::8888", true},
		{"64:ff9b::808:808", true}, // NAT64 of 8.8.8.8
		{"127.0.0.1", false},
		{"::1", false},
		{"10.1.2.3", false},
		{"172.16.0.1", false},
		{"192.168.1.1", false},
		{"169.254.169.254", false}, // cloud metadata
		{"fe80::1", false},
		{"fd00::1", false},
		{"100.64.0.1", false},
		{"0.0.0.0", false},
		{"0.1.2.3", false},
		{"::", false},
		{"::ffff:127.0.0.1", false},
		{"::ffff:10.0.0.1", false},
		{"64:ff9b::a9fe:a9fe", false}, // NAT64 of 169.254.169.254
		{"224.0.0.1", false},
		{"255.255.255.255", false},
	} {
		if got := publicAddr(netip.MustParseAddr(tt.ip)); got != tt.public {
			t.Errorf("publicAddr(%s) = %v, want %v", tt.ip, got, tt.public)
		}
	}
	allowed := map[netip.AddrPort]bool{netip.MustParseAddrPort("127.0.0.1:8089"): true}
	for _, tt := range []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:8089", true},
		{"[::ffff:127.0.0.1]:8089", true},
		{"127.0.0.1:8090", false},
		{"127.0.0.2:8089", false},
		{"[::1]:8089", false},
		{"93.184.215.14:443", true},
		{"not an address", false},
	} {
		if err := checkDialAddress(tt.addr, allowed); (err == nil) != tt.ok {
			t.Errorf("checkDialAddress(%q) = %v, want ok %v", tt.addr, err, tt.ok)
		}
	}
}
