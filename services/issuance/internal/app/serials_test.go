package app_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certflow/certflow/pkg/apierr"
	"github.com/certflow/certflow/pkg/docstore"
	"github.com/certflow/certflow/pkg/testenv"
	"github.com/certflow/certflow/services/issuance/internal/app"
	"github.com/certflow/certflow/services/issuance/internal/domain"
	"github.com/certflow/certflow/services/issuance/internal/keyseal"
)

// serialFixture is an App on a real database, with its issuance records at
// hand.
func serialFixture(t *testing.T) (*app.App, *docstore.Store[domain.Issuance], *fixture) {
	t.Helper()
	f := newFixture(t)
	db, _ := testenv.Database(t)
	clock := docstore.WithClock(func() time.Time { return f.now })
	certs := docstore.New[domain.Certificate](db.Collection("certificates"), "certificate", clock)
	issuances := docstore.New[domain.Issuance](db.Collection("issuances"), "issuance", clock)
	for _, ensure := range []func(context.Context) error{
		func(ctx context.Context) error { return certs.EnsureIndexes(ctx) },
		func(ctx context.Context) error { return issuances.EnsureIndexes(ctx) },
	} {
		if err := ensure(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	sealer, err := keyseal.New(bytes.Repeat([]byte{8}, 32))
	if err != nil {
		t.Fatal(err)
	}
	a := app.New(certs, f.authority, sealer, yes{}, f.policy, func() time.Time { return f.now }, 0, app.WithIssuances(issuances))
	return a, issuances, f
}

var req = app.IssueRequest{RequestID: "applications/x/attempts/1", Application: "applications/x", Attempt: 1, Domains: []string{"example.com"}}

// TestConcurrentRetriesSignOnce: retries of one request racing each other
// sign one certificate; the others are told to retry or get that one.
func TestConcurrentRetriesSignOnce(t *testing.T) {
	a, issuances, _ := serialFixture(t)
	const n = 8
	var wg sync.WaitGroup
	serials := make(chan string, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rec, err := a.Issue(context.Background(), "accounts/a", req)
			if err != nil {
				var e *apierr.Error
				if !errors.As(err, &e) || e.Reason != "ISSUANCE_IN_PROGRESS" {
					t.Errorf("Issue = %v; want a certificate or ISSUANCE_IN_PROGRESS", err)
				}
				return
			}
			serials <- rec.Doc.SerialHex
		}()
	}
	wg.Wait()
	close(serials)
	seen := map[string]bool{}
	for s := range serials {
		seen[s] = true
	}
	rec, err := issuances.Get(context.Background(), "accounts/a", docstore.IDFor("accounts/a", req.RequestID))
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != 1 || len(rec.Doc.Serials) != 1 || !seen[rec.Doc.Serials[0]] {
		t.Fatalf("certificates returned %v, serials reserved %v; want one serial, reserved before signing and returned", seen, rec.Doc.Serials)
	}
}

// TestStaleClaimTakenOver: a signer that stopped after reserving leaves its
// serial on record; the next retry reserves a new one and signs with it.
func TestStaleClaimTakenOver(t *testing.T) {
	a, issuances, f := serialFixture(t)
	id := docstore.IDFor("accounts/a", req.RequestID)
	if _, _, err := issuances.Create(context.Background(), id, "accounts/a", domain.Issuance{
		Certificate: "certificates/" + id, Serials: []string{"0DEAD"}, Claimed: f.now.Add(-time.Second),
	}); err != nil {
		t.Fatal(err)
	}
	// Held: the retry is told to wait.
	if _, err := a.Issue(context.Background(), "accounts/a", req); err == nil || !strings.Contains(err.Error(), "being signed") {
		t.Fatalf("Issue while another signer holds the request = %v; want ISSUANCE_IN_PROGRESS", err)
	}
	f.now = f.now.Add(domain.ClaimTTL)
	rec, err := a.Issue(context.Background(), "accounts/a", req)
	if err != nil {
		t.Fatal(err)
	}
	got, err := issuances.Get(context.Background(), "accounts/a", id)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Doc.Serials) != 2 || got.Doc.Serials[0] != "0DEAD" || got.Doc.Serials[1] != rec.Doc.SerialHex {
		t.Fatalf("serials on record %v, certificate %s; want the stopped signer's kept and the new one last", got.Doc.Serials, rec.Doc.SerialHex)
	}
}
