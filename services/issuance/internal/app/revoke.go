package app

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/certflow/certflow/gen/go/certflow/events/v1"
	"github.com/certflow/certflow/pkg/apierr"
	"github.com/certflow/certflow/pkg/audit"
	"github.com/certflow/certflow/pkg/auth"
	"github.com/certflow/certflow/pkg/docstore"
	"github.com/certflow/certflow/pkg/events"
	"github.com/certflow/certflow/services/issuance/internal/domain"
)

// Revocations is the CRL's entries: one record per serial (account: the
// certificate's).
type Revocations interface {
	Create(ctx context.Context, id, account string, doc domain.Revocation, evs ...events.Event) (*docstore.Record[domain.Revocation], bool, error)
}

// KeyBlocklist records the keys revoked for keyCompromise, by the SHA-256
// of their DER SubjectPublicKeyInfo. The key policy (pkg/goodkey, through
// blockedkeys.Store.Policy) refuses them in every later request.
type KeyBlocklist interface {
	Block(ctx context.Context, spkiHash [32]byte, certificate string, at time.Time) error
}

// Revocation is what revoking needs.
type Revocation struct {
	Entries Revocations
	Blocked KeyBlocklist
	// Hash is the SPKI SHA-256 of a key (blockedkeys.Hash).
	Hash func(crypto.PublicKey) ([32]byte, error)
	// Changed is told after every revocation (the CRL generator's Kick).
	Changed func()
}

// Revoke revokes a certificate. A customer revokes only its own (another
// account's is NotFound) with a reason BR 7.2.2 lets a subscriber give; a
// reviewer revokes any, also for privilegeWithdrawn.
//
// The CRL entry is written first, then the certificate with the
// certflow.certificate.revoked event in its outbox: a crash between the two
// leaves the serial on the CRL (what was asked) and a retry finishes the
// certificate with the entry's reason and time. For keyCompromise the key
// is blocked before either, so no later request can use it.
//
// A retry with the same request_id returns the revoked certificate;
// revoking a revoked certificate otherwise is FailedPrecondition
// CERTIFICATE_ALREADY_REVOKED (AIP-216: the state allows no such move), and
// the reason it was revoked for stays.
func (a *App) Revoke(ctx context.Context, id string, reason domain.Reason, requestID string) (*docstore.Record[domain.Certificate], error) {
	if a.revocation.Entries == nil {
		return nil, errors.New("revocation is not configured")
	}
	p, err := auth.Require(ctx, auth.Customer, auth.Reviewer)
	if err != nil {
		return nil, err
	}
	by, account := domain.BySubscriber, p.Account
	if p.Role == auth.Reviewer {
		by, account = domain.ByCA, "" // CA staff: any account's certificate
	}
	if !domain.MayRevokeWith(by, reason) {
		return nil, apierr.Invalid("reason", "REVOCATION_REASON_NOT_ALLOWED",
			"reason %s is not one a %s may give (BR 7.2.2: a subscriber gives unspecified, keyCompromise, affiliationChanged, superseded or cessationOfOperation; privilegeWithdrawn is the CA's)", reason, by).
			WithMeta("reason", reason.String())
	}
	rec, err := a.certs.Get(ctx, account, id)
	if err != nil {
		return nil, err
	}
	name := "certificates/" + id
	if rec.Doc.State == domain.Revoked {
		if requestID != "" && rec.Doc.RevokeRequestID == requestID {
			return rec, nil
		}
		return nil, alreadyRevoked(name, rec.Doc)
	}
	now := a.now().UTC()
	if reason == domain.KeyCompromise {
		if err := a.blockKeyOf(ctx, name, rec.Doc.DER, now); err != nil {
			return nil, err
		}
	}
	entry, _, err := a.revocation.Entries.Create(ctx, rec.Doc.SerialHex, rec.Account, domain.Revocation{
		Certificate: name, SerialHex: rec.Doc.SerialHex, Reason: reason, RevokeTime: now, NotAfter: rec.Doc.NotAfter, By: by,
	})
	if err != nil {
		return nil, fmt.Errorf("record the revocation of %s: %w", name, err)
	}
	// An entry left by an interrupted earlier request decides.
	e := entry.Doc
	out, err := a.certs.Update(ctx, rec.Account, id, func(c *domain.Certificate) ([]events.Event, error) {
		if c.State == domain.Revoked {
			if requestID != "" && c.RevokeRequestID == requestID {
				return nil, docstore.ErrUnchanged
			}
			return nil, alreadyRevoked(name, *c)
		}
		c.State, c.RevokeTime, c.RevocationReason, c.RevokedBy, c.RevokeRequestID = domain.Revoked, e.RevokeTime, e.Reason, e.By, requestID
		ev, err := events.Stamp(events.CertificateRevoked, source, name, now, &eventsv1.CertificateRevoked{
			Account: rec.Account, Certificate: name, Application: c.Application, SerialNumber: c.SerialHex,
			RevokeTime: timestamppb.New(e.RevokeTime), ReasonCode: int32(e.Reason), Reason: e.Reason.String(),
			RevokedBy: string(e.By), Domains: c.Domains,
		})
		if err != nil {
			return nil, err
		}
		return audit.Append(ctx, []events.Event{ev}, source, audit.CertificateRevoke, rec.Account, name, now)
	})
	if err != nil {
		return nil, err
	}
	if a.revocation.Changed != nil {
		a.revocation.Changed()
	}
	return out, nil
}

func alreadyRevoked(name string, c domain.Certificate) error {
	return apierr.New(apierr.FailedPrecondition, "CERTIFICATE_ALREADY_REVOKED",
		"%s was revoked on %s (%s)", name, c.RevokeTime.UTC().Format(time.RFC3339), c.RevocationReason).
		WithMeta("reason", c.RevocationReason.String())
}

func (a *App) blockKeyOf(ctx context.Context, name string, der []byte, now time.Time) error {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return fmt.Errorf("parse %s: %w", name, err)
	}
	h, err := a.revocation.Hash(cert.PublicKey)
	if err != nil {
		return err
	}
	if err := a.revocation.Blocked.Block(ctx, h, name, now); err != nil {
		return fmt.Errorf("block the key of %s: %w", name, err)
	}
	return nil
}
