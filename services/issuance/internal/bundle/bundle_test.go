package bundle_test

import (
	"strings"
	"testing"

	"github.com/certflow/certflow/services/issuance/internal/bundle"
)

func TestCheckPassword(t *testing.T) {
	tests := []struct {
		password string
		ok       bool
	}{
		{"12345678", true},
		{"Tomcat-pass-1!~", true},
		{strings.Repeat("a", 128), true},
		{"1234567", false},
		{strings.Repeat("a", 129), false},
		{"", false},
		{"with space", false},
		{"tab\there12", false},
		{"pässwörter", false},
		{"nul\x00byte12", false},
		{"del\x7fchar12", false},
	}
	for _, tt := range tests {
		if err := bundle.CheckPassword(tt.password); (err == nil) != tt.ok {
			t.Errorf("CheckPassword(%q) = %v; want ok %v", tt.password, err, tt.ok)
		}
	}
}

func TestNewPassword(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		p, err := bundle.NewPassword()
		if err != nil {
			t.Fatal(err)
		}
		if len(p) != bundle.GeneratedLength || bundle.CheckPassword(p) != nil || strings.Trim(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") != "" {
			t.Fatalf("NewPassword() = %q; want %d letters and digits", p, bundle.GeneratedLength)
		}
		if seen[p] {
			t.Fatalf("NewPassword() repeated %q", p)
		}
		seen[p] = true
	}
}

func TestNeedsKey(t *testing.T) {
	for st, want := range map[bundle.ServerType]bool{
		bundle.Nginx: false, bundle.Apache: false, bundle.Other: false, bundle.Tomcat: true, bundle.IIS: true, "LIGHTTPD": false,
	} {
		if got := bundle.NeedsKey(st); got != want {
			t.Errorf("NeedsKey(%s) = %v; want %v", st, got, want)
		}
	}
	if bundle.Valid("LIGHTTPD") || !bundle.Valid(bundle.IIS) {
		t.Error("Valid: only the five server types")
	}
	if _, err := bundle.Make(bundle.Request{Type: bundle.IIS}); err != bundle.ErrNoKey {
		t.Errorf("Make(IIS, no key) = %v; want ErrNoKey", err)
	}
}
