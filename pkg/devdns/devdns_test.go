package devdns

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func startServer(t *testing.T, opts Options) *Server {
	t.Helper()
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := Start(ctx, opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// query asks s one question over network ("udp" or "tcp"); bufsize > 0 adds EDNS0.
func query(t *testing.T, s *Server, network, name string, qtype uint16, bufsize uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	if bufsize > 0 {
		m.SetEdns0(bufsize, false)
	}
	c := &dns.Client{Net: network, Timeout: 2 * time.Second}
	r, _, err := c.Exchange(m, s.Addr())
	if err != nil {
		t.Fatalf("%s query %s %s: %v", network, name, dns.TypeToString[qtype], err)
	}
	return r
}

// answers renders r's answer section as "owner TYPE rdata" lines.
func answers(r *dns.Msg) []string {
	var out []string
	for _, rr := range r.Answer {
		f := strings.SplitN(rr.String(), "\t", 5)
		out = append(out, f[0]+" "+f[3]+" "+f[4])
	}
	return out
}

func TestAnswers(t *testing.T) {
	s := startServer(t, Options{})
	s.SetTXT("_pki.example.test", "abc", "def")
	s.SetTXT("long.example.test.", strings.Repeat("x", 300))
	s.SetTXT(`quote.example.test`, `a"b\c`)
	s.SetA("Host.Example.Test.", "192.0.2.1", "2001:db8::1")
	s.SetCNAME("alias.example.test", "_PKI.example.test.")
	s.SetCNAME("dangling.example.test", "elsewhere.other.")
	s.SetCNAME("loop1.example.test", "loop2.example.test")
	s.SetCNAME("loop2.example.test", "loop1.example.test")
	s.SetCAA("example.test", CAA{Flag: 0, Tag: "issue", Value: "certflow.test"}, CAA{Flag: 128, Tag: "iodef", Value: "mailto:x@example.test"})
	s.FailWith("broken.example.test", dns.RcodeServerFailure)
	s.FailWith("refused.example.test", dns.RcodeRefused)

	tests := []struct {
		name  string
		qtype uint16
		rcode int
		want  []string
	}{
		{"_pki.example.test", dns.TypeTXT, dns.RcodeSuccess, []string{`_pki.example.test. TXT "abc"`, `_pki.example.test. TXT "def"`}},
		{"_PKI.EXAMPLE.test", dns.TypeTXT, dns.RcodeSuccess, []string{`_PKI.EXAMPLE.test. TXT "abc"`, `_PKI.EXAMPLE.test. TXT "def"`}},
		{"long.example.test", dns.TypeTXT, dns.RcodeSuccess, []string{`long.example.test. TXT "` + strings.Repeat("x", 255) + `" "` + strings.Repeat("x", 45) + `"`}},
		{"quote.example.test", dns.TypeTXT, dns.RcodeSuccess, []string{`quote.example.test. TXT "a\"b\\c"`}},
		{"_pki.example.test", dns.TypeA, dns.RcodeSuccess, nil}, // NODATA
		{"host.example.test", dns.TypeA, dns.RcodeSuccess, []string{"host.example.test. A 192.0.2.1"}},
		{"host.example.test", dns.TypeAAAA, dns.RcodeSuccess, []string{"host.example.test. AAAA 2001:db8::1"}},
		{"nope.example.test", dns.TypeTXT, dns.RcodeNameError, nil},
		{"nope.example.test", dns.TypeA, dns.RcodeNameError, nil},
		{"example.test", dns.TypeCAA, dns.RcodeSuccess, []string{`example.test. CAA 0 issue "certflow.test"`, `example.test. CAA 128 iodef "mailto:x@example.test"`}},
		{"test", dns.TypeTXT, dns.RcodeSuccess, nil}, // empty non-terminal
		{"alias.example.test", dns.TypeTXT, dns.RcodeSuccess, []string{"alias.example.test. CNAME _pki.example.test.", `_pki.example.test. TXT "abc"`, `_pki.example.test. TXT "def"`}},
		{"alias.example.test", dns.TypeCNAME, dns.RcodeSuccess, []string{"alias.example.test. CNAME _pki.example.test."}},
		{"alias.example.test", dns.TypeA, dns.RcodeSuccess, []string{"alias.example.test. CNAME _pki.example.test."}},
		{"dangling.example.test", dns.TypeTXT, dns.RcodeSuccess, []string{"dangling.example.test. CNAME elsewhere.other."}},
		{"loop1.example.test", dns.TypeTXT, dns.RcodeSuccess, []string{"loop1.example.test. CNAME loop2.example.test.", "loop2.example.test. CNAME loop1.example.test."}},
		{"broken.example.test", dns.TypeTXT, dns.RcodeServerFailure, nil},
		{"broken.example.test", dns.TypeA, dns.RcodeServerFailure, nil},
		{"refused.example.test", dns.TypeTXT, dns.RcodeRefused, nil},
	}
	for _, network := range []string{"udp", "tcp"} {
		for _, tt := range tests {
			r := query(t, s, network, tt.name, tt.qtype, 0)
			if r.Rcode != tt.rcode {
				t.Errorf("%s: Query(%q, %s) rcode = %s; want %s", network, tt.name, dns.TypeToString[tt.qtype], dns.RcodeToString[r.Rcode], dns.RcodeToString[tt.rcode])
			}
			if !r.Authoritative {
				t.Errorf("%s: Query(%q, %s) AA not set", network, tt.name, dns.TypeToString[tt.qtype])
			}
			if got := answers(r); !slices.Equal(got, tt.want) {
				t.Errorf("%s: Query(%q, %s) answers = %q; want %q", network, tt.name, dns.TypeToString[tt.qtype], got, tt.want)
			}
		}
	}
}

func TestDefaultA(t *testing.T) {
	s := startServer(t, Options{DefaultA: "127.0.0.1"})
	s.SetA("pinned.test", "192.0.2.7")
	s.SetTXT("txt.test", "v")
	s.SetCNAME("alias.test", "anything.test")

	tests := []struct {
		name  string
		qtype uint16
		want  []string
	}{
		{"anything.test", dns.TypeA, []string{"anything.test. A 127.0.0.1"}},
		{"anything.test", dns.TypeAAAA, nil},
		{"anything.test", dns.TypeTXT, nil},
		{"pinned.test", dns.TypeA, []string{"pinned.test. A 192.0.2.7"}},
		{"txt.test", dns.TypeA, []string{"txt.test. A 127.0.0.1"}},
		{"alias.test", dns.TypeA, []string{"alias.test. CNAME anything.test.", "anything.test. A 127.0.0.1"}},
	}
	for _, tt := range tests {
		r := query(t, s, "udp", tt.name, tt.qtype, 0)
		if r.Rcode != dns.RcodeSuccess {
			t.Errorf("Query(%q, %s) rcode = %s; want NOERROR", tt.name, dns.TypeToString[tt.qtype], dns.RcodeToString[r.Rcode])
		}
		if got := answers(r); !slices.Equal(got, tt.want) {
			t.Errorf("Query(%q, %s) answers = %q; want %q", tt.name, dns.TypeToString[tt.qtype], got, tt.want)
		}
	}
}

func TestStartRejectsBadDefaultA(t *testing.T) {
	for _, v := range []string{"not-an-ip", "::1"} {
		s, err := Start(context.Background(), Options{Addr: "127.0.0.1:0", DefaultA: v})
		if err == nil {
			s.Close()
			t.Errorf("Start(DefaultA: %q) = nil error; want error", v)
		}
	}
}

func TestTruncation(t *testing.T) {
	s := startServer(t, Options{})
	var values []string
	for i := range 10 {
		values = append(values, strings.Repeat(string(rune('a'+i)), 200))
	}
	s.SetTXT("big.test", values...)

	tests := []struct {
		network   string
		bufsize   uint16
		truncated bool
	}{
		{"udp", 0, true},
		{"udp", 1232, true},
		{"udp", 4096, false},
		{"tcp", 0, false},
	}
	for _, tt := range tests {
		r := query(t, s, tt.network, "big.test", dns.TypeTXT, tt.bufsize)
		if r.Truncated != tt.truncated {
			t.Errorf("%s bufsize %d: TC = %v; want %v", tt.network, tt.bufsize, r.Truncated, tt.truncated)
		}
		if !tt.truncated && len(r.Answer) != len(values) {
			t.Errorf("%s bufsize %d: %d answers; want %d", tt.network, tt.bufsize, len(r.Answer), len(values))
		}
		if size := r.Len(); tt.network == "udp" && size > max(int(tt.bufsize), dns.MinMsgSize) {
			t.Errorf("%s bufsize %d: message is %d bytes; want at most %d", tt.network, tt.bufsize, size, max(int(tt.bufsize), dns.MinMsgSize))
		}
	}
}

func TestReplaceAndDelete(t *testing.T) {
	s := startServer(t, Options{})
	s.SetTXT("x.test", "one")
	s.SetTXT("x.test", "two")
	if got, want := answers(query(t, s, "udp", "x.test", dns.TypeTXT, 0)), []string{`x.test. TXT "two"`}; !slices.Equal(got, want) {
		t.Errorf("after replace: answers = %q; want %q", got, want)
	}

	// A CNAME cannot coexist with other data: setting one replaces the other.
	s.SetCNAME("x.test", "y.test")
	if got, want := answers(query(t, s, "udp", "x.test", dns.TypeTXT, 0)), []string{"x.test. CNAME y.test."}; !slices.Equal(got, want) {
		t.Errorf("after SetCNAME: answers = %q; want %q", got, want)
	}
	s.SetTXT("x.test", "three")
	if got, want := answers(query(t, s, "udp", "x.test", dns.TypeTXT, 0)), []string{`x.test. TXT "three"`}; !slices.Equal(got, want) {
		t.Errorf("after SetTXT over CNAME: answers = %q; want %q", got, want)
	}

	s.FailWith("x.test", dns.RcodeServerFailure)
	if r := query(t, s, "udp", "x.test", dns.TypeTXT, 0); r.Rcode != dns.RcodeServerFailure {
		t.Errorf("after FailWith: rcode = %s; want SERVFAIL", dns.RcodeToString[r.Rcode])
	}
	s.Delete("X.TEST.")
	if r := query(t, s, "udp", "x.test", dns.TypeTXT, 0); r.Rcode != dns.RcodeNameError {
		t.Errorf("after Delete: rcode = %s; want NXDOMAIN", dns.RcodeToString[r.Rcode])
	}
	if got := s.Records(); len(got) != 0 {
		t.Errorf("after Delete: Records() = %+v; want none", got)
	}
}

func TestAdminAPI(t *testing.T) {
	s := startServer(t, Options{AdminAddr: "127.0.0.1:0"})
	if !strings.HasPrefix(s.AdminURL(), "http://127.0.0.1:") {
		t.Fatalf("AdminURL() = %q; want http://127.0.0.1:port", s.AdminURL())
	}
	do := func(method, path, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, s.AdminURL()+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	puts := []struct {
		path, body string
		status     int
		errHas     string
	}{
		{"/records/_pki-validation.example.test/TXT", `{"values":["token-1"]}`, http.StatusNoContent, ""},
		{"/records/web.example.test./A", `{"values":["127.0.0.1","::1"]}`, http.StatusNoContent, ""},
		{"/records/www.example.test/CNAME", `{"values":["web.example.test."]}`, http.StatusNoContent, ""},
		{"/records/example.test/CAA", `{"records":[{"flag":0,"tag":"issue","value":"certflow.test"}]}`, http.StatusNoContent, ""},
		{"/records/x.test/TXT", `{"values":`, http.StatusBadRequest, `expected {"values":`},
		{"/records/x.test/TXT", `["a"]`, http.StatusBadRequest, `expected {"values":`},
		{"/records/x.test/TXT", `{"value":["a"]}`, http.StatusBadRequest, `expected {"values":`},
		{"/records/x.test/TXT", ``, http.StatusBadRequest, `empty body`},
		{"/records/x.test/TXT", `{"values":["a"]} {}`, http.StatusBadRequest, `trailing data`},
		{"/records/x.test/A", `{"values":["not-an-ip"]}`, http.StatusBadRequest, `invalid IP address "not-an-ip"`},
		{"/records/x.test/CNAME", `{"values":["a.test","b.test"]}`, http.StatusBadRequest, `exactly one target`},
		{"/records/x.test/CAA", `{"values":["issue"]}`, http.StatusBadRequest, `expected {"records":`},
		{"/records/x.test/MX", `{"values":["mx.test"]}`, http.StatusBadRequest, `unsupported record type "MX"`},
	}
	for _, tt := range puts {
		status, body := do(http.MethodPut, tt.path, tt.body)
		if status != tt.status {
			t.Errorf("PUT %s %s = %d %s; want %d", tt.path, tt.body, status, body, tt.status)
		}
		if tt.errHas == "" {
			continue
		}
		var e struct{ Error string }
		if err := json.Unmarshal([]byte(body), &e); err != nil {
			t.Errorf("PUT %s %s body = %s; want a JSON error: %v", tt.path, tt.body, body, err)
		}
		if !strings.Contains(e.Error, tt.errHas) {
			t.Errorf("PUT %s %s error = %q; want it to contain %q", tt.path, tt.body, e.Error, tt.errHas)
		}
	}

	for _, c := range []struct {
		name  string
		qtype uint16
		want  []string
	}{
		{"_pki-validation.example.test", dns.TypeTXT, []string{`_pki-validation.example.test. TXT "token-1"`}},
		{"www.example.test", dns.TypeA, []string{"www.example.test. CNAME web.example.test.", "web.example.test. A 127.0.0.1"}},
		{"web.example.test", dns.TypeAAAA, []string{"web.example.test. AAAA ::1"}},
		{"example.test", dns.TypeCAA, []string{`example.test. CAA 0 issue "certflow.test"`}},
	} {
		if got := answers(query(t, s, "tcp", c.name, c.qtype, 0)); !slices.Equal(got, c.want) {
			t.Errorf("after PUT: Query(%q, %s) = %q; want %q", c.name, dns.TypeToString[c.qtype], got, c.want)
		}
	}

	status, body := do(http.MethodGet, "/records", "")
	if status != http.StatusOK {
		t.Fatalf("GET /records = %d %s; want 200", status, body)
	}
	var list []Record
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		t.Fatalf("GET /records body %s: %v", body, err)
	}
	want := []Record{
		{Name: "_pki-validation.example.test.", Type: "TXT", Values: []string{"token-1"}},
		{Name: "example.test.", Type: "CAA", Records: []CAA{{Flag: 0, Tag: "issue", Value: "certflow.test"}}},
		{Name: "web.example.test.", Type: "A", Values: []string{"127.0.0.1", "::1"}},
		{Name: "www.example.test.", Type: "CNAME", Values: []string{"web.example.test."}},
	}
	if len(list) != len(want) {
		t.Fatalf("GET /records = %+v; want %+v", list, want)
	}
	for i := range want {
		if list[i].Name != want[i].Name || list[i].Type != want[i].Type || !slices.Equal(list[i].Values, want[i].Values) || !slices.Equal(list[i].Records, want[i].Records) {
			t.Errorf("GET /records [%d] = %+v; want %+v", i, list[i], want[i])
		}
	}

	if status, body := do(http.MethodDelete, "/records/_pki-validation.example.test.", ""); status != http.StatusNoContent {
		t.Errorf("DELETE = %d %s; want 204", status, body)
	}
	if r := query(t, s, "udp", "_pki-validation.example.test", dns.TypeTXT, 0); r.Rcode != dns.RcodeNameError {
		t.Errorf("after DELETE: rcode = %s; want NXDOMAIN", dns.RcodeToString[r.Rcode])
	}
	if status, _ := do(http.MethodPost, "/records", ""); status != http.StatusMethodNotAllowed {
		t.Errorf("POST /records = %d; want 405", status)
	}
}

func TestNoAdminByDefault(t *testing.T) {
	s := startServer(t, Options{})
	if got := s.AdminURL(); got != "" {
		t.Errorf("AdminURL() = %q; want empty", got)
	}
}
