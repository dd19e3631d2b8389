// Package app is the issuance service's use cases: sign a certificate for an
// application (making the key when asked), and serve it for download.
package app

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/certflow/certflow/gen/go/certflow/events/v1"
	"github.com/certflow/certflow/pkg/apierr"
	"github.com/certflow/certflow/pkg/audit"
	"github.com/certflow/certflow/pkg/certpolicy"
	"github.com/certflow/certflow/pkg/csr"
	"github.com/certflow/certflow/pkg/docstore"
	"github.com/certflow/certflow/pkg/domainname"
	"github.com/certflow/certflow/pkg/events"
	"github.com/certflow/certflow/pkg/goodkey"
	"github.com/certflow/certflow/services/issuance/internal/ca"
	"github.com/certflow/certflow/services/issuance/internal/domain"
	"github.com/certflow/certflow/services/issuance/internal/lint"
	"github.com/certflow/certflow/services/issuance/internal/profile"
)

const source = "//certflow/issuance"

// Certificates is the certificate repository.
type Certificates interface {
	Create(ctx context.Context, id, account string, doc domain.Certificate, evs ...events.Event) (*docstore.Record[domain.Certificate], bool, error)
	Get(ctx context.Context, account, id string) (*docstore.Record[domain.Certificate], error)
	List(ctx context.Context, account string, o docstore.ListOptions) ([]*docstore.Record[domain.Certificate], bool, error)
	Update(ctx context.Context, account, id string, fn docstore.Mutation[domain.Certificate]) (*docstore.Record[domain.Certificate], error)
}

// Sealer encrypts private keys at rest.
type Sealer interface {
	Seal(key crypto.Signer, owner string) ([]byte, error)
	Open(sealed []byte, owner string) (crypto.Signer, error)
}

// Authorizer is the verification service's judgement immediately before
// signing: whether the account of ctx may have the domains signed at the
// signing time for the application's attempt (validated names, method, age,
// CAA). A refusal is a FailedPrecondition whose reason says why; the answer
// is the evidence of each name, in the order of the domains.
type Authorizer interface {
	AuthorizeIssuance(ctx context.Context, q AuthorizeRequest) (*Authorization, error)
}

// AuthorizeRequest is what the CA is about to sign.
type AuthorizeRequest struct {
	Application string
	Attempt     int
	Domains     []string
	SignTime    time.Time
}

// Authorization is the verification service's yes.
type Authorization struct {
	Validations []domain.Validation
	RuleVersion string
	// Organization is set for an OV or EV attempt: the organization as the
	// reviewer approved it.
	Organization *ApprovedOrganization
}

// ApprovedOrganization is the organization the CA staff approved.
type ApprovedOrganization struct {
	Review          string
	ValidationLevel string
	Organization    profile.Organization
}

// App runs the use cases.
type App struct {
	certs       Certificates
	ca          *ca.Authority
	sealer      Sealer
	authorizer  Authorizer
	keys        csr.KeyPolicy
	generateKey func(csr.KeyAlgorithm) (crypto.Signer, error)
	now         func() time.Time
	validity    time.Duration
	revocation  Revocation
	issuances   Issuances
	// plan is the work scheduled on every certificate (reminders,
	// renewal, expiry); due finds what is due (schedule.go).
	plan domain.Plan
	due  DueCertificates
}

// Issuances records the serials reserved for each request before signing
// (domain.Issuance).
type Issuances interface {
	Create(ctx context.Context, id, account string, doc domain.Issuance, evs ...events.Event) (*docstore.Record[domain.Issuance], bool, error)
	Update(ctx context.Context, account, id string, fn docstore.Mutation[domain.Issuance]) (*docstore.Record[domain.Issuance], error)
}

// WithIssuances records every serial before it is signed.
func WithIssuances(s Issuances) Option {
	return func(a *App) { a.issuances = s }
}

// Option changes how the App works; for tests.
type Option func(*App)

// WithKeyGenerator makes the keys of automatic CSRs with gen instead of
// csr.GenerateKey.
func WithKeyGenerator(gen func(csr.KeyAlgorithm) (crypto.Signer, error)) Option {
	return func(a *App) { a.generateKey = gen }
}

// New returns the use cases. validity 0 means certpolicy.DefaultValidity at
// the time of issue; a larger one than the ballot SC-081 maximum is refused
// at issue time. Nothing is signed without authorizer's yes, and no key
// (a customer's or one made here) that keys refuses.
func New(certs Certificates, authority *ca.Authority, sealer Sealer, authorizer Authorizer, keys csr.KeyPolicy, now func() time.Time, validity time.Duration, opts ...Option) *App {
	a := &App{certs: certs, ca: authority, sealer: sealer, authorizer: authorizer, keys: keys, generateKey: csr.GenerateKey, now: now, validity: validity}
	for _, o := range opts {
		o(a)
	}
	return a
}

// WithRevocation enables RevokeCertificate and the compromised-key check
// of Issue (revoke.go).
func (a *App) WithRevocation(r Revocation) *App {
	a.revocation = r
	return a
}

// IssueRequest is what to sign.
type IssueRequest struct {
	RequestID   string
	Application string
	// Attempt is the application's attempt whose validations the names rest
	// on.
	Attempt      int
	Domains      []string
	CSR          string
	KeyAlgorithm csr.KeyAlgorithm
	// ValidationLevel is the level applied for (DV, OV, EV); "" takes the
	// verification service's answer.
	ValidationLevel string
	// Replaces is the certificate (certificates/{id}) of the same
	// application a reissue replaces, or "".
	Replaces string
	// NotAfterLimit is the end of the instance's subscription: notAfter is
	// not later, and nothing is signed after it (zero: no limit).
	NotAfterLimit time.Time
}

// minLeft is the shortest certificate worth signing at a subscription's
// end.
const minLeft = time.Hour

// Issue signs a certificate; the same request id returns the same one.
// Immediately before signing, with the time that becomes notBefore, the
// verification service must say that every name is validated for the
// account and that attempt, by a method allowed then, younger than the reuse
// period then, and that CAA permits it; its refusal is returned as is
// (FailedPrecondition with the reason), and nothing is signed.
func (a *App) Issue(ctx context.Context, account string, req IssueRequest) (*docstore.Record[domain.Certificate], error) {
	if req.RequestID == "" {
		return nil, apierr.Invalid("request_id", "MISSING_FIELD", "request_id is required")
	}
	if req.Attempt < 1 {
		return nil, apierr.Invalid("attempt", "MISSING_FIELD", "attempt is required: the application's attempt whose validations the names rest on")
	}
	id := docstore.IDFor(account, req.RequestID)
	if rec, err := a.certs.Get(ctx, account, id); err == nil {
		// Signed already; a crash may have come before the predecessor
		// was marked.
		return rec, a.markReplaced(ctx, account, rec)
	} else if !errors.Is(err, apierr.ErrNotFound) {
		return nil, err
	}
	if err := a.checkReplaces(ctx, account, req); err != nil {
		return nil, err
	}
	domains, err := domainname.NormalizeList(req.Domains)
	if err != nil {
		return nil, apierr.Invalid("domains", "INVALID_DOMAIN", "%v", err)
	}
	if len(domains) == 0 {
		return nil, apierr.Invalid("domains", "MISSING_FIELD", "at least one domain is required")
	}
	name := "certificates/" + id
	var (
		pub    crypto.PublicKey
		sealed []byte
		alg    csr.KeyAlgorithm
	)
	checker := csr.Checker{Keys: a.keys}
	if strings.TrimSpace(req.CSR) != "" {
		cr, err := checker.Check(ctx, req.CSR, domains)
		if err != nil {
			return nil, csrError(err)
		}
		pub = cr.PublicKey
	} else {
		alg = req.KeyAlgorithm
		if alg == "" {
			alg = csr.ECDSAP256
		}
		key, err := a.generateKey(alg)
		if err != nil {
			return nil, apierr.Invalid("key_algorithm", "UNSUPPORTED_KEY_ALGORITHM", "%v", err)
		}
		// The key made here passes the same policy as a customer's; a
		// refusal is our fault, not the client's.
		if err := a.keys.Check(ctx, key.Public()); err != nil {
			return nil, generatedKeyError(err)
		}
		// The CSR is built and checked even though we hold the key, so the
		// automatic path goes through the same checks as a pasted CSR.
		der, err := csr.Build(key, domains)
		if err != nil {
			return nil, fmt.Errorf("build csr: %w", err)
		}
		own := csr.Checker{Keys: checkedKey{key.Public()}}
		cr, err := own.Check(ctx, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})), domains)
		if err != nil {
			return nil, fmt.Errorf("check own csr: %w", err)
		}
		pub = cr.PublicKey
		if sealed, err = a.sealer.Seal(key, name); err != nil {
			return nil, fmt.Errorf("seal key: %w", err)
		}
	}
	if alg == "" {
		if alg, err = csr.Algorithm(pub); err != nil {
			return nil, csrError(err)
		}
	}
	// The key is made: from here to the signature nothing slow happens, so
	// the check is made at the signing time itself.
	now := a.now()
	authz, err := a.authorize(ctx, req, domains, now)
	if err != nil {
		return nil, err
	}
	validity := a.validity
	if validity == 0 {
		validity = certpolicy.DefaultValidity(now)
	}
	if l := req.NotAfterLimit; !l.IsZero() {
		// A certificate never outlives the subscription paid for.
		left := l.Sub(now).Truncate(time.Second) // certificate times have whole seconds
		if left < minLeft {
			return nil, apierr.New(apierr.FailedPrecondition, "SUBSCRIPTION_ENDED",
				"the subscription ends on %s: nothing more is issued for it; buy a new instance and apply with it", l.UTC().Format(time.RFC3339))
		}
		validity = min(validity, left)
	}
	// The profile and the subject come from the verification service's
	// answer at the signing time: the organization as the reviewer approved
	// it, never the application's later edits.
	if err := sameLevel(req.ValidationLevel, authz.Organization); err != nil {
		return nil, err
	}
	leafReq := ca.LeafRequest{PublicKey: pub, Domains: domains, NotBefore: now, Validity: validity, Profile: profile.Profiles[profile.DV]}
	level := profile.DV
	if o := authz.Organization; o != nil {
		p, err := profile.For(o.ValidationLevel)
		if err != nil || p.Level == profile.DV {
			return nil, apierr.New(apierr.FailedPrecondition, "PROFILE_NOT_ALLOWED", "the approved organization review is for validation level %q, which has no organization profile", o.ValidationLevel)
		}
		leafReq.Profile, leafReq.Organization, level = p, o.Organization, p.Level
	}
	serial, err := a.reserveSerial(ctx, account, id, name, now)
	if err != nil {
		return nil, err
	}
	leafReq.Serial = serial
	signed, err := a.ca.SignLinted(leafReq)
	if err != nil {
		var le *lint.Error
		if errors.As(err, &le) {
			return nil, apierr.Wrap(err, apierr.FailedPrecondition, "LINT_FAILED",
				"the certificate was not signed: it fails %s", strings.Join(le.Names(), ", ")).WithMeta("lints", strings.Join(le.Names(), ","))
		}
		if errors.Is(err, ca.ErrProfile) {
			return nil, apierr.Wrap(err, apierr.FailedPrecondition, "PROFILE_NOT_SATISFIED", "%v", err)
		}
		if errors.Is(err, ca.ErrValidity) {
			return nil, apierr.Wrap(err, apierr.FailedPrecondition, "VALIDITY_NOT_ALLOWED",
				"the validity %s cannot be signed (%v; at most %s today, ballot SC-081): lower -validity", validity, err, certpolicy.MaxValidity(now))
		}
		return nil, fmt.Errorf("sign: %w", err)
	}
	cert := signed.Cert
	fp := sha256.Sum256(cert.Raw)
	doc := domain.Certificate{
		Application:     req.Application,
		Attempt:         req.Attempt,
		RequestID:       req.RequestID,
		Domains:         domains,
		SerialHex:       strings.ToUpper(cert.SerialNumber.Text(16)),
		NotBefore:       cert.NotBefore,
		NotAfter:        cert.NotAfter,
		KeyAlgorithm:    string(alg),
		ServiceHoldsKey: sealed != nil,
		SealedKey:       sealed,
		DER:             cert.Raw,
		Fingerprint:     hex.EncodeToString(fp[:]),
		Issuer:          cert.Issuer.String(),
		CreateTime:      now.UTC(),
		Validations:     authz.Validations,
		RuleVersion:     authz.RuleVersion,
		ValidationLevel: string(level),
		LintNotices:     signed.Notices,
		Replaces:        req.Replaces,
	}
	doc.Schedule(a.plan)
	if o := authz.Organization; o != nil && level != profile.DV {
		org := domain.Organization(o.Organization)
		doc.Organization, doc.OrganizationReview = &org, o.Review
	}
	ev, err := events.Stamp(events.CertificateIssued, source, name, now, &eventsv1.CertificateIssued{
		Account: account, Certificate: name, Application: req.Application, RequestId: req.RequestID,
		Domains: domains, SerialNumber: doc.SerialHex,
		NotBefore: timestamppb.New(cert.NotBefore), NotAfter: timestamppb.New(cert.NotAfter),
		Replaces: req.Replaces,
	})
	if err != nil {
		return nil, err
	}
	// The claim on the request makes this the only signer; Create of an
	// existing record can only be a signer whose claim expired, and
	// returns that one's certificate.
	rec, _, err := a.certs.Create(ctx, id, account, doc, ev)
	if err != nil {
		return nil, err
	}
	return rec, a.markReplaced(ctx, account, rec)
}

// checkReplaces refuses a predecessor that is not a certificate of the same
// application in the same account: a reissue can mark only its own
// application's certificate replaced.
func (a *App) checkReplaces(ctx context.Context, account string, req IssueRequest) error {
	if req.Replaces == "" {
		return nil
	}
	pid, ok := strings.CutPrefix(req.Replaces, "certificates/")
	old, err := a.certs.Get(ctx, account, pid)
	if !ok || errors.Is(err, apierr.ErrNotFound) || err == nil && old.Doc.Application != req.Application {
		return apierr.Invalid("replaces", "INVALID_REPLACES", "%s is not a certificate of %s", req.Replaces, req.Application)
	}
	return err
}

// markReplaced records on rec's predecessor that rec replaced it: it gets
// no more expiry reminders (it stays valid until it expires or is revoked).
func (a *App) markReplaced(ctx context.Context, account string, rec *docstore.Record[domain.Certificate]) error {
	if rec.Doc.Replaces == "" {
		return nil
	}
	pid := strings.TrimPrefix(rec.Doc.Replaces, "certificates/")
	by := "certificates/" + rec.ID
	_, err := a.certs.Update(ctx, account, pid, func(c *domain.Certificate) ([]events.Event, error) {
		if c.ReplacedBy == by {
			return nil, docstore.ErrUnchanged
		}
		c.MarkReplaced(by, a.plan)
		return nil, nil
	})
	if err != nil {
		return fmt.Errorf("mark %s replaced by %s: %w", rec.Doc.Replaces, by, err)
	}
	return nil
}

// reserveSerial records, before signing, the serial the certificate of the
// request id will have, and claims the request: while another signer holds
// it the caller gets Aborted; a claim left by a signer that stopped is
// taken over, its serial kept on record as never stored.
func (a *App) reserveSerial(ctx context.Context, account, id, name string, now time.Time) (*big.Int, error) {
	if a.issuances == nil {
		return nil, errors.New("issuance records are not configured")
	}
	serial, err := ca.NewSerial()
	if err != nil {
		return nil, err
	}
	hexSerial := strings.ToUpper(serial.Text(16))
	rec, created, err := a.issuances.Create(ctx, id, account, domain.Issuance{Certificate: name, Serials: []string{hexSerial}, Claimed: now})
	if err != nil {
		return nil, fmt.Errorf("reserve serial: %w", err)
	}
	if created {
		return serial, nil
	}
	if rec.Doc.Held(now) {
		return nil, apierr.New(apierr.Aborted, "ISSUANCE_IN_PROGRESS", "this request is being signed by another attempt; retry in a few seconds")
	}
	_, err = a.issuances.Update(ctx, account, id, func(d *domain.Issuance) ([]events.Event, error) {
		if d.Held(now) {
			return nil, apierr.New(apierr.Aborted, "ISSUANCE_IN_PROGRESS", "this request is being signed by another attempt; retry in a few seconds")
		}
		d.Serials = append(d.Serials, hexSerial)
		d.Claimed = now
		return nil, nil
	})
	if err != nil {
		return nil, err
	}
	return serial, nil
}

// authorize asks the verification service whether domains may be signed at
// now, and checks that its answer covers exactly those names.
func (a *App) authorize(ctx context.Context, req IssueRequest, domains []string, now time.Time) (*Authorization, error) {
	authz, err := a.authorizer.AuthorizeIssuance(ctx, AuthorizeRequest{
		Application: req.Application, Attempt: req.Attempt, Domains: domains, SignTime: now,
	})
	if err != nil {
		return nil, err
	}
	if len(authz.Validations) != len(domains) {
		return nil, fmt.Errorf("verification answered %d validations for %d names", len(authz.Validations), len(domains))
	}
	for i, v := range authz.Validations {
		if v.Domain != domains[i] {
			return nil, fmt.Errorf("verification answered a validation of %q for %q", v.Domain, domains[i])
		}
	}
	return authz, nil
}

// sameLevel refuses when the level applied for is not the one the
// verification service's answer supports: OV or EV without an approved
// organization at that level (never silently signed DV), or DV with one.
func sameLevel(want string, org *ApprovedOrganization) error {
	want = strings.ToUpper(strings.TrimSpace(want))
	got := string(profile.DV)
	if org != nil {
		got = strings.ToUpper(org.ValidationLevel)
	}
	switch {
	case want == "", want == got:
		return nil
	case org == nil:
		return apierr.New(apierr.FailedPrecondition, "ORGANIZATION_NOT_APPROVED",
			"an %s certificate needs the organization approved for the attempt, and the verification service has no organization review for it", want)
	default:
		return apierr.New(apierr.FailedPrecondition, "PROFILE_MISMATCH",
			"the application is for %s, but its approved organization review is for %s", want, got)
	}
}

// Get reads a certificate of the account.
func (a *App) Get(ctx context.Context, account, id string) (*docstore.Record[domain.Certificate], error) {
	return a.certs.Get(ctx, account, id)
}

// ListFilter selects certificates; zero fields select all.
type ListFilter struct {
	State domain.State
	// Domain is a name among the certificate's SANs.
	Domain string
	// NotAfterOp compares NotAfter with NotAfter: "<", "<=", ">" or ">=".
	NotAfterOp string
	NotAfter   time.Time
}

var notAfterOps = map[string]string{"<": "$lt", "<=": "$lte", ">": "$gt", ">=": "$gte"}

// List lists the account's certificates newest first, those after the
// position after (nil: from the newest) that f selects.
func (a *App) List(ctx context.Context, account string, f ListFilter, after *docstore.Position, limit int64) ([]*docstore.Record[domain.Certificate], bool, error) {
	var q bson.D
	switch f.State {
	case "":
	case domain.Issued:
		// Records from before revocation have no state: issued.
		q = append(q, bson.E{Key: "doc.state", Value: bson.D{{Key: "$in", Value: bson.A{string(domain.Issued), ""}}}})
	default:
		q = append(q, bson.E{Key: "doc.state", Value: string(f.State)})
	}
	if f.Domain != "" {
		q = append(q, bson.E{Key: "doc.domains", Value: f.Domain})
	}
	if f.NotAfterOp != "" {
		op, ok := notAfterOps[f.NotAfterOp]
		if !ok {
			return nil, false, fmt.Errorf("unknown comparison %q", f.NotAfterOp)
		}
		q = append(q, bson.E{Key: "doc.notafter", Value: bson.D{{Key: op, Value: f.NotAfter.UTC()}}})
	}
	return a.certs.List(ctx, account, docstore.ListOptions{Filter: q, After: after, Limit: limit})
}

// Bundle is a certificate and its chain (and key) in PEM.
type Bundle struct {
	Certificate string
	Chain       string
	FullChain   string
	PrivateKey  string
}

// Download returns the PEM bundle of an account's certificate. When it
// holds the private key the service made, the key goes out only once the
// download is in the audit trail (RecordKeyRelease).
func (a *App) Download(ctx context.Context, account, id string) (*Bundle, error) {
	rec, err := a.certs.Get(ctx, account, id)
	if err != nil {
		return nil, err
	}
	leaf := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: rec.Doc.DER}))
	chain := a.ca.ChainPEMFor(rec.Doc.DER)
	b := &Bundle{Certificate: leaf, Chain: chain, FullChain: leaf + chain}
	// A revoked certificate's files stay public, its key is not handed out
	// again (it may be why it was revoked), as ExportCertificate refuses.
	if rec.Doc.ServiceHoldsKey && rec.Doc.State != domain.Revoked {
		if err := a.RecordKeyRelease(ctx, rec.Account, id, audit.CertificateKeyDownload); err != nil {
			return nil, err
		}
		key, err := a.sealer.Open(rec.Doc.SealedKey, "certificates/"+id)
		if err != nil {
			return nil, fmt.Errorf("open key of %s: %w", id, err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, fmt.Errorf("encode key: %w", err)
		}
		b.PrivateKey = string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	}
	return b, nil
}

// ReasonAuditUnavailable refuses a private key whose release could not be
// recorded.
const ReasonAuditUnavailable = "AUDIT_UNAVAILABLE"

// RecordKeyRelease writes the audit record of action (a download or an
// export of certificate id's private key, a certificate of account) to the
// certificate's outbox, before the key is given out: no key leaves without
// its record. A failed write is Unavailable AUDIT_UNAVAILABLE, and the
// caller must not release the key. Work of the system (no customer or
// reviewer) writes nothing.
func (a *App) RecordKeyRelease(ctx context.Context, account, id, action string) error {
	name := "certificates/" + id
	ev, ok, err := audit.Record(ctx, source, action, account, name, a.now())
	if err != nil || !ok {
		return err
	}
	if _, err := a.certs.Update(ctx, account, id, func(*domain.Certificate) ([]events.Event, error) {
		return []events.Event{ev}, nil
	}); err != nil {
		return apierr.Wrap(err, apierr.Unavailable, ReasonAuditUnavailable,
			"the private key of %s is not released: its download could not be recorded in the audit trail; try again shortly", name)
	}
	return nil
}

// CA returns the root and intermediate PEM.
func (a *App) CA() (root, intermediate string) { return a.ca.RootPEM(), a.ca.ChainPEM() }

// csrError is the caller's error for a refused CSR. A refusal of the key
// policy (KEY_*) is FailedPrecondition: the CSR was accepted when the
// application was submitted, with the checks that need no lists, and the CA
// refuses to sign it now (a Debian weak key, a compromised key, its own
// key), so the application service fails the application with this cause
// rather than ask again. Any other refusal (CSR_*) is InvalidArgument on
// csr. Errors that are not refusals (a blocklist that could not be read)
// are returned as they are.
func csrError(err error) error {
	var e *csr.Error
	if !errors.As(err, &e) {
		return err
	}
	if slices.Contains(goodkey.Reasons, string(e.Reason)) {
		return apierr.New(apierr.FailedPrecondition, string(e.Reason), "%s", e.Detail)
	}
	return apierr.Invalid("csr", string(e.Reason), "%v", err)
}

// ReasonGeneratedKeyRefused: the key policy refused a key the service made
// itself; the key's reason is in the metadata key_reason and in the cause.
const ReasonGeneratedKeyRefused = "GENERATED_KEY_REFUSED"

// generatedKeyError turns a refusal of a key the service made into an
// Internal error: the client sent nothing wrong and may retry (a new key is
// made each time). The refusal stays the cause, so errors.Is finds its
// reason.
// checkedKey is the key policy for the CSR built for a key the policy has
// just passed: the CSR's other checks run, the key is not judged twice
// (small factors, Fermat, ROCA and the blocklist lookups cost the most).
type checkedKey struct{ pub crypto.PublicKey }

func (k checkedKey) Check(_ context.Context, pub crypto.PublicKey) error {
	if eq, ok := pub.(interface{ Equal(crypto.PublicKey) bool }); ok && eq.Equal(k.pub) {
		return nil
	}
	return errors.New("the CSR's key is not the key made for it")
}

func generatedKeyError(err error) error {
	var e *apierr.Error
	if !errors.As(err, &e) || e.Kind != apierr.InvalidArgument {
		return err
	}
	return apierr.Wrap(err, apierr.Internal, ReasonGeneratedKeyRefused,
		"the key made for this certificate was refused by the key policy (%s); retry, and report it if it persists", e.Reason).
		WithMeta("key_reason", e.Reason)
}
