package caa

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/certflow/certflow/pkg/devdns"
	"github.com/certflow/certflow/services/verification/internal/dcv"
	"github.com/certflow/certflow/services/verification/internal/domain"
)

func startDNS(t *testing.T) *devdns.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := devdns.Start(ctx, devdns.Options{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatalf("devdns.Start: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func checker(t *testing.T, server string, timeout time.Duration) *Checker {
	t.Helper()
	r, err := dcv.NewResolver(dcv.ResolverOptions{Servers: []string{server}, Timeout: timeout, Retries: -1})
	if err != nil {
		t.Fatal(err)
	}
	return &Checker{Resolver: r, Identities: []string{"certflow.test", "certflow.example"}, AccountURIBase: "https://certflow.test/accounts"}
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func issue(v string) devdns.CAA     { return devdns.CAA{Tag: "issue", Value: v} }
func issuewild(v string) devdns.CAA { return devdns.CAA{Tag: "issuewild", Value: v} }

func TestCheck(t *testing.T) {
	s := startDNS(t)
	s.SetCAA("ok.test", issue("certflow.test"))
	s.SetCAA("other.test", issue("other-ca.example"))
	s.SetCAA("gp.test", issue("other-ca.example"))
	s.SetCAA("child.gp.test", issue("certflow.test")) // a closer set wins over the parent's
	s.SetCAA("wild.test", issue("certflow.test"), issuewild("other-ca.example"))
	s.SetCAA("issueonly.test", issue("certflow.test"))
	s.SetCAA("wildok.test", issue("other-ca.example"), issuewild("certflow.test"))
	s.SetCAA("none.test", issue(";"))
	s.SetCAA("critical.test", issue("certflow.test"), devdns.CAA{Flag: 128, Tag: "tbs", Value: "x"})
	s.SetCAA("noncritical.test", issue("certflow.test"), devdns.CAA{Tag: "tbs", Value: "x"})
	s.SetCAA("criticalknown.test", devdns.CAA{Flag: 128, Tag: "issue", Value: "certflow.test"})
	s.SetCAA("params.test", issue("  CertFlow.Test ; accounturi=https://certflow.test/accounts/acct-1"))
	// RFC 8657.
	s.SetCAA("acct.test", issue("certflow.test; accounturi=https://certflow.test/accounts/acct-1"))
	s.SetCAA("acct2.test", issue("certflow.test; accounturi=https://certflow.test/accounts/acct-2"),
		issue("certflow.test; accounturi=https://certflow.test/accounts/acct-1")) // any one record may authorize
	s.SetCAA("acctcase.test", issue("certflow.test; accounturi=https://certflow.test/accounts/ACCT-1")) // exact match
	s.SetCAA("acctdup.test", issue("certflow.test; accounturi=https://certflow.test/accounts/acct-1; accounturi=https://certflow.test/accounts/acct-1"))
	s.SetCAA("acctother.test", issue("other-ca.example; accounturi=https://certflow.test/accounts/acct-1"))
	s.SetCAA("dns01.test", issue("certflow.test; validationmethods=dns-01"))
	s.SetCAA("http01.test", issue("certflow.test; validationmethods=http-01"))
	s.SetCAA("httpfile.test", issue("certflow.test; validationmethods=http-01,ca-http-file"))
	s.SetCAA("cname.test", issue("certflow.test;validationmethods=ca-dns-cname"))
	s.SetCAA("both.test", issue("certflow.test; accounturi=https://certflow.test/accounts/acct-1; validationmethods=dns-01"))
	s.SetCAA("vmbad.test", issue("certflow.test; validationmethods=dns-01,,http-01"))
	s.SetCAA("vmdup.test", issue("certflow.test; validationmethods=dns-01; validationmethods=dns-01"))
	s.SetCAA("badparam.test", issue("certflow.test; accounturi"))
	s.SetCAA("unknownparam.test", issue("certflow.test; policy=ev; x-foo=1"))
	s.SetCAA("wildacct.test", issue("certflow.test"), issuewild("certflow.test; accounturi=https://certflow.test/accounts/acct-2"))
	s.SetCAA("uppertag.test", devdns.CAA{Tag: "ISSUE", Value: "other-ca.example"})
	s.SetCAA("iodef.test", devdns.CAA{Tag: "iodef", Value: "mailto:sec@iodef.test"})
	s.SetCAA("several.test", issue("a.example"), issue("certflow.example"))
	s.SetCAA("wildonly.test", issuewild("other-ca.example")) // restricts only wildcards
	s.SetCAA("target.test", issue("other-ca.example"))
	s.SetCNAME("alias.ok.test", "target.test") // the alias's own set is the target's
	s.SetCAA("tld", issue(";"))                // RFC 8659 §3: the TLD's own CAA set is relevant too
	s.FailWith("broken.test", dns.RcodeServerFailure)
	s.FailWith("refused.test", dns.RcodeRefused)
	c := checker(t, s.Addr(), 2*time.Second)

	tests := []struct {
		names        []string
		account      string            // "" leaves accounturi unevaluated
		method       map[string]string // by name; nil leaves validationmethods unevaluated
		allowed      bool
		lookupFailed bool
		domain       string
		reason       string // a part of the reason
	}{
		{[]string{"www.nothing.test"}, "", nil, true, false, "", ""},
		{[]string{"www.ok.test", "ok.test", "*.ok.test"}, "", nil, true, false, "", ""},
		{[]string{"www.other.test"}, "", nil, false, false, "www.other.test",
			`CAA at other.test: 0 issue "other-ca.example" does not authorize certflow.test; add 0 issue "certflow.test" or remove it`},
		{[]string{"a.b.gp.test"}, "", nil, false, false, "a.b.gp.test", "CAA at gp.test:"},
		{[]string{"x.child.gp.test"}, "", nil, true, false, "", ""},
		{[]string{"wild.test", "www.wild.test"}, "", nil, true, false, "", ""},
		{[]string{"wild.test", "*.wild.test"}, "", nil, false, false, "*.wild.test",
			`CAA at wild.test: 0 issuewild "other-ca.example" does not authorize certflow.test; add 0 issuewild "certflow.test"`},
		{[]string{"*.issueonly.test"}, "", nil, true, false, "", ""},
		{[]string{"*.wildok.test"}, "", nil, true, false, "", ""},
		{[]string{"wildok.test"}, "", nil, false, false, "wildok.test", `0 issue "other-ca.example"`},
		{[]string{"none.test"}, "", nil, false, false, "none.test", `0 issue ";" does not authorize`},
		{[]string{"critical.test"}, "", nil, false, false, "critical.test", `128 tbs "x" is a critical property`},
		{[]string{"noncritical.test"}, "", nil, true, false, "", ""},
		{[]string{"criticalknown.test"}, "", nil, true, false, "", ""},
		{[]string{"params.test"}, "", nil, true, false, "", ""},
		{[]string{"uppertag.test"}, "", nil, false, false, "uppertag.test", "does not authorize"},
		{[]string{"iodef.test"}, "", nil, true, false, "", ""},
		{[]string{"several.test"}, "", nil, true, false, "", ""},
		{[]string{"wildonly.test"}, "", nil, true, false, "", ""},
		{[]string{"*.wildonly.test"}, "", nil, false, false, "*.wildonly.test", "issuewild"},
		{[]string{"alias.ok.test"}, "", nil, false, false, "alias.ok.test", "CAA at alias.ok.test:"},
		{[]string{"example.tld"}, "", nil, false, false, "example.tld", "CAA at tld"},
		{[]string{"broken.test"}, "", nil, false, true, "broken.test", "CAA lookup at broken.test failed"},
		{[]string{"www.broken.test"}, "", nil, false, true, "www.broken.test", "CAA lookup at broken.test failed"},
		{[]string{"refused.test"}, "", nil, false, true, "refused.test", "never permission"},
		{[]string{"ok.test", "www.other.test", "none.test"}, "", nil, false, false, "www.other.test", "CAA at other.test"},
	}
	// The RFC 8657 rows, each for an account and the methods the names
	// were validated by.
	dnsTXT := func(names ...string) map[string]string {
		m := map[string]string{}
		for _, n := range names {
			m[n] = "DNS_TXT"
		}
		return m
	}
	rfc8657 := []struct {
		names        []string
		account      string
		method       map[string]string
		allowed      bool
		lookupFailed bool
		domain       string
		reason       string
	}{
		{[]string{"params.test"}, "acct-1", nil, true, false, "", ""},
		{[]string{"params.test"}, "acct-2", nil, false, false, "params.test",
			"authorizes only the account https://certflow.test/accounts/acct-1, not https://certflow.test/accounts/acct-2"},
		{[]string{"params.test"}, "", nil, true, false, "", ""}, // pre-check without an account
		{[]string{"www.acct.test"}, "acct-1", dnsTXT("www.acct.test"), true, false, "", ""},
		{[]string{"acct.test"}, "acct-10", nil, false, false, "acct.test", "only the account"},
		{[]string{"acct2.test"}, "acct-1", nil, true, false, "", ""},
		{[]string{"acct2.test"}, "acct-3", nil, false, false, "acct2.test", "acct-2, not"},
		{[]string{"acctcase.test"}, "acct-1", nil, false, false, "acctcase.test", "only the account"},
		{[]string{"acctdup.test"}, "acct-1", nil, false, false, "acctdup.test", "accounturi appears twice"},
		{[]string{"acctother.test"}, "acct-1", nil, false, false, "acctother.test", `does not authorize certflow.test`},
		{[]string{"dns01.test"}, "acct-1", dnsTXT("dns01.test"), true, false, "", ""},
		{[]string{"dns01.test"}, "acct-1", map[string]string{"dns01.test": "DNS_CNAME"}, false, false, "dns01.test",
			"authorizes only validation by dns-01, and the name was validated by a method with the labels ca-dns-cname"},
		{[]string{"dns01.test"}, "acct-1", map[string]string{"dns01.test": "HTTP_FILE"}, false, false, "dns01.test", "only validation by dns-01"},
		{[]string{"dns01.test"}, "", nil, true, false, "", ""}, // pre-check before validation
		{[]string{"http01.test"}, "acct-1", map[string]string{"http01.test": "HTTP_FILE"}, false, false, "http01.test", "only validation by http-01"},
		{[]string{"httpfile.test"}, "acct-1", map[string]string{"httpfile.test": "HTTP_FILE"}, true, false, "", ""},
		{[]string{"cname.test"}, "acct-1", map[string]string{"cname.test": "DNS_CNAME"}, true, false, "", ""},
		{[]string{"cname.test"}, "acct-1", dnsTXT("cname.test"), false, false, "cname.test", "ca-dns-cname"},
		{[]string{"cname.test"}, "acct-1", map[string]string{}, false, false, "cname.test", "labels none"},
		{[]string{"both.test"}, "acct-1", dnsTXT("both.test"), true, false, "", ""},
		{[]string{"both.test"}, "acct-2", dnsTXT("both.test"), false, false, "both.test", "only the account"},
		{[]string{"both.test"}, "acct-1", map[string]string{"both.test": "EMAIL"}, false, false, "both.test", "labels ca-email"},
		{[]string{"vmbad.test"}, "acct-1", dnsTXT("vmbad.test"), false, false, "vmbad.test", "is malformed"},
		{[]string{"vmdup.test"}, "acct-1", dnsTXT("vmdup.test"), false, false, "vmdup.test", "validationmethods appears twice"},
		{[]string{"badparam.test"}, "acct-1", nil, false, false, "badparam.test", "is malformed"},
		{[]string{"unknownparam.test"}, "acct-1", dnsTXT("unknownparam.test"), true, false, "", ""},
		{[]string{"wildacct.test", "*.wildacct.test"}, "acct-1", nil, false, false, "*.wildacct.test", "issuewild"},
		{[]string{"wildacct.test", "*.wildacct.test"}, "acct-2", nil, true, false, "", ""},
	}
	for _, r := range rfc8657 {
		tests = append(tests, struct {
			names        []string
			account      string
			method       map[string]string
			allowed      bool
			lookupFailed bool
			domain       string
			reason       string
		}(r))
	}
	for _, tt := range tests {
		q := Query{Names: tt.names, Account: tt.account}
		if tt.method != nil {
			q.Methods = func(name string) []string { return domain.Method(tt.method[name]).CAALabels() }
		}
		got, err := c.Check(testContext(t), q)
		if err != nil {
			t.Errorf("Check(%q, %q, %v) error = %v", tt.names, tt.account, tt.method, err)
			continue
		}
		if got.Allowed != tt.allowed || got.LookupFailed != tt.lookupFailed || got.Domain != tt.domain || !strings.Contains(got.Reason, tt.reason) {
			t.Errorf("Check(%q, %q, %v) = %+v; want allowed %v, lookup failed %v, domain %q, reason containing %q",
				tt.names, tt.account, tt.method, got, tt.allowed, tt.lookupFailed, tt.domain, tt.reason)
		}
	}
}

func TestCheckTimeout(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	got, err := checker(t, pc.LocalAddr().String(), 100*time.Millisecond).Check(testContext(t), Query{Names: []string{"example.test"}})
	if err != nil || got.Allowed || !got.LookupFailed {
		t.Fatalf("Check(silent server) = %+v, %v; want not allowed, lookup failed", got, err)
	}
}

// fakeResolver counts lookups, to show a name and its wildcard share them.
type fakeResolver map[string]int

func (f fakeResolver) LookupCAA(_ context.Context, name string) ([]dcv.CAARecord, error) {
	f[name]++
	return nil, dcv.ErrNoRecords
}

func TestCheckLooksUpEachOwnerOnce(t *testing.T) {
	f := fakeResolver{}
	c := &Checker{Resolver: f, Identities: []string{"certflow.test"}, AccountURIBase: "https://certflow.test/accounts"}
	got, err := c.Check(testContext(t), Query{Names: []string{"example.test", "*.example.test", "www.example.test"}})
	if err != nil || !got.Allowed {
		t.Fatalf("Check = %+v, %v; want allowed", got, err)
	}
	want := map[string]int{"example.test": 1, "www.example.test": 1, "test": 1}
	if len(f) != len(want) || f["example.test"] != 1 || f["www.example.test"] != 1 || f["test"] != 1 {
		t.Fatalf("lookups = %v; want %v (up to and including the TLD, each owner once)", f, want)
	}
	if _, err := (&Checker{Resolver: f}).Check(testContext(t), Query{Names: []string{"x.test"}}); err == nil {
		t.Fatalf("Check without identities = nil error; want one")
	}
}
