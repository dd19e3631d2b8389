package service

import (
	"net/http"
	"strings"
	"testing"
)

func TestRequestID(t *testing.T) {
	tests := []struct {
		in   string
		keep bool
	}{
		{"walkthrough-1a2b", true},
		{"a.b_c:d-E9", true},
		{strings.Repeat("x", 128), true},
		{strings.Repeat("x", 129), false},
		{"", false},
		{"has space", false},
		{"new\nline", false},
		{"quote\"", false},
		{"ünï", false},
	}
	for _, tt := range tests {
		got := requestID(tt.in)
		if tt.keep && got != tt.in || !tt.keep && (got == tt.in || !validRequestID(got)) {
			t.Errorf("requestID(%q) = %q; want kept=%v (and a valid id otherwise)", tt.in, got, tt.keep)
		}
	}
}

func TestClientAddr(t *testing.T) {
	proxies, err := parseProxies("10.0.0.0/8, 192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		peer, xff string
		proxies   bool
		want      string
	}{
		// No trusted proxy: X-Forwarded-For is the client's own say.
		{"127.0.0.1:5000", "203.0.113.9", false, "127.0.0.1"},
		{"10.1.2.3:5000", "203.0.113.9", false, "10.1.2.3"},
		// A trusted proxy: the rightmost address that is not one.
		{"10.1.2.3:5000", "203.0.113.9", true, "203.0.113.9"},
		{"10.1.2.3:5000", "198.51.100.1, 203.0.113.9, 192.0.2.1", true, "203.0.113.9"},
		// An untrusted peer's X-Forwarded-For is ignored even when proxies are set.
		{"198.51.100.7:5000", "203.0.113.9", true, "198.51.100.7"},
		{"10.1.2.3:5000", "", true, "10.1.2.3"},
		{"10.1.2.3:5000", "garbage", true, "10.1.2.3"},
		{"[::ffff:127.0.0.1]:5000", "", false, "127.0.0.1"},
	}
	for _, tt := range tests {
		r, _ := http.NewRequest("GET", "/", nil)
		r.RemoteAddr = tt.peer
		if tt.xff != "" {
			r.Header.Set("X-Forwarded-For", tt.xff)
		}
		p := proxies
		if !tt.proxies {
			p = nil
		}
		if got := clientAddr(r, p); got != tt.want {
			t.Errorf("clientAddr(%s, XFF %q, proxies %v) = %s; want %s", tt.peer, tt.xff, tt.proxies, got, tt.want)
		}
	}
	if _, err := parseProxies("10.0.0.0/8,not-an-ip"); err == nil {
		t.Error("parseProxies accepted not-an-ip")
	}
}
