package apikey

import (
	"strings"
	"testing"

	"github.com/certflow/certflow/pkg/auth"
)

func TestParseAndLookup(t *testing.T) {
	keys, err := Parse(strings.NewReader("# comment\n\ncf_key_customer_0001 acme\ncf_key_reviewer_0001 ca-staff reviewer\n"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		key  string
		want auth.Principal
		ok   bool
	}{
		{"cf_key_customer_0001", auth.Principal{Account: "acme", Role: auth.Customer}, true},
		{"cf_key_reviewer_0001", auth.Principal{Account: "ca-staff", Role: auth.Reviewer}, true},
		{"cf_key_customer_0002", auth.Principal{}, false},
		{"", auth.Principal{}, false},
	}
	for _, tt := range tests {
		got, ok := keys.Lookup(tt.key)
		if ok != tt.ok || got != tt.want {
			t.Errorf("Lookup(%q) = %v, %v; want %v, %v", tt.key, got, ok, tt.want, tt.ok)
		}
	}
}

func TestParseRejects(t *testing.T) {
	for _, in := range []string{
		"",                                  // no keys
		"short acme\n",                      // key too short
		"cf_key_customer_0001\n",            // no account
		"cf_key_customer_0001 acme admin\n", // unknown role
		"cf_key_customer_0001 a\ncf_key_customer_0001 b\n", // duplicate
	} {
		if _, err := Parse(strings.NewReader(in)); err == nil {
			t.Errorf("Parse(%q) = nil error; want a refusal", in)
		}
	}
}
