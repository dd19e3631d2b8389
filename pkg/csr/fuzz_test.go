package csr

import (
	"errors"
	"testing"

	"github.com/certflow/certflow/pkg/goodkey"
)

// FuzzParse checks that Parse never panics, that every refusal is an *Error
// with a known Reason, and that anything it accepts has a verified signature
// and a supported key. Seeds live in testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	der, err := Build(p256(f), []string{"example.com", "www.example.com"})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(toPEM("CERTIFICATE REQUEST", der))
	f.Add("")

	known := map[Reason]bool{
		ReasonNotPEM: true, ReasonNotCSR: true, ReasonBadSignature: true,
		ReasonUnsupportedKey: true, ReasonNameMismatch: true, ReasonForbiddenContent: true,
	}
	for _, r := range goodkey.Reasons {
		known[Reason(r)] = true
	}
	f.Fuzz(func(t *testing.T, text string) {
		req, err := Parse(text)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || !known[e.Reason] || e.Detail == "" {
				t.Fatalf("Parse(%q) = %v; want an *Error with a known Reason and a Detail", text, err)
			}
			if req != nil {
				t.Fatalf("Parse(%q) returned a request and an error", text)
			}
			return
		}
		if err := req.CheckSignature(); err != nil {
			t.Fatalf("Parse(%q) accepted a request whose signature fails: %v", text, err)
		}
		if _, err := Algorithm(req.PublicKey); err != nil {
			t.Fatalf("Parse(%q) accepted a request with an unsupported key: %v", text, err)
		}
		if len(req.IPAddresses)+len(req.EmailAddresses)+len(req.URIs) > 0 {
			t.Fatalf("Parse(%q) accepted a request with non-DNS SANs", text)
		}
		// Names are CheckNames's business; it must not panic on anything
		// Parse accepts.
		_ = CheckNames(req, []string{"example.com"})
	})
}
