// Package sealbox seals small secrets at rest (webhook signing secrets and
// the like) under a key-encryption key (KEK), and reads KEKs from a file or
// the environment.
//
// A sealed secret is
//
//	version (1 byte, 0x01) || nonce (12 bytes) || AES-256-GCM(secret)
//
// with the version byte and the owner as associated data, so that a sealed
// secret opens only for the record it was sealed for.
package sealbox

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"
)

const (
	version1 = 0x01
	// KEKSize is the size of a key-encryption key (AES-256).
	KEKSize = 32
)

// ErrOpen is returned (wrapped) by Open when a sealed secret cannot be
// opened: truncated, of an unknown version, sealed under another KEK or for
// another owner, or altered.
var ErrOpen = errors.New("sealbox: cannot open sealed secret")

// Box seals and opens secrets under one KEK. It is safe for concurrent use.
type Box struct{ aead cipher.AEAD }

// New returns a Box for the 32-byte key-encryption key kek.
func New(kek []byte) (*Box, error) {
	if len(kek) != KEKSize {
		return nil, fmt.Errorf("sealbox: key-encryption key has %d bytes; want %d", len(kek), KEKSize)
	}
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, fmt.Errorf("sealbox: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("sealbox: %w", err)
	}
	return &Box{aead: aead}, nil
}

func additionalData(owner string) []byte { return append([]byte{version1}, owner...) }

// Seal encrypts secret for owner, the name of the record it belongs to.
func (b *Box) Seal(secret []byte, owner string) ([]byte, error) {
	if owner == "" {
		return nil, errors.New("sealbox: empty owner")
	}
	n := b.aead.NonceSize()
	out := make([]byte, 1+n, 1+n+len(secret)+b.aead.Overhead())
	out[0] = version1
	// Random 96-bit nonces: a KEK seals far fewer than 2^32 secrets.
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, fmt.Errorf("sealbox: making nonce: %w", err)
	}
	return b.aead.Seal(out, out[1:], secret, additionalData(owner)), nil
}

// Open decrypts a secret sealed for owner. Failures wrap ErrOpen and never
// include the sealed or opened bytes.
func (b *Box) Open(sealed []byte, owner string) ([]byte, error) {
	n := b.aead.NonceSize()
	if len(sealed) < 1+n+b.aead.Overhead() {
		return nil, fmt.Errorf("%w for %q: %d bytes is too short", ErrOpen, owner, len(sealed))
	}
	if sealed[0] != version1 {
		return nil, fmt.Errorf("%w for %q: unknown version %d", ErrOpen, owner, sealed[0])
	}
	plain, err := b.aead.Open(nil, sealed[1:1+n], sealed[1+n:], additionalData(owner))
	if err != nil {
		return nil, fmt.Errorf("%w for %q: wrong key-encryption key, wrong owner, or damaged data", ErrOpen, owner)
	}
	return plain, nil
}

// LoadKEK reads a base64 32-byte key-encryption key: inline if set (from
// the environment, or a program embedding the service), else from file.
// what names the key in errors and how says where to set it; an error never
// quotes the key.
func LoadKEK(what, inline, file, how string) ([]byte, error) {
	text := inline
	if text == "" && file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", what, err)
		}
		text = string(b)
	}
	if text == "" {
		return nil, fmt.Errorf("no %s: set %s (32 random bytes, base64; e.g. `head -c32 /dev/urandom | base64`)", what, how)
	}
	kek, err := base64.StdEncoding.DecodeString(strings.TrimSpace(text))
	if err != nil || len(kek) != KEKSize {
		return nil, fmt.Errorf("%s must be %d bytes in base64", what, KEKSize)
	}
	return kek, nil
}
