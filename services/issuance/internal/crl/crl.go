// Package crl keeps the CA's CRLs current and serves them over HTTP.
//
// The intermediate's CRL lists every revoked leaf that has not expired,
// with its reason (none for unspecified, BR 7.2.2); the root's lists the
// revoked CA certificates it issued (none: the intermediate is never
// revoked through the API, so it is empty). Both have nextUpdate =
// thisUpdate + 7 days (BR 7.2: at most 10 days for subscriber CRLs) and a
// cRLNumber that grows by one with every CRL an issuer signs, kept in the
// database with the CRL itself.
//
// A CRL is signed again when what it lists changed, or when the current one
// is older than the refresh period (default a day, well before
// nextUpdate). The generator checks every check interval (default 30 s)
// and at once when told of a revocation in this process (Kick), so a
// revocation is on the CRL within a minute even when another replica took
// it. Each check reads only the revocations collection: one document per
// listed serial.
package crl

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"sort"
	"strconv"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/certflow/certflow/pkg/apierr"
	"github.com/certflow/certflow/pkg/docstore"
	"github.com/certflow/certflow/pkg/events"
	"github.com/certflow/certflow/services/issuance/internal/domain"
)

// Issuers, the ids of their CRL records.
const (
	Intermediate = "intermediate"
	Root         = "root"
)

// URL paths the handler serves. The certificates' CRL distribution points
// name them (leaves: the intermediate's, the intermediate: the root's).
const (
	IntermediatePath = "/crl/intermediate.crl"
	RootPath         = "/crl/root.crl"
)

// Defaults.
const (
	// Validity is nextUpdate - thisUpdate (BR 7.2: at most 10 days).
	Validity = 7 * 24 * time.Hour
	// DefaultRefresh is how old a CRL may get before it is signed again
	// though nothing changed.
	DefaultRefresh = 24 * time.Hour
	// DefaultCheckInterval bounds how long a revocation made by another
	// replica waits for the CRL (the CRL is regenerated within a minute of
	// a revocation; this leaves half of it for the signing and the
	// database).
	DefaultCheckInterval = 30 * time.Second
	// keepExpired is how long an entry is kept past its certificate's
	// notAfter before it is deleted; it leaves the CRL at notAfter.
	keepExpired = 24 * time.Hour
)

// Signer signs a CRL template as an issuer (ca.Authority: SignCRL for the
// intermediate, SignRootCRL for the root), linting it first.
type Signer interface {
	SignCRL(tmpl *x509.RevocationList) (*x509.RevocationList, error)
	SignRootCRL(tmpl *x509.RevocationList) (*x509.RevocationList, error)
}

// Config configures a Generator.
type Config struct {
	Revocations *docstore.Store[domain.Revocation]
	CRLs        *docstore.Store[domain.CRL]
	Signer      Signer
	Now         func() time.Time
	Log         *slog.Logger
	// Refresh: default DefaultRefresh; CheckInterval: default
	// DefaultCheckInterval.
	Refresh       time.Duration
	CheckInterval time.Duration
}

// Generator keeps the CRLs current.
type Generator struct {
	cfg  Config
	kick chan struct{}
}

// New returns a generator; Run runs it.
func New(cfg Config) *Generator {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = DefaultRefresh
	}
	if cfg.CheckInterval <= 0 {
		cfg.CheckInterval = DefaultCheckInterval
	}
	return &Generator{cfg: cfg, kick: make(chan struct{}, 1)}
}

// Kick asks for a check now (after a revocation); it never blocks.
func (g *Generator) Kick() {
	select {
	case g.kick <- struct{}{}:
	default:
	}
}

// Run checks at start, on every Kick and every check interval until ctx
// is done. A failed check is logged and tried again at the next one.
func (g *Generator) Run(ctx context.Context) error {
	t := time.NewTicker(g.cfg.CheckInterval)
	defer t.Stop()
	for {
		if err := g.Update(ctx); err != nil && ctx.Err() == nil {
			g.cfg.Log.Error("CRL update failed; retrying at the next check", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-g.kick:
		}
	}
}

// Update signs new CRLs where due.
func (g *Generator) Update(ctx context.Context) error {
	now := g.cfg.Now().UTC()
	revs, err := g.cfg.Revocations.Find(ctx, bson.D{}, 0)
	if err != nil {
		return err
	}
	var entries []x509.RevocationListEntry
	var expired []string
	for _, r := range revs {
		d := r.Doc
		if now.After(d.NotAfter) {
			if now.Sub(d.NotAfter) > keepExpired {
				expired = append(expired, r.ID)
			}
			continue
		}
		serial, ok := new(big.Int).SetString(d.SerialHex, 16)
		if !ok {
			return fmt.Errorf("revocation %s has a bad serial %q", r.ID, d.SerialHex)
		}
		rt := d.RevokeTime.UTC().Truncate(time.Second)
		if rt.After(now) {
			rt = now.Truncate(time.Second) // a clock step back: never after thisUpdate
		}
		entries = append(entries, x509.RevocationListEntry{SerialNumber: serial, RevocationTime: rt, ReasonCode: int(d.Reason)})
	}
	if err := g.sign(ctx, Intermediate, entries, now, g.cfg.Signer.SignCRL); err != nil {
		return err
	}
	if err := g.sign(ctx, Root, nil, now, g.cfg.Signer.SignRootCRL); err != nil {
		return err
	}
	for _, id := range expired {
		// Entries of certificates expired a day ago: off the CRL already.
		if err := g.cfg.Revocations.Delete(ctx, "", id); err != nil && !errors.Is(err, apierr.ErrNotFound) {
			return err
		}
	}
	return nil
}

// sign signs issuer's CRL with entries if they changed or the current one
// is due for refresh, with the next cRLNumber, in one versioned write.
func (g *Generator) sign(ctx context.Context, issuer string, entries []x509.RevocationListEntry, now time.Time,
	signWith func(*x509.RevocationList) (*x509.RevocationList, error)) error {
	sort.Slice(entries, func(i, j int) bool { return entries[i].SerialNumber.Cmp(entries[j].SerialNumber) < 0 })
	digest := digestOf(entries)
	if _, err := g.cfg.CRLs.Get(ctx, "", issuer); errors.Is(err, apierr.ErrNotFound) {
		if _, _, err := g.cfg.CRLs.Create(ctx, issuer, "ca", domain.CRL{Issuer: issuer}); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	var signed *domain.CRL
	_, err := g.cfg.CRLs.Update(ctx, "", issuer, func(c *domain.CRL) ([]events.Event, error) {
		if len(c.DER) > 0 && c.Digest == digest && now.Before(c.ThisUpdate.Add(g.cfg.Refresh)) && now.Before(c.NextUpdate) {
			return nil, docstore.ErrUnchanged
		}
		thisUpdate := now.Truncate(time.Second)
		if thisUpdate.Before(c.ThisUpdate) {
			thisUpdate = c.ThisUpdate // never earlier than the CRL it replaces
		}
		crl, err := signWith(&x509.RevocationList{
			Number:                    big.NewInt(c.Number + 1),
			ThisUpdate:                thisUpdate,
			NextUpdate:                thisUpdate.Add(Validity),
			RevokedCertificateEntries: entries,
		})
		if err != nil {
			return nil, err
		}
		c.Number++
		c.ThisUpdate, c.NextUpdate, c.DER, c.Digest = crl.ThisUpdate, crl.NextUpdate, crl.Raw, digest
		signed = c
		return nil, nil
	})
	if err != nil {
		return fmt.Errorf("CRL of the %s: %w", issuer, err)
	}
	if signed != nil {
		g.cfg.Log.Info("CRL signed", "issuer", issuer, "number", signed.Number, "entries", len(entries), "next_update", signed.NextUpdate)
	}
	return nil
}

func digestOf(entries []x509.RevocationListEntry) string {
	h := sha256.New()
	for _, e := range entries {
		fmt.Fprintf(h, "%x %d %d\n", e.SerialNumber, e.RevocationTime.Unix(), e.ReasonCode)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Handler serves GET IntermediatePath and RootPath: the current DER CRL,
// application/pkix-crl (RFC 5280 4.2.1.13), with its cRLNumber as the ETag
// and thisUpdate as Last-Modified; caches may keep it a minute, less than
// the time a revocation takes to reach it. 503 until the first CRL is
// signed.
func (g *Generator) Handler() http.Handler {
	mux := http.NewServeMux()
	for path, issuer := range map[string]string{IntermediatePath: Intermediate, RootPath: Root} {
		mux.HandleFunc("GET "+path, func(w http.ResponseWriter, r *http.Request) {
			rec, err := g.cfg.CRLs.Get(r.Context(), "", issuer)
			if err != nil || len(rec.Doc.DER) == 0 {
				if err != nil && !errors.Is(err, apierr.ErrNotFound) {
					g.cfg.Log.Error("reading the CRL", "issuer", issuer, "err", err)
				}
				w.Header().Set("Retry-After", "5")
				http.Error(w, "the CRL is not signed yet", http.StatusServiceUnavailable)
				return
			}
			c := rec.Doc
			h := w.Header()
			h.Set("Content-Type", "application/pkix-crl")
			h.Set("Cache-Control", "public, max-age=60")
			h.Set("ETag", strconv.Quote(issuer+"-"+strconv.FormatInt(c.Number, 10)))
			http.ServeContent(w, r, "", c.ThisUpdate, bytes.NewReader(c.DER))
		})
	}
	return mux
}
