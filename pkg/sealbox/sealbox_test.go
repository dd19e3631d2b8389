package sealbox

import (
	"bytes"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSealOpen(t *testing.T) {
	b, err := New(bytes.Repeat([]byte{1}, KEKSize))
	if err != nil {
		t.Fatal(err)
	}
	other, _ := New(bytes.Repeat([]byte{2}, KEKSize))
	secret := []byte("whsec_example")
	sealed, err := b.Seal(secret, "webhooks/w1")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, secret) {
		t.Fatalf("sealed bytes hold the secret")
	}
	if got, err := b.Open(sealed, "webhooks/w1"); err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("Open = %q, %v; want %q", got, err, secret)
	}
	damaged := bytes.Clone(sealed)
	damaged[len(damaged)-1] ^= 1
	for name, try := range map[string]func() ([]byte, error){
		"other owner": func() ([]byte, error) { return b.Open(sealed, "webhooks/w2") },
		"other KEK":   func() ([]byte, error) { return other.Open(sealed, "webhooks/w1") },
		"damaged":     func() ([]byte, error) { return b.Open(damaged, "webhooks/w1") },
		"truncated":   func() ([]byte, error) { return b.Open(sealed[:5], "webhooks/w1") },
	} {
		if _, err := try(); !errors.Is(err, ErrOpen) {
			t.Errorf("Open(%s) = %v; want ErrOpen", name, err)
		}
	}
}

func TestLoadKEK(t *testing.T) {
	kek := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{3}, KEKSize))
	file := filepath.Join(t.TempDir(), "kek")
	if err := os.WriteFile(file, []byte(kek+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ inline, file string }{{kek, ""}, {"", file}, {kek, "/nonexistent"}} {
		if got, err := LoadKEK("k", tt.inline, tt.file, "x"); err != nil || len(got) != KEKSize {
			t.Errorf("LoadKEK(%q, %q) = %d bytes, %v", tt.inline, tt.file, len(got), err)
		}
	}
	bad := "not-base64-" + kek
	if _, err := LoadKEK("k", bad, "", "x"); err == nil || strings.Contains(err.Error(), bad) {
		t.Errorf("LoadKEK(bad) = %v; want an error that does not quote it", err)
	}
	if _, err := LoadKEK("k", "", "", "x"); err == nil {
		t.Errorf("LoadKEK(nothing) = nil error")
	}
}
