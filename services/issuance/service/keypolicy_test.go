package service

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/certflow/certflow/pkg/apierr"
	"github.com/certflow/certflow/pkg/goodkey"
	"github.com/certflow/certflow/services/issuance/internal/ca"
	"github.com/certflow/certflow/services/issuance/internal/keyseal"
)

// TestKeyPolicy: the policy the service starts with refuses the CA's own
// keys and the keys of the files its flags name, each with its reason.
// The files are written by the test from keys it makes (no key material
// is committed).
func TestKeyPolicy(t *testing.T) {
	sealer, err := keyseal.New(bytes.Repeat([]byte{9}, 32))
	if err != nil {
		t.Fatal(err)
	}
	authority, err := ca.LoadOrCreate(t.TempDir(), sealer, ca.Options{})
	if err != nil {
		t.Fatal(err)
	}
	weak, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	compromised, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	good, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	h, err := goodkey.SPKIHash(compromised.Public())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := Config{DebianWeakKeysFile: filepath.Join(dir, "blacklist.RSA-2048"), BlockedKeysFile: filepath.Join(dir, "blocked")}
	if err := os.WriteFile(cfg.DebianWeakKeysFile, []byte("# test\n"+goodkey.DebianLine(&weak.PublicKey)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg.BlockedKeysFile, []byte(h.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := keyPolicy(cfg, authority)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		key    any
		reason string
	}{
		{"root", authority.Root().PublicKey, goodkey.ReasonIsCAKey},
		{"intermediate", authority.Intermediate().PublicKey, goodkey.ReasonIsCAKey},
		{"Debian weak", &weak.PublicKey, goodkey.ReasonDebianWeak},
		{"blocked", compromised.Public(), goodkey.ReasonCompromised},
		{"good", good.Public(), ""},
	} {
		err := p.Check(context.Background(), tc.key)
		if tc.reason == "" && err != nil || tc.reason != "" && !errors.Is(err, &apierr.Error{Reason: tc.reason}) {
			t.Errorf("Check(%s) = %v; want reason %q", tc.name, err, tc.reason)
		}
	}

	cfg.BlockedKeysFile = filepath.Join(dir, "missing")
	if _, err := keyPolicy(cfg, authority); err == nil {
		t.Error("keyPolicy with a missing blocked-keys file = nil error; want one (the service must not start)")
	}
}
