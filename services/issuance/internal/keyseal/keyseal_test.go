package keyseal

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"testing"
)

// version1 is the format's first byte: keys sealed by earlier versions
// (which had their own copy of the sealing code) must still open.
const version1 = 0x01

func newSealer(t *testing.T) *Sealer {
	t.Helper()
	kek := make([]byte, 32)
	if _, err := rand.Read(kek); err != nil {
		t.Fatal(err)
	}
	s, err := New(kek)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

type equaler interface {
	Equal(crypto.PrivateKey) bool
}

func TestRoundTrip(t *testing.T) {
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	s := newSealer(t)
	for _, tc := range []struct {
		name string
		key  crypto.Signer
	}{
		{"P-256", ecKey},
		{"RSA-2048", rsaKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sealed, err := s.Seal(tc.key, "cert/example.com")
			if err != nil {
				t.Fatalf("Seal: %v", err)
			}
			if sealed[0] != version1 {
				t.Errorf("Seal(...)[0] = %#x; want %#x", sealed[0], version1)
			}
			got, err := s.Open(sealed, "cert/example.com")
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if !got.(equaler).Equal(tc.key) {
				t.Errorf("Open(Seal(key)) is a different key")
			}
			// Sealing twice must not repeat a nonce.
			again, err := s.Seal(tc.key, "cert/example.com")
			if err != nil {
				t.Fatalf("Seal: %v", err)
			}
			if bytes.Equal(sealed[1:13], again[1:13]) {
				t.Errorf("two Seal calls used the same nonce")
			}
		})
	}
}

func TestOpenFails(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s := newSealer(t)
	other := newSealer(t)
	sealed, err := s.Seal(key, "ca/intermediate")
	if err != nil {
		t.Fatalf("Seal: %v", err)
	}
	flip := func(i int) []byte {
		b := bytes.Clone(sealed)
		b[i] ^= 0x80
		return b
	}
	tests := []struct {
		name   string
		s      *Sealer
		sealed []byte
		owner  string
	}{
		{"wrong owner", s, sealed, "ca/root"},
		{"wrong KEK", other, sealed, "ca/intermediate"},
		{"version byte changed", s, flip(0), "ca/intermediate"},
		{"nonce changed", s, flip(5), "ca/intermediate"},
		{"ciphertext changed", s, flip(20), "ca/intermediate"},
		{"tag changed", s, flip(len(sealed) - 1), "ca/intermediate"},
		{"truncated", s, sealed[:len(sealed)-1], "ca/intermediate"},
		{"too short", s, sealed[:10], "ca/intermediate"},
		{"empty", s, nil, "ca/intermediate"},
	}
	for _, tc := range tests {
		if _, err := tc.s.Open(tc.sealed, tc.owner); !errors.Is(err, ErrOpen) {
			t.Errorf("Open(%s) = %v; want ErrOpen", tc.name, err)
		}
	}
}

func TestNewKEKSize(t *testing.T) {
	for _, n := range []int{0, 16, 24, 31, 33, 64} {
		if _, err := New(make([]byte, n)); err == nil {
			t.Errorf("New(%d bytes) = nil error; want an error", n)
		}
	}
}

func TestEmptyOwner(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s := newSealer(t)
	if _, err := s.Seal(key, ""); err == nil {
		t.Error("Seal(key, \"\") = nil error; want an error")
	}
	if _, err := s.Open([]byte{version1}, ""); err == nil {
		t.Error("Open(sealed, \"\") = nil error; want an error")
	}
}
