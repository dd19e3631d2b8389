// Package keyseal encrypts private keys at rest.
//
// A sealed key is
//
//	version (1 byte, 0x01) || nonce (12 bytes) || AES-256-GCM(PKCS#8 key)
//
// with the version byte and the owner as associated data, so that a sealed
// key only opens for the record it was sealed for and a ciphertext copied
// into another record, or relabelled as another version, fails to open.
package keyseal

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
)

const (
	version1 = 0x01
	kekSize  = 32 // AES-256
)

// ErrOpen is returned (wrapped) by Open when a sealed key cannot be opened:
// it is truncated, of an unknown version, was sealed under another KEK or for
// another owner, or was altered.
var ErrOpen = errors.New("keyseal: cannot open sealed key")

// Sealer encrypts private keys with AES-256-GCM under a key-encryption key
// (KEK). It is safe for concurrent use.
type Sealer struct {
	aead cipher.AEAD
}

// New returns a Sealer for the 32-byte key-encryption key kek.
func New(kek []byte) (*Sealer, error) {
	if len(kek) != kekSize {
		return nil, fmt.Errorf("keyseal: key-encryption key has %d bytes; want %d", len(kek), kekSize)
	}
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, fmt.Errorf("keyseal: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("keyseal: %w", err)
	}
	return &Sealer{aead: aead}, nil
}

func additionalData(owner string) []byte {
	return append([]byte{version1}, owner...)
}

// Seal encrypts key for owner, a name of the record the key belongs to (such
// as "ca/intermediate" or a certificate's name).
func (s *Sealer) Seal(key crypto.Signer, owner string) ([]byte, error) {
	if owner == "" {
		return nil, errors.New("keyseal: empty owner")
	}
	if key == nil {
		return nil, errors.New("keyseal: no key to seal")
	}
	plain, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("keyseal: encoding key for %q: %w", owner, err)
	}
	defer clear(plain)

	nonceSize := s.aead.NonceSize()
	out := make([]byte, 1+nonceSize, 1+nonceSize+len(plain)+s.aead.Overhead())
	out[0] = version1
	// Random 96-bit nonces are safe here: a KEK seals few keys (far fewer
	// than the 2^32 limit for random GCM nonces).
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, fmt.Errorf("keyseal: making nonce: %w", err)
	}
	return s.aead.Seal(out, out[1:], plain, additionalData(owner)), nil
}

// Open decrypts a key sealed for owner. Any failure to authenticate wraps
// ErrOpen.
func (s *Sealer) Open(sealed []byte, owner string) (crypto.Signer, error) {
	if owner == "" {
		return nil, errors.New("keyseal: empty owner")
	}
	nonceSize := s.aead.NonceSize()
	if len(sealed) < 1+nonceSize+s.aead.Overhead() {
		return nil, fmt.Errorf("%w for %q: %d bytes is too short", ErrOpen, owner, len(sealed))
	}
	if sealed[0] != version1 {
		return nil, fmt.Errorf("%w for %q: unknown version %d", ErrOpen, owner, sealed[0])
	}
	nonce, ciphertext := sealed[1:1+nonceSize], sealed[1+nonceSize:]
	plain, err := s.aead.Open(nil, nonce, ciphertext, additionalData(owner))
	if err != nil {
		// GCM cannot tell a wrong KEK from a wrong owner or a changed byte.
		return nil, fmt.Errorf("%w for %q: wrong key-encryption key, wrong owner, or damaged data", ErrOpen, owner)
	}
	defer clear(plain)
	key, err := x509.ParsePKCS8PrivateKey(plain)
	if err != nil {
		return nil, fmt.Errorf("keyseal: decoding key for %q: %w", owner, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("keyseal: key for %q is a %T, which cannot sign", owner, key)
	}
	return signer, nil
}
