package domain

import (
	"strings"
	"testing"
)

func TestRevokedMail(t *testing.T) {
	for _, tt := range []struct {
		m       RevokedMail
		subject string
		body    []string
	}{
		{RevokedMail{Application: "applications/a1", Certificate: "certificates/c1", Domains: []string{"example.com"}, Reason: "keyCompromise", By: "customer"},
			"Your certificate for example.com was revoked", []string{"certificates/c1", "at your request (reason: keyCompromise)", "  - example.com\n", "make a new key"}},
		{RevokedMail{Application: "applications/a2", Certificate: "certificates/c2", Domains: []string{"a.test", "b.test", "c.test", "d.test"}, Reason: "privilegeWithdrawn", By: "reviewer"},
			"Your certificate for a.test, b.test, c.test and 1 more was revoked", []string{"by the CA (reason: privilegeWithdrawn)", "  - d.test\n"}},
	} {
		got := tt.m.Render()
		if got.Subject != tt.subject {
			t.Errorf("Render(%v).Subject = %q; want %q", tt.m, got.Subject, tt.subject)
		}
		for _, w := range tt.body {
			if !strings.Contains(got.Body, w) {
				t.Errorf("Render(%v).Body lacks %q:\n%s", tt.m, w, got.Body)
			}
		}
	}
}
