package webhooksig_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/certflow/certflow/services/notification/webhooksig"
)

func TestSignVerify(t *testing.T) {
	const secret = "whsec_test-secret"
	body := []byte(`{"id":"e1","type":"certflow.application.issued"}`)
	at := time.Unix(1_795_000_000, 0)
	good := webhooksig.Sign(secret, body, at)
	if !strings.HasPrefix(good, "t=1795000000,v1=") || len(good) != len("t=1795000000,v1=")+64 {
		t.Fatalf("Sign = %q; want t=1795000000,v1=<64 hex digits>", good)
	}
	v1 := strings.TrimPrefix(good, "t=1795000000,")
	other := webhooksig.Sign("whsec_other", body, at)
	tests := []struct {
		name   string
		secret string
		header string
		body   []byte
		now    time.Time
		want   error // nil: valid
	}{
		{"valid", secret, good, body, at, nil},
		{"valid within tolerance", secret, good, body, at.Add(4 * time.Minute), nil},
		{"valid with clock skew", secret, good, body, at.Add(-4 * time.Minute), nil},
		{"valid with spaces and a rotated signature", secret, "t=1795000000, v1=" + strings.Repeat("00", 32) + ", " + v1 + ",v0=x", body, at, nil},
		{"too old", secret, good, body, at.Add(6 * time.Minute), webhooksig.ErrExpired},
		{"from the future", secret, good, body, at.Add(-6 * time.Minute), webhooksig.ErrExpired},
		{"other body", secret, good, []byte(`{"id":"e2"}`), at, webhooksig.ErrMismatch},
		{"other secret", secret, other, body, at, webhooksig.ErrMismatch},
		{"timestamp changed", secret, "t=1795000001," + v1, body, at, webhooksig.ErrMismatch},
		{"empty", secret, "", body, at, webhooksig.ErrMalformed},
		{"no timestamp", secret, v1, body, at, webhooksig.ErrMalformed},
		{"no signature", secret, "t=1795000000", body, at, webhooksig.ErrMalformed},
		{"bad timestamp", secret, "t=soon," + v1, body, at, webhooksig.ErrMalformed},
		{"two timestamps", secret, "t=1,t=1795000000," + v1, body, at, webhooksig.ErrMalformed},
		{"short signature", secret, "t=1795000000,v1=abcd", body, at, webhooksig.ErrMalformed},
		{"not hex", secret, "t=1795000000,v1=" + strings.Repeat("zz", 32), body, at, webhooksig.ErrMalformed},
	}
	for _, tt := range tests {
		err := webhooksig.Verify(tt.secret, tt.header, tt.body, tt.now, webhooksig.DefaultTolerance)
		if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
			t.Errorf("Verify(%s: %q) = %v; want %v", tt.name, tt.header, err, tt.want)
		}
	}
}
