package apikey

import (
	"strings"
	"testing"

	"github.com/certflow/certflow/pkg/auth"
)

func TestParseAndLookup(t *testing.T) {
	keys, err := Parse(strings.NewReader("# comment\n\n" +
		Hash("cf_key_customer_0001") + " acme\n" +
		Hash("cf_key_reviewer_0001") + " ca-staff reviewer\n"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		key  string
		want auth.Principal
		ok   bool
	}{
		// The actor is the start of the key's line in the keys file.
		{"cf_key_customer_0001", auth.Principal{Account: "acme", Role: auth.Customer, Actor: Hash("cf_key_customer_0001")[:len(HashPrefix)+16]}, true},
		{"cf_key_reviewer_0001", auth.Principal{Account: "ca-staff", Role: auth.Reviewer, Actor: Hash("cf_key_reviewer_0001")[:len(HashPrefix)+16]}, true},
		{"cf_key_customer_0002", auth.Principal{}, false},
		// The hash is not a key.
		{Hash("cf_key_customer_0001"), auth.Principal{}, false},
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
	h := Hash("cf_key_customer_0001")
	for _, in := range []string{
		"",                                      // no keys
		"cf_key_customer_0001 acme\n",           // a key, not a hash
		"sha256:abcd acme\n",                    // short hash
		"md5:" + h[len("sha256:"):] + " acme\n", // other prefix
		h + "\n",                                // no account
		h + " acme admin\n",                     // unknown role
		h + " a\n" + h + " b\n",                 // duplicate
	} {
		if _, err := Parse(strings.NewReader(in)); err == nil {
			t.Errorf("Parse(%q) = nil error; want a refusal", in)
		}
	}
}

// TestParseDoesNotQuoteKeys: a key pasted where its hash belongs is refused
// without the error repeating it.
func TestParseDoesNotQuoteKeys(t *testing.T) {
	const key = "cf_dev_0123456789abcdef0123456789abcdef"
	_, err := Parse(strings.NewReader(key + " dev customer\n"))
	if err == nil || strings.Contains(err.Error(), key) {
		t.Fatalf("Parse(<plaintext key line>) = %v; want a refusal that does not quote the key", err)
	}
}
