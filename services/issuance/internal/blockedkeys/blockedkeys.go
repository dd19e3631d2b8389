// Package blockedkeys keeps the public keys revoked for keyCompromise, by
// the SHA-256 of their DER SubjectPublicKeyInfo, in MongoDB: one document
// per key whose id is the hash, so a check is one read by _id.
//
// Store satisfies pkg/goodkey's Blocklist (Contains), so the key policy can
// consult it for every CSR and every generated key.
package blockedkeys

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/certflow/certflow/pkg/apierr"
	"github.com/certflow/certflow/pkg/docstore"
	"github.com/certflow/certflow/pkg/goodkey"
	"github.com/certflow/certflow/services/issuance/internal/domain"
)

// account is the owner of every record: blocked keys belong to the CA.
const account = "ca"

// Store is the blocked-key collection.
type Store struct {
	S *docstore.Store[domain.BlockedKey]
}

// Hash is the SHA-256 of pub's DER SubjectPublicKeyInfo.
func Hash(pub crypto.PublicKey) ([32]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return [32]byte{}, fmt.Errorf("encode public key: %w", err)
	}
	return sha256.Sum256(der), nil
}

// Contains reports whether the key with this SPKI hash is blocked.
func (s Store) Contains(ctx context.Context, spkiHash [32]byte) (bool, error) {
	_, err := s.S.Get(ctx, "", hex.EncodeToString(spkiHash[:]))
	if errors.Is(err, apierr.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// Block records the key as compromised; blocking it again changes nothing.
func (s Store) Block(ctx context.Context, spkiHash [32]byte, certificate string, at time.Time) error {
	id := hex.EncodeToString(spkiHash[:])
	_, _, err := s.S.Create(ctx, id, account, domain.BlockedKey{SPKISHA256: id, Certificate: certificate, BlockTime: at.UTC()})
	return err
}

// Policy is the store as a pkg/goodkey Blocklist: the key policy checks
// every CSR's key and every generated key against it.
func (s Store) Policy() goodkey.Blocklist { return policyList{s} }

type policyList struct{ s Store }

func (p policyList) Contains(ctx context.Context, h goodkey.Hash) (bool, error) {
	return p.s.Contains(ctx, h)
}
