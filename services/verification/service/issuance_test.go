package service_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	verificationv1 "github.com/certflow/certflow/gen/go/certflow/verification/v1"
	"github.com/certflow/certflow/pkg/auth"
	"github.com/certflow/certflow/pkg/devdns"
	"github.com/certflow/certflow/pkg/testenv"
)

// proveDNS creates DNS_TXT challenges for names of an application's first
// attempt, publishes their records and checks them, and returns them
// VERIFIED (reused ones are VERIFIED at once).
func proveDNS(t *testing.T, ctx context.Context, e *env, application string, names ...string) []*verificationv1.Challenge {
	t.Helper()
	resp, err := create(ctx, e, application, verificationv1.ValidationMethod_VALIDATION_METHOD_DNS_TXT, names...)
	if err != nil {
		t.Fatalf("CreateChallenges(%s, %q) = %v", application, names, err)
	}
	var out []*verificationv1.Challenge
	for _, c := range resp.Challenges {
		if c.State == verificationv1.Challenge_PENDING {
			e.dns.SetTXT(c.DnsRecordName, c.DnsRecordValue)
			if c, err = e.client.CheckChallenge(ctx, &verificationv1.CheckChallengeRequest{Name: c.Name}); err != nil || c.State != verificationv1.Challenge_VERIFIED {
				t.Fatalf("CheckChallenge(%s) = %v, %v; want VERIFIED", c.GetDomain(), c.GetState(), err)
			}
		}
		out = append(out, c)
	}
	return out
}

// TestAuthorizeIssuance: the CA may sign only the names validated for the
// application's attempt in the caller's account, by a method allowed at the
// signing time, younger than the reuse period then, with CAA permitting.
func TestAuthorizeIssuance(t *testing.T) {
	// 2028-03-01: the reuse period is 100 days (SC-081 from 2027-03-15),
	// EMAIL is allowed with a warning until 2028-03-15.
	now := time.Date(2028, time.March, 1, 12, 0, 0, 0, time.UTC)
	e := startDCV(t, now)
	alice := testenv.As(context.Background(), "alice", auth.Customer)
	bob := testenv.As(context.Background(), "bob", auth.Customer)

	good := proveDNS(t, alice, e, "applications/good", "www.good.test", "*.good.test")
	proveDNS(t, alice, e, "applications/part", "a.part.test")
	if _, err := create(alice, e, "applications/part", verificationv1.ValidationMethod_VALIDATION_METHOD_DNS_TXT, "b.part.test"); err != nil {
		t.Fatal(err)
	}
	proveDNS(t, bob, e, "applications/bobs", "bob.test")
	proveDNS(t, alice, e, "applications/caa", "www.caa.test")
	e.dns.SetCAA("caa.test", devdns.CAA{Tag: "issue", Value: "other-ca.example"})
	proveDNS(t, alice, e, "applications/broken", "www.broken.test")
	e.dns.FailWith("www.broken.test", dns.RcodeServerFailure)
	// RFC 8657: alice's account URI and the DNS_TXT method (dns-01) are
	// named; another account or method is not.
	proveDNS(t, alice, e, "applications/acct", "www.acct.test")
	e.dns.SetCAA("acct.test", devdns.CAA{Tag: "issue", Value: "certflow.test; accounturi=https://certflow.test/accounts/alice; validationmethods=dns-01"})
	proveDNS(t, alice, e, "applications/otheracct", "www.otheracct.test")
	e.dns.SetCAA("otheracct.test", devdns.CAA{Tag: "issue", Value: "certflow.test; accounturi=https://certflow.test/accounts/bob"})
	proveDNS(t, alice, e, "applications/othermethod", "www.othermethod.test")
	e.dns.SetCAA("othermethod.test", devdns.CAA{Tag: "issue", Value: "certflow.test; validationmethods=http-01,ca-http-file"})
	mail, err := create(alice, e, "applications/mail", verificationv1.ValidationMethod_VALIDATION_METHOD_EMAIL, "mail.good.test")
	if err != nil {
		t.Fatal(err)
	}
	code := e.mail.code(t, mail.Challenges[0].Name)
	if _, err := e.client.ConfirmChallenge(alice, &verificationv1.ConfirmChallengeRequest{Name: mail.Challenges[0].Name, Code: code}); err != nil {
		t.Fatal(err)
	}
	// A second application of the account reuses www.good.test's validation:
	// its age still counts from the original proof.
	e.clock.Advance(24 * time.Hour)
	reused := proveDNS(t, alice, e, "applications/again", "www.good.test")
	if !reused[0].Reused {
		t.Fatalf("second application's challenge = %v; want reused", reused[0])
	}
	now = e.clock.Now()
	day := 24 * time.Hour

	tests := []struct {
		name        string
		ctx         context.Context
		application string
		attempt     int32
		domains     []string
		sign        time.Time
		code        codes.Code
		reason      string
		domain      string // in ErrorInfo metadata, and the message
	}{
		{"all good", alice, "applications/good", 1, []string{"WWW.Good.Test.", "*.good.test"}, now, codes.OK, "", ""},
		{"reused, young enough", alice, "applications/again", 1, []string{"www.good.test"}, now.Add(98 * day), codes.OK, "", ""},
		{"no challenge at all", alice, "applications/none", 1, []string{"www.good.test"}, now, codes.FailedPrecondition, "VALIDATION_MISSING", "www.good.test"},
		{"another attempt", alice, "applications/good", 2, []string{"www.good.test", "*.good.test"}, now, codes.FailedPrecondition, "VALIDATION_MISSING", "www.good.test"},
		{"challenge still pending", alice, "applications/part", 1, []string{"a.part.test", "b.part.test"}, now, codes.FailedPrecondition, "VALIDATION_MISSING", "b.part.test"},
		{"another account's validation", alice, "applications/bobs", 1, []string{"bob.test"}, now, codes.FailedPrecondition, "VALIDATION_MISSING", "bob.test"},
		{"older than the reuse period at signing", alice, "applications/good", 1, []string{"www.good.test", "*.good.test"}, now.Add(100 * day), codes.FailedPrecondition, "VALIDATION_EXPIRED", "www.good.test"},
		{"reused and too old", alice, "applications/again", 1, []string{"www.good.test"}, now.Add(99 * day), codes.FailedPrecondition, "VALIDATION_EXPIRED", "www.good.test"},
		{"email before 2028-03-15", alice, "applications/mail", 1, []string{"mail.good.test"}, now, codes.OK, "", ""},
		{"email from 2028-03-15", alice, "applications/mail", 1, []string{"mail.good.test"}, time.Date(2028, time.March, 15, 0, 0, 0, 0, time.UTC), codes.FailedPrecondition, "METHOD_NOT_ALLOWED", "mail.good.test"},
		{"CAA now forbids", alice, "applications/caa", 1, []string{"www.caa.test"}, now, codes.FailedPrecondition, "CAA_FORBIDS", "www.caa.test"},
		{"CAA names the account and method", alice, "applications/acct", 1, []string{"www.acct.test"}, now, codes.OK, "", ""},
		{"CAA names another account", alice, "applications/otheracct", 1, []string{"www.otheracct.test"}, now, codes.FailedPrecondition, "CAA_FORBIDS", "www.otheracct.test"},
		{"CAA names other methods", alice, "applications/othermethod", 1, []string{"www.othermethod.test"}, now, codes.FailedPrecondition, "CAA_FORBIDS", "www.othermethod.test"},
		{"CAA lookup fails", alice, "applications/broken", 1, []string{"www.broken.test"}, now, codes.Unavailable, "CAA_LOOKUP_FAILED", "www.broken.test"},
		{"extra name", alice, "applications/good", 1, []string{"www.good.test", "*.good.test", "extra.good.test"}, now, codes.FailedPrecondition, "NAMES_MISMATCH", "extra.good.test"},
		{"missing name", alice, "applications/good", 1, []string{"www.good.test"}, now, codes.FailedPrecondition, "NAMES_MISMATCH", "*.good.test"},
		{"another name", alice, "applications/good", 1, []string{"www.good.test", "good.test"}, now, codes.FailedPrecondition, "NAMES_MISMATCH", "good.test"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := e.client.AuthorizeIssuance(tt.ctx, &verificationv1.AuthorizeIssuanceRequest{
				Application: tt.application, Attempt: tt.attempt, Domains: tt.domains, SignTime: timestamppb.New(tt.sign),
			})
			if testenv.Code(err) != tt.code || dcvReason(err) != tt.reason {
				t.Fatalf("AuthorizeIssuance(%s #%d, %q at %v) = %v; want %v %s", tt.application, tt.attempt, tt.domains, tt.sign, err, tt.code, tt.reason)
			}
			if err != nil {
				if d := errMeta(err, "domain"); d != tt.domain || !strings.Contains(err.Error(), tt.domain) {
					t.Errorf("AuthorizeIssuance(%q) refusal names %q (%v); want %q", tt.domains, d, err, tt.domain)
				}
				return
			}
			if len(got.Validations) != len(tt.domains) || !got.CheckTime.AsTime().Equal(tt.sign) || got.RuleVersion == "" {
				t.Fatalf("AuthorizeIssuance(%q) = %v; want one validation per name, checked at %v", tt.domains, got, tt.sign)
			}
		})
	}

	// The evidence: each name's method, proof time and challenge, in order.
	got, err := e.client.AuthorizeIssuance(alice, &verificationv1.AuthorizeIssuanceRequest{
		Application: "applications/good", Attempt: 1, Domains: []string{"*.good.test", "www.good.test"}, SignTime: timestamppb.New(now),
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []*verificationv1.Challenge{good[1], good[0]} {
		v := got.Validations[i]
		if v.Domain != want.Domain || v.Challenge != want.Name || v.Method != verificationv1.ValidationMethod_VALIDATION_METHOD_DNS_TXT ||
			!v.ValidationTime.AsTime().Equal(want.VerifyTime.AsTime()) || v.Reused || v.RuleVersion == "" ||
			!v.ExpireTime.AsTime().Equal(want.VerifyTime.AsTime().Add(100*day)) {
			t.Errorf("validation %d = %v; want %s by DNS_TXT at %v through %s, usable for 100 days", i, v, want.Domain, want.VerifyTime.AsTime(), want.Name)
		}
	}
	again, err := e.client.AuthorizeIssuance(alice, &verificationv1.AuthorizeIssuanceRequest{
		Application: "applications/again", Attempt: 1, Domains: []string{"www.good.test"}, SignTime: timestamppb.New(now),
	})
	if err != nil || !again.Validations[0].Reused || !again.Validations[0].ValidationTime.AsTime().Equal(good[0].VerifyTime.AsTime()) {
		t.Fatalf("AuthorizeIssuance(reused) = %v, %v; want reused, dated at the original proof %v", again, err, good[0].VerifyTime.AsTime())
	}

	// The rules apply at the later of the signing time and the service's
	// own clock: an early signing time does not make old evidence young.
	e.clock.Advance(100 * day)
	if _, err := e.client.AuthorizeIssuance(alice, &verificationv1.AuthorizeIssuanceRequest{
		Application: "applications/good", Attempt: 1, Domains: []string{"www.good.test", "*.good.test"}, SignTime: timestamppb.New(now),
	}); dcvReason(err) != "VALIDATION_EXPIRED" {
		t.Fatalf("AuthorizeIssuance with an early signing time, clock 100 days on = %v; want VALIDATION_EXPIRED", err)
	}

	for _, bad := range []*verificationv1.AuthorizeIssuanceRequest{
		{Application: "applications/good", Attempt: 1, Domains: []string{"www.good.test"}},
		{Application: "applications/good", Domains: []string{"www.good.test"}, SignTime: timestamppb.New(now)},
		{Application: "good", Attempt: 1, Domains: []string{"www.good.test"}, SignTime: timestamppb.New(now)},
		{Application: "applications/good", Attempt: 1, SignTime: timestamppb.New(now)},
		{Application: "applications/good", Attempt: 1, Domains: []string{"bad name"}, SignTime: timestamppb.New(now)},
	} {
		if _, err := e.client.AuthorizeIssuance(alice, bad); testenv.Code(err) != codes.InvalidArgument {
			t.Errorf("AuthorizeIssuance(%v) = %v; want InvalidArgument", bad, err)
		}
	}
	if _, err := e.client.AuthorizeIssuance(context.Background(), &verificationv1.AuthorizeIssuanceRequest{
		Application: "applications/good", Attempt: 1, Domains: []string{"www.good.test"}, SignTime: timestamppb.New(now),
	}); testenv.Code(err) == codes.OK {
		t.Errorf("AuthorizeIssuance without an account = OK; want a refusal")
	}
}

// errMeta is a value of a gRPC error's ErrorInfo metadata.
func errMeta(err error, key string) string {
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.Metadata[key]
		}
	}
	return ""
}

// TestAuthorizeIssuanceOrganization: for an OV/EV attempt the answer
// carries the organization as the reviewer approved it; before approval the
// CA may not sign; an attempt without an organization review is DV.
func TestAuthorizeIssuanceOrganization(t *testing.T) {
	now := time.Date(2026, time.November, 2, 9, 0, 0, 0, time.UTC)
	e := startDCV(t, now)
	proveDNS(t, alice, e, "applications/ov", "www.example.com", "example.com")
	proveDNS(t, alice, e, "applications/dv", "dv.example.com")
	ask := func(app string, names ...string) (*verificationv1.AuthorizeIssuanceResponse, error) {
		return e.client.AuthorizeIssuance(alice, &verificationv1.AuthorizeIssuanceRequest{
			Application: app, Attempt: 1, Domains: names, SignTime: timestamppb.New(e.clock.Now()),
		})
	}
	dv, err := ask("applications/dv", "dv.example.com")
	if err != nil || dv.ApprovedOrganization != nil {
		t.Fatalf("AuthorizeIssuance(DV) = %v, %v; want OK without an organization", dv, err)
	}
	req := orgReview("applications/ov", 1, "91330000MA27XF4T0K")
	r, err := e.reviews.CreateReview(aliceSys, req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ask("applications/ov", "www.example.com", "example.com"); reason(err) != "ORGANIZATION_NOT_APPROVED" {
		t.Fatalf("AuthorizeIssuance(pending review) = %v; want ORGANIZATION_NOT_APPROVED", err)
	}
	if _, err := e.client.UploadDocument(alice, &verificationv1.UploadDocumentRequest{
		Parent: "applications/ov", Document: &verificationv1.Document{DisplayName: "licence.png", Content: pngBytes(t, 3, 2)},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.reviews.ApproveReview(staff, &verificationv1.ApproveReviewRequest{Name: r.Name}); err != nil {
		t.Fatal(err)
	}
	got, err := ask("applications/ov", "www.example.com", "example.com")
	if err != nil {
		t.Fatal(err)
	}
	o, want := got.GetApprovedOrganization(), req.Review.Organization
	if o.GetReview() != r.Name || o.GetValidationLevel() != "OV" || o.GetName() != want.Name || o.GetOrganizationId() != want.OrganizationId ||
		o.GetCountry() != want.Country || o.GetProvince() != want.Province || o.GetCity() != want.City {
		t.Fatalf("approved organization = %v; want the review's %v", o, want)
	}
	e.clock.Advance(398 * 24 * time.Hour)
	if _, err := ask("applications/ov", "www.example.com", "example.com"); err == nil {
		t.Errorf("AuthorizeIssuance 398 days after approval = OK; want a refusal")
	}
}
