package domain

import (
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/certflow/certflow/pkg/apierr"
	"github.com/certflow/certflow/pkg/csr"
)

var (
	now       = time.Date(2026, 11, 20, 16, 0, 0, 0, time.UTC) // a Friday
	dvSingle  = Product{Level: DV, Type: Single, MaxDomains: 1}
	dvMulti3  = Product{Level: DV, Type: Multi, MaxDomains: 3}
	dvWild    = Product{Level: DV, Type: Wildcard, MaxDomains: 2}
	ovSingle  = Product{Level: OV, Type: Single, MaxDomains: 1}
	applicant = Applicant{Name: "Li Lei", Phone: "+86 571 8502 2088", Email: "li@example.com"}
	company   = Company{Name: "Example Ltd", Type: "enterprise", Phone: "+86 571 1234 5678", OrganizationID: "91330100", Country: "CN", Address: "1 Road", ZipCode: "310000"}
)

func details(domains ...string) Details { return Details{Domains: domains, Applicant: applicant} }

func TestProgress(t *testing.T) {
	want := map[State]int{Draft: 0, PendingDomainVerification: 40, PendingOrganizationVerification: 70, PendingManualReview: 80, PendingIssuance: 90, Issued: 100, ValidationFailed: 0, Withdrawn: 0}
	for s, p := range want {
		if got := s.Progress(); got != p {
			t.Errorf("%s.Progress() = %d; want %d", s, got, p)
		}
	}
}

func TestExpectedIssueTime(t *testing.T) {
	tests := []struct {
		level Level
		at    time.Time
		want  time.Time
	}{
		{DV, now, now.Add(2 * time.Hour)},
		// Friday + 5 business days = next Friday.
		{OV, now, time.Date(2026, 11, 27, 16, 0, 0, 0, time.UTC)},
		// Saturday: Monday is the first business day.
		{EV, time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC), time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)},
		// Wednesday + 5 = next Wednesday.
		{OV, time.Date(2026, 11, 18, 9, 0, 0, 0, time.UTC), time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		if got := ExpectedIssueTime(tt.level, tt.at); !got.Equal(tt.want) {
			t.Errorf("ExpectedIssueTime(%s, %v) = %v; want %v", tt.level, tt.at, got, tt.want)
		}
	}
}

func testCSR(t *testing.T, names ...string) string {
	t.Helper()
	key, err := csr.GenerateKey(csr.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	der, err := csr.Build(key, names)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

func TestDetailsNormalize(t *testing.T) {
	good := testCSR(t, "www.example.com")
	tests := []struct {
		name    string
		product Product
		d       Details
		reason  string
	}{
		{"dv single", dvSingle, details("WWW.Example.com."), ""},
		{"two names on single", dvSingle, details("a.example.com", "b.example.com"), "DOMAIN_LIMIT_EXCEEDED"},
		{"wildcard on single", dvSingle, details("*.example.com"), "WILDCARD_NOT_ALLOWED"},
		{"multi within count", dvMulti3, details("a.example.com", "b.example.com", "c.example.org"), ""},
		{"multi over count", dvMulti3, details("a.example.com", "b.example.com", "c.example.com", "d.example.com"), "DOMAIN_LIMIT_EXCEEDED"},
		{"wildcard on multi", dvMulti3, details("*.example.com"), "WILDCARD_NOT_ALLOWED"},
		{"wildcard with base", dvWild, details("*.example.com", "example.com"), ""},
		{"wildcard without wildcard", dvWild, details("example.com"), "WILDCARD_REQUIRED"},
		{"wildcard with other name", dvWild, details("*.example.com", "www.example.org"), "DOMAIN_NOT_COVERED"},
		{"wildcard by http", dvWild, Details{Domains: []string{"*.example.com"}, Method: HTTPFile, Applicant: applicant}, "WILDCARD_NEEDS_DNS"},
		{"malformed name", dvSingle, details("exa mple.com"), "INVALID_DOMAIN"},
		{"public suffix", dvSingle, details("co.uk"), "INVALID_DOMAIN"},
		{"ip address", dvSingle, details("192.0.2.1"), "INVALID_DOMAIN"},
		{"duplicates", dvMulti3, details("a.example.com", "A.example.com."), "DUPLICATE_DOMAIN"},
		{"no names", dvSingle, details(), "MISSING_FIELD"},
		{"no applicant name", dvSingle, Details{Domains: []string{"example.com"}, Applicant: Applicant{Email: "a@example.com", Phone: "+1 555 0100"}}, "MISSING_FIELD"},
		{"bad email", dvSingle, Details{Domains: []string{"example.com"}, Applicant: Applicant{Name: "A", Email: "not-an-email", Phone: "+1 555 0100"}}, "INVALID_EMAIL"},
		{"bad phone", dvSingle, Details{Domains: []string{"example.com"}, Applicant: Applicant{Name: "A", Email: "a@example.com", Phone: "call me"}}, "INVALID_PHONE"},
		{"ov without company", ovSingle, Details{Domains: []string{"example.com"}, Applicant: Applicant{Name: "A", Email: "a@example.com", Phone: "+1 555 0100", IDNumber: "X1"}}, "MISSING_FIELD"},
		{"ov without id number", ovSingle, Details{Domains: []string{"example.com"}, Applicant: applicant, Company: company}, "MISSING_FIELD"},
		{"ov complete", ovSingle, Details{Domains: []string{"example.com"}, Applicant: Applicant{Name: "A", Email: "a@example.com", Phone: "+1 555 0100", IDNumber: "X1"}, Company: company}, ""},
		{"unknown key algorithm", dvSingle, Details{Domains: []string{"example.com"}, Applicant: applicant, KeyAlgorithm: "RSA-1024"}, "UNSUPPORTED_KEY_ALGORITHM"},
		{"manual csr ok", dvSingle, Details{Domains: []string{"www.example.com"}, Applicant: applicant, CSRMode: Manual, CSR: good}, ""},
		{"manual csr other names", dvSingle, Details{Domains: []string{"shop.example.com"}, Applicant: applicant, CSRMode: Manual, CSR: good}, string(csr.ReasonNameMismatch)},
		{"manual csr missing", dvSingle, Details{Domains: []string{"www.example.com"}, Applicant: applicant, CSRMode: Manual}, "MISSING_FIELD"},
		{"csr with automatic", dvSingle, Details{Domains: []string{"www.example.com"}, Applicant: applicant, CSR: good}, "CSR_NOT_EXPECTED"},
	}
	for _, tt := range tests {
		got, err := tt.d.Normalize(tt.product)
		if r := apierr.ReasonOf(err); r != tt.reason {
			t.Errorf("%s: Normalize = %v (reason %q); want reason %q", tt.name, err, r, tt.reason)
			continue
		}
		if err == nil && (got.Method == "" || got.CSRMode == "") {
			t.Errorf("%s: Normalize left defaults unset: %+v", tt.name, got)
		}
		if err != nil && !errors.Is(err, apierr.ErrInvalidArgument) {
			t.Errorf("%s: Normalize = %v; want InvalidArgument", tt.name, err)
		}
	}
	got, _ := details("WWW.Example.com.").Normalize(dvSingle)
	if got.Domains[0] != "www.example.com" || got.Method != DNSTXT || got.CSRMode != Automatic || got.KeyAlgorithm != "ECDSA-P256" {
		t.Errorf("Normalize defaults = %+v; want www.example.com, DNS_TXT, AUTOMATIC, ECDSA-P256", got)
	}
}

func challenges(names ...string) []Challenge {
	var out []Challenge
	for _, n := range names {
		out = append(out, Challenge{Name: "challenges/" + n, Domain: n, State: "PENDING"})
	}
	return out
}

func TestDVLifecycle(t *testing.T) {
	a, err := New("instances/i-1", dvMulti3, details("a.example.com", "b.example.com"), now)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Submit(1, challenges("a.example.com", "b.example.com"), nil, now); err != nil {
		t.Fatal(err)
	}
	if a.State != PendingDomainVerification || !a.ExpectedIssueTime.Equal(now.Add(2*time.Hour)) {
		t.Fatalf("after submit: %s expected %v", a.State, a.ExpectedIssueTime)
	}
	if err := a.Submit(2, nil, nil, now); apierr.ReasonOf(err) != "APPLICATION_ALREADY_SUBMITTED" {
		t.Fatalf("second submit = %v; want APPLICATION_ALREADY_SUBMITTED", err)
	}
	if err := a.Edit(details("c.example.com")); apierr.ReasonOf(err) != "APPLICATION_NOT_EDITABLE" {
		t.Fatalf("edit while pending = %v; want APPLICATION_NOT_EDITABLE", err)
	}
	if next, err := a.DomainVerified(1, "challenges/a.example.com", now, now); err != nil || next != "" {
		t.Fatalf("first domain verified = %q, %v; want still pending", next, err)
	}
	if _, err := a.DomainVerified(1, "challenges/a.example.com", now, now); !errors.Is(err, ErrStale) {
		t.Fatalf("same domain verified twice = %v; want ErrStale", err)
	}
	if _, err := a.DomainVerified(0, "challenges/b.example.com", now, now); !errors.Is(err, ErrStale) {
		t.Fatalf("old attempt's event = %v; want ErrStale", err)
	}
	if next, err := a.DomainVerified(1, "challenges/b.example.com", now, now); err != nil || next != PendingIssuance {
		t.Fatalf("last domain verified = %q, %v; want PENDING_ISSUANCE", next, err)
	}
	if err := a.Issued(1, "certificates/c", now); err != nil || a.State != Issued || a.State.Progress() != 100 {
		t.Fatalf("Issued = %v, state %s", err, a.State)
	}
	if err := a.Withdraw(now); apierr.ReasonOf(err) != "APPLICATION_ALREADY_ISSUED" || !errors.Is(err, apierr.ErrFailedPrecondition) {
		t.Fatalf("withdraw after issue = %v; want FailedPrecondition APPLICATION_ALREADY_ISSUED", err)
	}
	var states []State
	for _, h := range a.History {
		states = append(states, h.State)
	}
	want := []State{Draft, PendingDomainVerification, PendingIssuance, Issued}
	if len(states) != len(want) {
		t.Fatalf("history = %v; want %v", states, want)
	}
	for i := range want {
		if states[i] != want[i] {
			t.Fatalf("history = %v; want %v", states, want)
		}
	}
}

func TestFailureEditResubmit(t *testing.T) {
	a, _ := New("instances/i-1", dvSingle, details("a.example.com"), now)
	_ = a.Submit(1, challenges("a.example.com"), nil, now)
	if err := a.DomainFailed(1, "challenges/a.example.com", "a.example.com", "expired", now); err != nil || a.State != ValidationFailed || a.FailureCause == "" {
		t.Fatalf("DomainFailed = %v, state %s, cause %q", err, a.State, a.FailureCause)
	}
	if err := a.Edit(details("b.example.com")); err != nil {
		t.Fatalf("edit after failure = %v", err)
	}
	if err := a.Submit(2, challenges("b.example.com"), nil, now); err != nil || a.Attempt != 2 || a.FailureCause != "" {
		t.Fatalf("resubmit = %v, attempt %d, cause %q", err, a.Attempt, a.FailureCause)
	}
	if err := a.Withdraw(now); err != nil || a.State != Withdrawn || a.Challenges[0].State != "CANCELLED" {
		t.Fatalf("withdraw = %v, state %s", err, a.State)
	}
	if err := a.Withdraw(now); apierr.ReasonOf(err) != "APPLICATION_ALREADY_WITHDRAWN" {
		t.Fatalf("withdraw twice = %v", err)
	}
}

func TestOVGoesToOrganizationVerification(t *testing.T) {
	d := Details{Domains: []string{"example.com"}, Applicant: Applicant{Name: "A", Email: "a@example.com", Phone: "+1 555 0100", IDNumber: "X"}, Company: company}
	a, err := New("instances/i", ovSingle, d, now)
	if err != nil {
		t.Fatal(err)
	}
	_ = a.Submit(1, challenges("example.com"), nil, now)
	if next, _ := a.DomainVerified(1, "challenges/example.com", now, now); next != PendingOrganizationVerification || a.State.Progress() != 70 {
		t.Fatalf("OV after domains = %s; want PENDING_ORGANIZATION_VERIFICATION at 70%%", next)
	}
}

func TestFlaggedWords(t *testing.T) {
	tests := []struct {
		names []string
		want  string
	}{
		{[]string{"www.example.com"}, ""},
		{[]string{"mybank.example.com"}, "bank"},
		{[]string{"pay.example.com", "live.example.com"}, "live pay"},
		{[]string{"*.paybank.example.com"}, "bank pay"},
		// A TLD is not a claim: "example.live" is not flagged.
		{[]string{"www.example.live"}, ""},
	}
	for _, tt := range tests {
		if got := strings.Join(FlaggedWords(tt.names, DefaultReviewWords), " "); got != tt.want {
			t.Errorf("FlaggedWords(%q) = %q; want %q", tt.names, got, tt.want)
		}
	}
}

func TestReviewsPath(t *testing.T) {
	d := Details{Domains: []string{"pay.example.com"}, Applicant: Applicant{Name: "A", Email: "a@example.com", Phone: "+1 555 0100", IDNumber: "X"}, Company: company}
	a, err := New("instances/i", ovSingle, d, now)
	if err != nil {
		t.Fatal(err)
	}
	_ = a.Submit(1, challenges("pay.example.com"), FlaggedWords(d.Domains, DefaultReviewWords), now)
	if next, _ := a.DomainVerified(1, "challenges/pay.example.com", now, now); next != PendingOrganizationVerification {
		t.Fatalf("after domains = %s; want PENDING_ORGANIZATION_VERIFICATION", next)
	}
	if _, err := a.ReviewDecided(ManualReview, 1, true, "", now); !errors.Is(err, ErrStale) {
		t.Fatalf("manual decision during organization verification = %v; want ErrStale", err)
	}
	if next, err := a.ReviewDecided(OrganizationReview, 1, true, "", now); err != nil || next != PendingManualReview || a.State.Progress() != 80 {
		t.Fatalf("organization approved with a flagged name = %s, %v; want PENDING_MANUAL_REVIEW (80%%)", next, err)
	}
	if next, err := a.ReviewDecided(ManualReview, 1, true, "", now); err != nil || next != PendingIssuance {
		t.Fatalf("manual review approved = %s, %v; want PENDING_ISSUANCE", next, err)
	}
	if last := a.History[len(a.History)-1]; last.Actor != ActorReviewer {
		t.Fatalf("history actor = %q; want reviewer", last.Actor)
	}

	b, _ := New("instances/j", ovSingle, Details{Domains: []string{"example.com"}, Applicant: d.Applicant, Company: company}, now)
	_ = b.Submit(1, challenges("example.com"), nil, now)
	_, _ = b.DomainVerified(1, "challenges/example.com", now, now)
	if next, err := b.ReviewDecided(OrganizationReview, 1, false, "business licence is expired", now); err != nil || next != ValidationFailed ||
		!strings.Contains(b.FailureCause, "business licence is expired") {
		t.Fatalf("organization rejected = %s, %v, cause %q", next, err, b.FailureCause)
	}
	if err := b.Edit(Details{Domains: []string{"example.com"}, Applicant: d.Applicant, Company: company}); err != nil {
		t.Fatalf("edit after rejection = %v", err)
	}
	if err := b.Submit(2, challenges("example.com"), nil, now); err != nil || len(b.History) != 5 {
		t.Fatalf("resubmit = %v, history %d entries; want both attempts kept (5)", err, len(b.History))
	}

	c, _ := New("instances/k", dvSingle, details("live.example.com"), now)
	_ = c.Submit(1, challenges("live.example.com"), []string{"live"}, now)
	if next, _ := c.DomainVerified(1, "challenges/live.example.com", now, now); next != PendingManualReview {
		t.Fatalf("DV with a flagged name after domains = %s; want PENDING_MANUAL_REVIEW", next)
	}
}

func TestTemplateFill(t *testing.T) {
	tpl, err := Template{DisplayName: "acme", Details: Details{Domains: []string{"Example.com"}, Applicant: applicant, Company: company, Method: HTTPFile}}.Normalize(now)
	if err != nil {
		t.Fatal(err)
	}
	got := tpl.Details.Fill(Details{Domains: []string{"www.example.com"}})
	if got.Domains[0] != "www.example.com" || got.Applicant != applicant || got.Company != company || got.Method != HTTPFile {
		t.Fatalf("Fill = %+v; want the request's domains and the template's applicant, company and method", got)
	}
	if _, err := (Template{Details: Details{CSR: "x"}}).Normalize(now); apierr.ReasonOf(err) != "CSR_NOT_EXPECTED" {
		t.Fatalf("template with a CSR = %v; want CSR_NOT_EXPECTED", err)
	}
	many := make([]string, MaxTemplateDomains+1)
	for i := range many {
		many[i] = fmt.Sprintf("n%d.example.com", i)
	}
	if _, err := (Template{Details: Details{Domains: many}}).Normalize(now); apierr.ReasonOf(err) != "DOMAIN_LIMIT_EXCEEDED" {
		t.Fatalf("template with %d names = %v; want DOMAIN_LIMIT_EXCEEDED", len(many), err)
	}
	if _, err := (Template{Details: Details{Domains: many[:MaxTemplateDomains]}}).Normalize(now); err != nil {
		t.Fatalf("template with %d names = %v; want it accepted", MaxTemplateDomains, err)
	}
}

func TestWithdrawRefusedOnceSigning(t *testing.T) {
	a, _ := New("instances/i", dvSingle, details("a.example.com"), now)
	_ = a.Submit(1, challenges("a.example.com"), nil, now)
	_, _ = a.DomainVerified(1, "challenges/a.example.com", now, now)
	if a.State != PendingIssuance {
		t.Fatalf("state = %s; want PENDING_ISSUANCE", a.State)
	}
	if err := a.RequestIssuance(1); err != nil {
		t.Fatalf("RequestIssuance = %v", err)
	}
	if err := a.RequestIssuance(1); !errors.Is(err, ErrStale) {
		t.Fatalf("RequestIssuance again = %v; want ErrStale (no change)", err)
	}
	if err := a.Withdraw(now); apierr.ReasonOf(err) != "APPLICATION_BEING_ISSUED" {
		t.Fatalf("Withdraw while signing = %v; want APPLICATION_BEING_ISSUED", err)
	}
}

func TestClaimSerializesSubmitEditWithdraw(t *testing.T) {
	const ttl = 30 * time.Second
	a, err := New("instances/i", Product{Level: DV, Type: Multi, MaxDomains: 2}, details("a.example.com"), now)
	if err != nil {
		t.Fatal(err)
	}
	attempt, err := a.BeginSubmit("s1", now, ttl)
	if err != nil || attempt != 1 {
		t.Fatalf("BeginSubmit = %d, %v; want attempt 1", attempt, err)
	}
	busy := func(what string, err error) {
		t.Helper()
		if apierr.ReasonOf(err) != "APPLICATION_BUSY" || !errors.Is(err, apierr.ErrAborted) {
			t.Errorf("%s while a submit holds the application = %v; want Aborted APPLICATION_BUSY", what, err)
		}
	}
	_, err = a.BeginSubmit("s2", now, ttl)
	busy("BeginSubmit", err)
	busy("edit (CheckFree)", a.CheckFree("", now))
	busy("BeginWithdraw", a.BeginWithdraw("w1", now, ttl))
	if err := a.FinishSubmit("s1", 1, challenges("b.example.com"), nil, now); apierr.ReasonOf(err) != "CHALLENGES_MISMATCH" {
		t.Errorf("FinishSubmit with challenges for another name = %v; want CHALLENGES_MISMATCH", err)
	}
	if err := a.FinishSubmit("s2", 1, challenges("a.example.com"), nil, now); apierr.ReasonOf(err) != "CONCURRENT_SUBMIT" {
		t.Errorf("FinishSubmit by a request without the claim = %v; want CONCURRENT_SUBMIT", err)
	}

	// The holder died: once the claim ends another request takes over, and
	// the first one's late write is refused.
	later := now.Add(ttl)
	if _, err := a.BeginSubmit("s2", later, ttl); err != nil {
		t.Fatalf("BeginSubmit after the claim expired = %v", err)
	}
	if err := a.FinishSubmit("s1", 1, challenges("a.example.com"), nil, later); apierr.ReasonOf(err) != "CONCURRENT_SUBMIT" {
		t.Errorf("FinishSubmit by the expired holder = %v; want CONCURRENT_SUBMIT", err)
	}
	if err := a.FinishSubmit("s2", 1, challenges("a.example.com"), nil, later); err != nil || a.State != PendingDomainVerification || a.Claim != nil {
		t.Fatalf("FinishSubmit by the holder = %v, %s, claim %v; want PENDING_DOMAIN_VERIFICATION and no claim", err, a.State, a.Claim)
	}

	// A withdrawal holds the application until it released the instance,
	// and a submit waits for that release even after the claim expired.
	if err := a.BeginWithdraw("w1", later, ttl); err != nil || a.State != Withdrawn {
		t.Fatalf("BeginWithdraw = %v, %s; want WITHDRAWN", err, a.State)
	}
	busy("edit (CheckFree) during a withdrawal", a.CheckFree("", later))
	expired := later.Add(ttl)
	_, err = a.BeginSubmit("s3", expired, ttl)
	busy("BeginSubmit after an unfinished withdrawal", err)
	if err := a.CheckFree("", expired); err != nil {
		t.Errorf("edit after the withdrawal's claim expired = %v; want allowed", err)
	}
	if err := a.TakeOverRelease(1, "h1", later, ttl); apierr.ReasonOf(err) != "APPLICATION_BUSY" {
		t.Errorf("TakeOverRelease while the withdrawal holds it = %v; want APPLICATION_BUSY", err)
	}
	if err := a.TakeOverRelease(1, "h1", expired, ttl); err != nil || !a.Holds("h1", expired) {
		t.Fatalf("TakeOverRelease after expiry = %v; want the claim taken", err)
	}
	if !a.EndClaim("h1") || a.EndClaim("h1") {
		t.Errorf("EndClaim = not once; want true then false")
	}
	if err := a.TakeOverRelease(1, "h2", expired, ttl); !errors.Is(err, ErrStale) {
		t.Errorf("TakeOverRelease with nothing to release = %v; want ErrStale", err)
	}
	if attempt, err := a.BeginSubmit("s4", expired, ttl); err != nil || attempt != 2 {
		t.Errorf("BeginSubmit after the release = %d, %v; want attempt 2", attempt, err)
	}
}

func TestReviewClaimHoldsOffWithdrawal(t *testing.T) {
	const ttl = 30 * time.Second
	a, _ := New("instances/i", Product{Level: DV, Type: Single, MaxDomains: 1}, details("pay.example.com"), now)
	_ = a.Submit(1, challenges("pay.example.com"), []string{"pay"}, now)
	if next, err := a.DomainVerified(1, "challenges/pay.example.com", now, now); err != nil || next != PendingManualReview {
		t.Fatalf("DomainVerified = %v, %v; want PENDING_MANUAL_REVIEW", next, err)
	}
	if err := a.BeginReview(PendingManualReview, 2, "r0", now, ttl); !errors.Is(err, ErrStale) {
		t.Errorf("BeginReview for another attempt = %v; want ErrStale", err)
	}
	if err := a.BeginReview(PendingManualReview, 1, "r1", now, ttl); err != nil {
		t.Fatal(err)
	}
	if err := a.BeginWithdraw("w1", now, ttl); apierr.ReasonOf(err) != "APPLICATION_BUSY" || a.State != PendingManualReview {
		t.Errorf("BeginWithdraw while the review is being opened = %v, %s; want APPLICATION_BUSY", err, a.State)
	}
	a.EndClaim("r1")
	if err := a.BeginWithdraw("w1", now, ttl); err != nil || a.State != Withdrawn {
		t.Errorf("BeginWithdraw after = %v, %s; want WITHDRAWN", err, a.State)
	}
	if err := a.BeginReview(PendingManualReview, 1, "r2", now, ttl); !errors.Is(err, ErrStale) {
		t.Errorf("BeginReview of a withdrawn application = %v; want ErrStale", err)
	}
}

func TestReissue(t *testing.T) {
	issued := func() Application {
		a, err := New("instances/i", dvSingle, details("www.example.com"), now)
		if err != nil {
			t.Fatal(err)
		}
		a.State, a.Attempt, a.Certificate = Issued, 1, "certificates/c1"
		return a
	}
	t.Run("not issued", func(t *testing.T) {
		a := issued()
		a.State = Draft
		if _, _, err := a.BeginReissue("t", Reissue{RequestID: "r"}, now, time.Minute); apierr.ReasonOf(err) != "APPLICATION_NOT_ISSUED" {
			t.Fatalf("BeginReissue of a draft = %v", err)
		}
	})
	t.Run("names beyond the product", func(t *testing.T) {
		a := issued()
		if _, _, err := a.BeginReissue("t", Reissue{RequestID: "r", Domains: []string{"a.example.com", "b.example.com"}}, now, time.Minute); !errors.Is(err, apierr.ErrInvalidArgument) {
			t.Fatalf("BeginReissue with two names on a single product = %v; want InvalidArgument", err)
		}
		if a.Claim != nil {
			t.Fatal("a refused reissue took the claim")
		}
	})
	t.Run("new key, then done", func(t *testing.T) {
		a := issued()
		attempt, d, err := a.BeginReissue("t", Reissue{RequestID: "r1", KeyAlgorithm: "RSA-2048"}, now, time.Minute)
		if err != nil || attempt != 2 || d.KeyAlgorithm != "RSA-2048" || d.CSRMode != Automatic {
			t.Fatalf("BeginReissue = %d %+v %v", attempt, d, err)
		}
		if _, _, err := a.BeginReissue("u", Reissue{RequestID: "r2"}, now, time.Minute); apierr.ReasonOf(err) != "APPLICATION_BUSY" {
			t.Fatalf("a second reissue while the first holds the claim = %v; want APPLICATION_BUSY", err)
		}
		ch := []Challenge{{Name: "challenges/x", Domain: "www.example.com", State: "VERIFIED"}}
		if err := a.FinishReissue("t", Reissue{RequestID: "r1"}, attempt, d, ch, nil, now); err != nil {
			t.Fatal(err)
		}
		if a.ReissueOf != "certificates/c1" || a.Certificate != "certificates/c1" || a.Claim != nil {
			t.Fatalf("after FinishReissue: %+v", a)
		}
		if err := a.Withdraw(now); apierr.ReasonOf(err) != "REISSUE_IN_PROGRESS" {
			t.Fatalf("Withdraw during a reissue = %v", err)
		}
		if _, _, err := a.BeginReissue("v", Reissue{RequestID: "r1"}, now, time.Minute); !errors.Is(err, ErrSameReissue) {
			t.Fatalf("the same request again = %v; want ErrSameReissue", err)
		}
		a.State = PendingIssuance
		if err := a.Issued(2, "certificates/c2", now); err != nil || a.Certificate != "certificates/c2" || a.ReissueOf != "" {
			t.Fatalf("Issued = %v, %+v", err, a)
		}
	})
}
