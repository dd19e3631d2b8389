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
	return &Checker{Resolver: r, Identities: []string{"certflow.test", "certflow.example"}}
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
	s.SetCAA("params.test", issue("  CertFlow.Test ; accounturi=https://certflow.test/acct/1"))
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
		allowed      bool
		lookupFailed bool
		domain       string
		reason       string // a part of the reason
	}{
		{[]string{"www.nothing.test"}, true, false, "", ""},
		{[]string{"www.ok.test", "ok.test", "*.ok.test"}, true, false, "", ""},
		{[]string{"www.other.test"}, false, false, "www.other.test",
			`CAA at other.test: 0 issue "other-ca.example" does not authorize certflow.test; add 0 issue "certflow.test" or remove it`},
		{[]string{"a.b.gp.test"}, false, false, "a.b.gp.test", "CAA at gp.test:"},
		{[]string{"x.child.gp.test"}, true, false, "", ""},
		{[]string{"wild.test", "www.wild.test"}, true, false, "", ""},
		{[]string{"wild.test", "*.wild.test"}, false, false, "*.wild.test",
			`CAA at wild.test: 0 issuewild "other-ca.example" does not authorize certflow.test; add 0 issuewild "certflow.test"`},
		{[]string{"*.issueonly.test"}, true, false, "", ""},
		{[]string{"*.wildok.test"}, true, false, "", ""},
		{[]string{"wildok.test"}, false, false, "wildok.test", `0 issue "other-ca.example"`},
		{[]string{"none.test"}, false, false, "none.test", `0 issue ";" does not authorize`},
		{[]string{"critical.test"}, false, false, "critical.test", `128 tbs "x" is a critical property`},
		{[]string{"noncritical.test"}, true, false, "", ""},
		{[]string{"criticalknown.test"}, true, false, "", ""},
		{[]string{"params.test"}, true, false, "", ""},
		{[]string{"uppertag.test"}, false, false, "uppertag.test", "does not authorize"},
		{[]string{"iodef.test"}, true, false, "", ""},
		{[]string{"several.test"}, true, false, "", ""},
		{[]string{"wildonly.test"}, true, false, "", ""},
		{[]string{"*.wildonly.test"}, false, false, "*.wildonly.test", "issuewild"},
		{[]string{"alias.ok.test"}, false, false, "alias.ok.test", "CAA at alias.ok.test:"},
		{[]string{"example.tld"}, false, false, "example.tld", "CAA at tld"},
		{[]string{"broken.test"}, false, true, "broken.test", "CAA lookup at broken.test failed"},
		{[]string{"www.broken.test"}, false, true, "www.broken.test", "CAA lookup at broken.test failed"},
		{[]string{"refused.test"}, false, true, "refused.test", "never permission"},
		{[]string{"ok.test", "www.other.test", "none.test"}, false, false, "www.other.test", "CAA at other.test"},
	}
	for _, tt := range tests {
		got, err := c.Check(testContext(t), tt.names)
		if err != nil {
			t.Errorf("Check(%q) error = %v", tt.names, err)
			continue
		}
		if got.Allowed != tt.allowed || got.LookupFailed != tt.lookupFailed || got.Domain != tt.domain || !strings.Contains(got.Reason, tt.reason) {
			t.Errorf("Check(%q) = %+v; want allowed %v, lookup failed %v, domain %q, reason containing %q",
				tt.names, got, tt.allowed, tt.lookupFailed, tt.domain, tt.reason)
		}
	}
}

func TestCheckTimeout(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	got, err := checker(t, pc.LocalAddr().String(), 100*time.Millisecond).Check(testContext(t), []string{"example.test"})
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
	c := &Checker{Resolver: f, Identities: []string{"certflow.test"}}
	got, err := c.Check(testContext(t), []string{"example.test", "*.example.test", "www.example.test"})
	if err != nil || !got.Allowed {
		t.Fatalf("Check = %+v, %v; want allowed", got, err)
	}
	want := map[string]int{"example.test": 1, "www.example.test": 1, "test": 1}
	if len(f) != len(want) || f["example.test"] != 1 || f["www.example.test"] != 1 || f["test"] != 1 {
		t.Fatalf("lookups = %v; want %v (up to and including the TLD, each owner once)", f, want)
	}
	if _, err := (&Checker{Resolver: f}).Check(testContext(t), []string{"x.test"}); err == nil {
		t.Fatalf("Check without identities = nil error; want one")
	}
}
