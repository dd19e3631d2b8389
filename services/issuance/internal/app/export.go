package app

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	eventsv1 "github.com/certflow/certflow/gen/go/certflow/events/v1"
	"github.com/certflow/certflow/pkg/apierr"
	"github.com/certflow/certflow/pkg/audit"
	"github.com/certflow/certflow/pkg/auth"
	"github.com/certflow/certflow/pkg/events"
	"github.com/certflow/certflow/services/issuance/internal/bundle"
	"github.com/certflow/certflow/services/issuance/internal/domain"
)

// Reasons of export refusals.
const (
	ReasonNoPrivateKey       = "NO_PRIVATE_KEY"
	ReasonCertificateRevoked = "CERTIFICATE_REVOKED"
	ReasonInvalidPassword    = "INVALID_PASSWORD"
)

// ExportRequest is what ExportCertificate asks for.
type ExportRequest struct {
	Type bundle.ServerType
	// Password protects keystores; "" makes one.
	Password string
	Legacy   bool
	Zip      bool
}

// Export is an exported bundle.
type Export struct {
	Files []bundle.File
	// Password is set when it was generated: returned once, never stored.
	Password string
	// Archive is the files zipped, when asked.
	Archive *bundle.File
}

// Export makes the files a server type installs the account's certificate
// id from. Another account's certificate is NotFound. Keystores need the
// key the service made (FailedPrecondition NO_PRIVATE_KEY for a customer's
// CSR); PEM types then give the certificate files alone. A revoked
// certificate's key is not handed out (FailedPrecondition
// CERTIFICATE_REVOKED): it is no use to a server, and after keyCompromise
// it should not spread further.
//
// An export that carries the key is recorded on the certificate, with a
// certflow.certificate.key_exported event in its outbox, in one write before
// the files are returned; when that write fails the export is refused
// (Unavailable AUDIT_UNAVAILABLE), so no key leaves unrecorded.
func (a *App) Export(ctx context.Context, account, id string, req ExportRequest) (*Export, error) {
	if !bundle.Valid(req.Type) {
		return nil, apierr.Invalid("server_type", "INVALID_SERVER_TYPE", "server_type is required: NGINX, APACHE, TOMCAT, IIS or OTHER")
	}
	generated := false
	password := req.Password
	if bundle.NeedsPassword(req.Type) {
		if password == "" {
			p, err := bundle.NewPassword()
			if err != nil {
				return nil, fmt.Errorf("generate password: %w", err)
			}
			password, generated = p, true
		} else if err := bundle.CheckPassword(password); err != nil {
			return nil, apierr.Invalid("password", ReasonInvalidPassword, "%v; or leave it empty and the service makes one", err)
		}
	} else {
		password = "" // PEM files are not encrypted
	}
	rec, err := a.certs.Get(ctx, account, id)
	if err != nil {
		return nil, err
	}
	name := "certificates/" + id
	c := rec.Doc
	if !c.ServiceHoldsKey && bundle.NeedsKey(req.Type) {
		return nil, apierr.New(apierr.FailedPrecondition, ReasonNoPrivateKey,
			"%s was issued for your CSR, so the service has no private key to put in a %s keystore; export server type OTHER for "+
				"cert.pem and chain.pem and build the keystore where your key is: openssl pkcs12 -export -inkey YOUR_KEY.pem -in cert.pem -certfile chain.pem -name tomcat -out certificate.pfx", name, req.Type)
	}
	if c.ServiceHoldsKey && c.State == domain.Revoked {
		return nil, apierr.New(apierr.FailedPrecondition, ReasonCertificateRevoked,
			"%s is revoked, so its private key is not exported; reissue the application for a new certificate and key", name)
	}
	leaf, err := x509.ParseCertificate(c.DER)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", name, err)
	}
	chain, err := parseCerts(a.ca.ChainPEMFor(c.DER))
	if err != nil {
		return nil, fmt.Errorf("chain of %s: %w", name, err)
	}
	var key crypto.Signer
	if c.ServiceHoldsKey {
		if key, err = a.sealer.Open(c.SealedKey, name); err != nil {
			return nil, fmt.Errorf("open key of %s: %w", id, err)
		}
	}
	now := a.now()
	files, err := bundle.Make(bundle.Request{Type: req.Type, Leaf: leaf, Chain: chain, Key: key, Password: password, Legacy: req.Legacy, Created: c.CreateTime})
	if err != nil {
		return nil, fmt.Errorf("export %s for %s: %w", name, req.Type, err)
	}
	out := &Export{Files: files}
	if generated {
		out.Password = password
	}
	if req.Zip {
		z, err := bundle.Zip(id+"-"+strings.ToLower(string(req.Type))+".zip", files, now)
		if err != nil {
			return nil, fmt.Errorf("zip %s: %w", name, err)
		}
		out.Archive = &z
	}
	if key != nil {
		if err := a.recordKeyExport(ctx, account, id, req, files, generated); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// recordKeyExport counts the export on the certificate and queues its
// key_exported event in the same write.
func (a *App) recordKeyExport(ctx context.Context, account, id string, req ExportRequest, files []bundle.File, generated bool) error {
	name := "certificates/" + id
	p, _ := auth.From(ctx)
	var names []string
	for _, f := range files {
		names = append(names, f.Name)
	}
	_, err := a.certs.Update(ctx, account, id, func(c *domain.Certificate) ([]events.Event, error) {
		now := a.now()
		c.RecordKeyExport(now)
		ev, err := events.Stamp(events.CertificateKeyExported, source, name, now, &eventsv1.CertificateKeyExported{
			Account: account, Certificate: name, Application: c.Application, SerialNumber: c.SerialHex,
			ServerType: string(req.Type), Files: names, LegacyPkcs12: req.Legacy && hasPKCS12(files),
			PasswordGenerated: generated, Role: string(p.Role), ExportCount: int64(c.KeyExports), Actor: p.Actor,
		})
		if err != nil {
			return nil, err
		}
		// The audit trail's record of the key leaving, in the same write.
		return audit.Append(ctx, []events.Event{ev}, source, audit.CertificateKeyDownload, account, name, now)
	})
	if err != nil {
		if errors.Is(err, apierr.ErrNotFound) {
			return err
		}
		return apierr.Wrap(err, apierr.Unavailable, ReasonAuditUnavailable,
			"the export of the private key could not be recorded, so it was not handed out; try again in a few seconds")
	}
	return nil
}

func hasPKCS12(files []bundle.File) bool {
	for _, f := range files {
		if f.MediaType == bundle.MediaPKCS12 {
			return true
		}
	}
	return false
}

func parseCerts(s string) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	rest := []byte(s)
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return out, nil
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
}
