package app_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/certflow/certflow/pkg/apierr"
	"github.com/certflow/certflow/pkg/csr"
	"github.com/certflow/certflow/pkg/docstore"
	"github.com/certflow/certflow/pkg/goodkey"
	"github.com/certflow/certflow/pkg/testenv"
	"github.com/certflow/certflow/services/issuance/internal/app"
	"github.com/certflow/certflow/services/issuance/internal/ca"
	"github.com/certflow/certflow/services/issuance/internal/domain"
	"github.com/certflow/certflow/services/issuance/internal/keyseal"
)

// yes authorizes every name.
type yes struct{}

func (yes) AuthorizeIssuance(_ context.Context, q app.AuthorizeRequest) (*app.Authorization, error) {
	a := &app.Authorization{RuleVersion: "test"}
	for _, d := range q.Domains {
		a.Validations = append(a.Validations, domain.Validation{Domain: d, Method: "DNS_TXT", ValidationTime: q.SignTime})
	}
	return a, nil
}

type fixture struct {
	authority *ca.Authority
	policy    *goodkey.Policy
	blocked   *goodkey.Set
	now       time.Time
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	sealer, err := keyseal.New(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	authority, err := ca.LoadOrCreate(t.TempDir(), sealer, ca.Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	policy, blocked, err := goodkey.Files{}.Load()
	if err != nil {
		t.Fatal(err)
	}
	if err := policy.AddCAKey("intermediate", authority.Intermediate().PublicKey); err != nil {
		t.Fatal(err)
	}
	return &fixture{authority: authority, policy: policy, blocked: blocked, now: now}
}

func (f *fixture) app(t *testing.T, opts ...app.Option) *app.App {
	sealer, err := keyseal.New(bytes.Repeat([]byte{8}, 32))
	if err != nil {
		t.Fatal(err)
	}
	// The certificates go to a real store on the test database.
	db, _ := testenv.Database(t)
	certs := docstore.New[domain.Certificate](db.Collection("certificates"), "certificate", docstore.WithClock(func() time.Time { return f.now }))
	if err := certs.EnsureIndexes(context.Background()); err != nil {
		t.Fatal(err)
	}
	issuances := docstore.New[domain.Issuance](db.Collection("issuances"), "issuance", docstore.WithClock(func() time.Time { return f.now }))
	return app.New(certs, f.authority, sealer, yes{}, f.policy, func() time.Time { return f.now }, 0, append([]app.Option{app.WithIssuances(issuances)}, opts...)...)
}

func issue(a *app.App, id, csrPEM string) error {
	_, err := a.Issue(context.Background(), "accounts/a", app.IssueRequest{
		RequestID: id, Application: "applications/x", Attempt: 1, Domains: []string{"example.com"}, CSR: csrPEM,
	})
	return err
}

func makeCSR(t *testing.T, key crypto.Signer) string {
	t.Helper()
	der, err := csr.Build(key, []string{"example.com"})
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

// TestIssueKeyPolicy: a pasted CSR and a key made here both go through the
// service's key policy; a customer's refused key is FailedPrecondition with
// the policy's reason (the application service then fails the application
// with it), a refused key of ours is Internal with the policy's refusal as
// its cause (retried: the next key is new).
func TestIssueKeyPolicy(t *testing.T) {
	f := newFixture(t)
	good, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	compromised, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	h, err := goodkey.SPKIHash(compromised.Public())
	if err != nil {
		t.Fatal(err)
	}
	f.blocked.Add(h)

	// The automatic CSR path with a generator that makes a compromised
	// key, and one that makes a key with a small factor (only its public
	// half matters: it is refused before anything is signed).
	smallFactor := &rsa.PrivateKey{PublicKey: rsa.PublicKey{N: smallFactorModulus(t), E: 65537}}
	gen := func(k crypto.Signer) app.Option {
		return app.WithKeyGenerator(func(csr.KeyAlgorithm) (crypto.Signer, error) { return k, nil })
	}
	tests := []struct {
		name        string
		app         *app.App
		csr         string
		kind        apierr.Kind
		reason      string // of the returned error
		causeReason string // found by errors.Is
	}{
		{"pasted good CSR", f.app(t), makeCSR(t, good), 0, "", ""},
		{"made good key", f.app(t), "", 0, "", ""},
		{"pasted compromised key", f.app(t), makeCSR(t, compromised), apierr.FailedPrecondition, goodkey.ReasonCompromised, goodkey.ReasonCompromised},
		{"pasted CSR that is not PEM", f.app(t), "hello", apierr.InvalidArgument, string(csr.ReasonNotPEM), string(csr.ReasonNotPEM)},
		{"made compromised key", f.app(t, gen(compromised)), "", apierr.Internal, app.ReasonGeneratedKeyRefused, goodkey.ReasonCompromised},
		{"made key with a small factor", f.app(t, gen(smallFactor)), "", apierr.Internal, app.ReasonGeneratedKeyRefused, goodkey.ReasonSmallFactor},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := issue(tc.app, "req-"+tc.name, tc.csr)
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("Issue(%s) = %v; want a certificate", tc.name, err)
				}
				return
			}
			if apierr.KindOf(err) != tc.kind || apierr.ReasonOf(err) != tc.reason || !errors.Is(err, &apierr.Error{Reason: tc.causeReason}) {
				t.Fatalf("Issue(%s) = %v (%v %s); want %v %s caused by %s", tc.name, err, apierr.KindOf(err), apierr.ReasonOf(err), tc.kind, tc.reason, tc.causeReason)
			}
		})
	}
}

// TestIssueBlocklistDown: a blocklist that cannot be read stops issuance
// with Unavailable; it is never taken as permission or as a bad CSR.
func TestIssueBlocklistDown(t *testing.T) {
	f := newFixture(t)
	f.policy.Compromised = append(f.policy.Compromised, down{})
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for name, pemText := range map[string]string{"pasted": makeCSR(t, key), "made": ""} {
		if err := issue(f.app(t), "req-"+name, pemText); !errors.Is(err, apierr.ErrUnavailable) {
			t.Errorf("Issue(%s) with the blocklist down = %v; want Unavailable", name, err)
		}
	}
}

type down struct{}

func (down) Contains(context.Context, goodkey.Hash) (bool, error) { return false, errors.New("down") }

// smallFactorModulus is 751 times a random odd number, of 2048 bits.
func smallFactorModulus(t *testing.T) *big.Int {
	for {
		q, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 2038))
		if err != nil {
			t.Fatal(err)
		}
		q.SetBit(q, 0, 1)
		if n := new(big.Int).Mul(q, big.NewInt(751)); n.BitLen() == 2048 {
			return n
		}
	}
}

func TestMain(m *testing.M) { testenv.Main(m) }
