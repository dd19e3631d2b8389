// Package keyseal encrypts private keys at rest: a key is encoded as
// PKCS#8 and sealed with pkg/sealbox (AES-256-GCM under a key-encryption
// key, version byte and owner as associated data), so that a sealed key
// only opens for the record it was sealed for and a ciphertext copied into
// another record, or relabelled as another version, fails to open.
package keyseal

import (
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/certflow/certflow/pkg/sealbox"
)

// ErrOpen is returned (wrapped) by Open when a sealed key cannot be opened:
// it is truncated, of an unknown version, was sealed under another KEK or for
// another owner, or was altered.
var ErrOpen = sealbox.ErrOpen

// Sealer encrypts private keys under a key-encryption key (KEK). It is
// safe for concurrent use.
type Sealer struct {
	box *sealbox.Box
}

// New returns a Sealer for the 32-byte key-encryption key kek.
func New(kek []byte) (*Sealer, error) {
	box, err := sealbox.New(kek)
	if err != nil {
		return nil, fmt.Errorf("keyseal: %w", err)
	}
	return &Sealer{box: box}, nil
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
	return s.box.Seal(plain, owner)
}

// Open decrypts a key sealed for owner. Any failure to authenticate wraps
// ErrOpen.
func (s *Sealer) Open(sealed []byte, owner string) (crypto.Signer, error) {
	if owner == "" {
		return nil, errors.New("keyseal: empty owner")
	}
	plain, err := s.box.Open(sealed, owner)
	if err != nil {
		return nil, err
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
