package dcv

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certflow/certflow/pkg/devdns"
	"github.com/certflow/certflow/pkg/testenv"
	"github.com/miekg/dns"
)

func TestNewResolverValidates(t *testing.T) {
	tests := []ResolverOptions{
		{},
		{Servers: []string{"127.0.0.1"}},
		{Servers: []string{":53"}},
		{Servers: []string{"127.0.0.1:53"}, Timeout: -time.Second},
	}
	for _, opts := range tests {
		if _, err := NewResolver(opts); err == nil {
			t.Errorf("NewResolver(%+v) = nil error; want error", opts)
		}
	}
}

func TestLookupTXT(t *testing.T) {
	s := startDNS(t, devdns.Options{})
	long := strings.Repeat("0123456789", 60)
	var big []string
	for i := range 12 {
		big = append(big, strings.Repeat(string(rune('a'+i)), 200))
	}
	s.SetTXT("_found.example.test", "token")
	s.SetTXT("_multi.example.test", "a", "b")
	s.SetTXT("_long.example.test", long)
	s.SetTXT("_quote.example.test", `a"b\c`)
	s.SetTXT("_big.example.test", big...)
	s.SetCNAME("_alias.example.test", "_found.example.test")
	s.SetCNAME("_alias2.example.test", "_alias.example.test")
	s.SetCNAME("_dangling.example.test", "_gone.example.test")
	s.SetCNAME("_tobroken.example.test", "_broken.example.test")
	s.SetCNAME("_loop1.example.test", "_loop2.example.test")
	s.SetCNAME("_loop2.example.test", "_loop1.example.test")
	s.SetA("host.example.test", "192.0.2.1")
	s.FailWith("_broken.example.test", dns.RcodeServerFailure)
	s.FailWith("_refused.example.test", dns.RcodeRefused)
	r := newResolver(t, ResolverOptions{Servers: []string{s.Addr()}})

	tests := []struct {
		name    string
		want    []string
		wantErr error
	}{
		{"_found.example.test", []string{"token"}, nil},
		{"_FOUND.Example.Test.", []string{"token"}, nil},
		{"_multi.example.test", []string{"a", "b"}, nil},
		{"_long.example.test", []string{long}, nil},
		{"_quote.example.test", []string{`a"b\c`}, nil},
		{"_big.example.test", big, nil}, // truncated over UDP, retried over TCP
		{"_alias.example.test", []string{"token"}, nil},
		{"_alias2.example.test", []string{"token"}, nil},
		{"_none.example.test", nil, ErrNoRecords},
		{"host.example.test", nil, ErrNoRecords}, // NODATA
		{"_dangling.example.test", nil, ErrNoRecords},
		{"_broken.example.test", nil, ErrLookupFailed},
		{"_refused.example.test", nil, ErrLookupFailed},
		{"_tobroken.example.test", nil, ErrLookupFailed},
		{"_loop1.example.test", nil, ErrLookupFailed},
	}
	for _, tt := range tests {
		got, err := r.LookupTXT(testContext(t), tt.name)
		if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
			t.Errorf("LookupTXT(%q) error = %v; want %v", tt.name, err, tt.wantErr)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("LookupTXT(%q) = %q; want %q", tt.name, got, tt.want)
		}
	}
}

func TestLookupNoRecordsIsNotLookupFailed(t *testing.T) {
	s := startDNS(t, devdns.Options{})
	s.FailWith("_broken.example.test", dns.RcodeServerFailure)
	r := newResolver(t, ResolverOptions{Servers: []string{s.Addr()}})

	_, err := r.LookupTXT(testContext(t), "_none.example.test")
	if errors.Is(err, ErrLookupFailed) {
		t.Errorf("LookupTXT(NXDOMAIN) = %v; want not ErrLookupFailed", err)
	}
	_, err = r.LookupTXT(testContext(t), "_broken.example.test")
	if errors.Is(err, ErrNoRecords) {
		t.Errorf("LookupTXT(SERVFAIL) = %v; want not ErrNoRecords", err)
	}
}

func TestLookupTimeout(t *testing.T) {
	r := newResolver(t, ResolverOptions{Servers: []string{silentServer(t)}, Timeout: 100 * time.Millisecond, Retries: 1})
	start := time.Now()
	_, err := r.LookupTXT(testContext(t), "_found.example.test")
	if !errors.Is(err, ErrLookupFailed) {
		t.Errorf("LookupTXT(silent server) = %v; want ErrLookupFailed", err)
	}
	// Two attempts of 100ms; far below the test context.
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("LookupTXT(silent server) took %v; want about 200ms", d)
	}
}

func TestLookupCanceled(t *testing.T) {
	r := newResolver(t, ResolverOptions{Servers: []string{silentServer(t)}, Timeout: 10 * time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	_, err := r.LookupTXT(ctx, "_found.example.test")
	if !errors.Is(err, ErrLookupFailed) || !errors.Is(err, context.Canceled) {
		t.Errorf("LookupTXT(canceled) = %v; want ErrLookupFailed and context.Canceled", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("LookupTXT(canceled) took %v; want prompt return", d)
	}
}

func TestLookupFallsBackToNextServer(t *testing.T) {
	bad := startDNS(t, devdns.Options{})
	bad.FailWith("_found.example.test", dns.RcodeServerFailure)
	good := startDNS(t, devdns.Options{})
	good.SetTXT("_found.example.test", "token")

	tests := []struct {
		desc    string
		servers []string
	}{
		{"SERVFAIL first", []string{bad.Addr(), good.Addr()}},
		{"silent first", []string{silentServer(t), good.Addr()}},
	}
	for _, tt := range tests {
		r := newResolver(t, ResolverOptions{Servers: tt.servers, Timeout: 100 * time.Millisecond, Retries: -1})
		got, err := r.LookupTXT(testContext(t), "_found.example.test")
		if err != nil || !slices.Equal(got, []string{"token"}) {
			t.Errorf("%s: LookupTXT = %q, %v; want [token], nil", tt.desc, got, err)
		}
	}
}

func TestLookupIP(t *testing.T) {
	s := startDNS(t, devdns.Options{})
	s.SetA("dual.test", "192.0.2.1", "2001:db8::1")
	s.SetA("v4.test", "192.0.2.2")
	s.SetCNAME("www.test", "dual.test")
	s.SetTXT("txtonly.test", "x")
	s.FailWith("broken.test", dns.RcodeServerFailure)
	r := newResolver(t, ResolverOptions{Servers: []string{s.Addr()}})

	tests := []struct {
		host    string
		want    []string
		wantErr error
	}{
		{"dual.test", []string{"192.0.2.1", "2001:db8::1"}, nil},
		{"v4.test", []string{"192.0.2.2"}, nil},
		{"www.test", []string{"192.0.2.1", "2001:db8::1"}, nil},
		{"txtonly.test", nil, ErrNoRecords},
		{"missing.test", nil, ErrNoRecords},
		{"broken.test", nil, ErrLookupFailed},
	}
	for _, tt := range tests {
		addrs, err := r.LookupIP(testContext(t), tt.host)
		if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
			t.Errorf("LookupIP(%q) error = %v; want %v", tt.host, err, tt.wantErr)
		}
		var got []string
		for _, a := range addrs {
			got = append(got, a.String())
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("LookupIP(%q) = %q; want %q", tt.host, got, tt.want)
		}
	}
}

func TestLookupCNAME(t *testing.T) {
	s := startDNS(t, devdns.Options{})
	s.SetCNAME("_acme.example.test", "Token.Validation.CertFlow.test.")
	s.SetTXT("_txt.example.test", "x")
	s.FailWith("_broken.example.test", dns.RcodeServerFailure)
	r := newResolver(t, ResolverOptions{Servers: []string{s.Addr()}})

	tests := []struct {
		name    string
		want    string
		wantErr error
	}{
		{"_acme.example.test", "token.validation.certflow.test.", nil},
		{"_txt.example.test", "", ErrNoRecords},
		{"_none.example.test", "", ErrNoRecords},
		{"_broken.example.test", "", ErrLookupFailed},
	}
	for _, tt := range tests {
		got, err := r.LookupCNAME(testContext(t), tt.name)
		if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
			t.Errorf("LookupCNAME(%q) error = %v; want %v", tt.name, err, tt.wantErr)
		}
		if got != tt.want {
			t.Errorf("LookupCNAME(%q) = %q; want %q", tt.name, got, tt.want)
		}
	}
}

func TestLookupCAA(t *testing.T) {
	s := startDNS(t, devdns.Options{})
	s.SetCAA("example.test", devdns.CAA{Tag: "issue", Value: "certflow.test"}, devdns.CAA{Flag: 128, Tag: "tbs", Value: "x"})
	s.SetCNAME("alias.example.test", "example.test")
	s.SetTXT("sub.example.test", "no caa here")
	r := newResolver(t, ResolverOptions{Servers: []string{s.Addr()}})

	want := []CAARecord{{Tag: "issue", Value: "certflow.test"}, {Flag: 128, Tag: "tbs", Value: "x"}}
	tests := []struct {
		name    string
		want    []CAARecord
		wantErr error
	}{
		{"example.test", want, nil},
		{"alias.example.test", want, nil},
		{"sub.example.test", nil, ErrNoRecords}, // no climbing to example.test
	}
	for _, tt := range tests {
		got, err := r.LookupCAA(testContext(t), tt.name)
		if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
			t.Errorf("LookupCAA(%q) error = %v; want %v", tt.name, err, tt.wantErr)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("LookupCAA(%q) = %+v; want %+v", tt.name, got, tt.want)
		}
	}
}

func TestUnescape(t *testing.T) {
	tests := []struct{ in, want string }{
		{`plain`, `plain`},
		{`a\"b`, `a"b`},
		{`a\\b`, `a\b`},
		{`\000\255`, "\x00\xff"},
		{`trailing\`, `trailing\`},
	}
	for _, tt := range tests {
		if got := unescape(tt.in); got != tt.want {
			t.Errorf("unescape(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}

func TestInvalidName(t *testing.T) {
	r := newResolver(t, ResolverOptions{Servers: []string{"127.0.0.1:1"}})
	for _, name := range []string{"", ".", "a..b"} {
		if _, err := r.LookupTXT(testContext(t), name); err == nil || errors.Is(err, ErrLookupFailed) || errors.Is(err, ErrNoRecords) {
			t.Errorf("LookupTXT(%q) = %v; want an invalid-name error", name, err)
		}
	}
}

// TestLookupDNSSECBits: every query asks a validating resolver to validate
// (DO and AD set, CD clear), and a SERVFAIL carrying a DNSSEC Extended DNS
// Error is ErrDNSSECBogus, a kind of ErrLookupFailed; one without is only
// ErrLookupFailed. (TestDNSSEC does the same through Unbound.)
func TestLookupDNSSECBits(t *testing.T) {
	var mu sync.Mutex
	var asked []*dns.Msg
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		mu.Lock()
		asked = append(asked, r)
		mu.Unlock()
		m := new(dns.Msg)
		m.SetRcode(r, dns.RcodeServerFailure)
		if strings.HasPrefix(r.Question[0].Name, "bogus.") {
			m.SetEdns0(1232, true)
			opt := m.IsEdns0()
			opt.Option = append(opt.Option, &dns.EDNS0_EDE{InfoCode: dns.ExtendedErrorCodeDNSBogus, ExtraText: "signature mismatch"})
		}
		_ = w.WriteMsg(m)
	})}
	go func() { _ = srv.ActivateAndServe() }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	r, err := NewResolver(ResolverOptions{Servers: []string{pc.LocalAddr().String()}, Timeout: time.Second, Retries: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, err = r.LookupTXT(ctx, "bogus.example.test")
	if !errors.Is(err, ErrDNSSECBogus) || !errors.Is(err, ErrLookupFailed) || !strings.Contains(err.Error(), "DNSSEC Bogus: signature mismatch") {
		t.Errorf("LookupTXT(bogus) = %v; want ErrDNSSECBogus with the extended error", err)
	}
	_, err = r.LookupCAA(ctx, "servfail.example.test")
	if !errors.Is(err, ErrLookupFailed) || errors.Is(err, ErrDNSSECBogus) {
		t.Errorf("LookupCAA(plain SERVFAIL) = %v; want ErrLookupFailed, not bogus", err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, q := range asked {
		if opt := q.IsEdns0(); opt == nil || !opt.Do() || !q.AuthenticatedData || q.CheckingDisabled {
			t.Errorf("query %s: EDNS %v, AD %v, CD %v; want DO, AD and no CD", q.Question[0].Name, q.IsEdns0(), q.AuthenticatedData, q.CheckingDisabled)
		}
	}
}

// TestOversizedUDPAnswer: a server that ignores the EDNS buffer size sends
// a UDP datagram larger than the buffer, which arrives cut short; the
// resolver asks again over TCP and gets the whole answer.
func TestOversizedUDPAnswer(t *testing.T) {
	var want []string
	for i := range 60 {
		want = append(want, strings.Repeat(string(rune('a'+i%26)), 250))
	}
	var mu sync.Mutex
	seen := map[string]int{}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		mu.Lock()
		seen[w.RemoteAddr().Network()]++
		mu.Unlock()
		resp := new(dns.Msg)
		resp.SetReply(req)
		for _, v := range want {
			resp.Answer = append(resp.Answer, &dns.TXT{Hdr: dns.RR_Header{Name: req.Question[0].Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60}, Txt: []string{v}})
		}
		_ = w.WriteMsg(resp) // whole, over UDP too: no truncation
	})
	pc, ln := testenv.ListenDNS(t)
	for _, s := range []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: ln, Handler: h}} {
		go func() { _ = s.ActivateAndServe() }()
		t.Cleanup(func() { _ = s.Shutdown() })
	}
	r := newResolver(t, ResolverOptions{Servers: []string{pc.LocalAddr().String()}})
	got, err := r.LookupTXT(testContext(t), "_big.example.test")
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("LookupTXT over a server sending oversized UDP = %d records, %v; want the %d records", len(got), err, len(want))
	}
	mu.Lock()
	defer mu.Unlock()
	if seen["udp"] == 0 || seen["tcp"] == 0 {
		t.Fatalf("queries by transport = %v; want UDP first, then TCP", seen)
	}
}
