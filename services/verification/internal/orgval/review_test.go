package orgval

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/certflow/certflow/pkg/apierr"
	"github.com/certflow/certflow/pkg/certpolicy"
)

var testNow = time.Date(2026, time.November, 2, 9, 0, 0, 0, time.UTC)

func orgReview() Review {
	return Review{
		Kind: KindOrganization, Application: "applications/a1", Attempt: 1, ValidationLevel: "ov",
		Domains:      []string{"example.com"},
		Applicant:    Contact{Name: "Li Lei", Phone: "+86 10 1234 5678"},
		Organization: Organization{Name: "Example Ltd", OrganizationID: "91330000 ma27xf4t0k", Country: "CN", Province: "Zhejiang", City: "Hangzhou"},
	}
}

func TestNewReview(t *testing.T) {
	tests := []struct {
		name       string
		edit       func(r *Review)
		wantReason string
	}{
		{"organization", func(r *Review) {}, ""},
		{"manual", func(r *Review) { r.Kind, r.ValidationLevel, r.FlaggedWords = KindManual, "DV", []string{"bank"} }, ""},
		{"no kind", func(r *Review) { r.Kind = "" }, "INVALID_KIND"},
		{"attempt 0", func(r *Review) { r.Attempt = 0 }, "INVALID_ATTEMPT"},
		{"unknown level", func(r *Review) { r.ValidationLevel = "XV" }, "INVALID_VALIDATION_LEVEL"},
		{"organization for DV", func(r *Review) { r.ValidationLevel = "DV" }, "INVALID_VALIDATION_LEVEL"},
		{"no domains", func(r *Review) { r.Domains = nil }, "INVALID_DOMAINS"},
		{"no organization name", func(r *Review) { r.Organization.Name = " " }, "MISSING_FIELD"},
		{"long address", func(r *Review) { r.Organization.Address = strings.Repeat("x", MaxTextLength+1) }, "INVALID_TEXT"},
		{"bad UTF-8 word", func(r *Review) { r.FlaggedWords = []string{"\xff"} }, "INVALID_TEXT"},
	}
	for _, tt := range tests {
		in := orgReview()
		tt.edit(&in)
		in.State, in.Reviewer, in.Reused = Approved, "mallory", true // output only: ignored
		got, err := NewReview(in, testNow)
		if apierr.ReasonOf(err) != tt.wantReason {
			t.Errorf("NewReview(%s) = %v; want reason %q", tt.name, err, tt.wantReason)
			continue
		}
		if err == nil && (got.State != Pending || got.Reviewer != "" || got.Reused || got.ValidationLevel != strings.ToUpper(in.ValidationLevel) || !got.CreateTime.Equal(testNow)) {
			t.Errorf("NewReview(%s) = %+v; want PENDING, no reviewer, not reused, level upper case, created now", tt.name, got)
		}
	}
}

func pending(t *testing.T) Review {
	t.Helper()
	r, err := NewReview(orgReview(), testNow)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRecordCall(t *testing.T) {
	tests := []struct {
		name       string
		call       PhoneCall
		wantReason string
	}{
		{"confirmed", PhoneCall{Phone: "+86 10 1234 5678", Outcome: Confirmed}, ""},
		{"no answer", PhoneCall{Phone: "+86 10 1234 5678", Outcome: NoAnswer, Notes: "voicemail"}, ""},
		{"no phone", PhoneCall{Phone: " ", Outcome: Confirmed}, "MISSING_FIELD"},
		{"no outcome", PhoneCall{Phone: "1"}, "INVALID_OUTCOME"},
		{"long notes", PhoneCall{Phone: "1", Outcome: Confirmed, Notes: strings.Repeat("n", MaxNotesLength+1)}, "NOTES_TOO_LONG"},
	}
	for _, tt := range tests {
		r := pending(t)
		err := r.RecordCall(tt.call)
		if apierr.ReasonOf(err) != tt.wantReason {
			t.Errorf("RecordCall(%s) = %v; want reason %q", tt.name, err, tt.wantReason)
		}
		if want := map[bool]int{true: 1, false: 0}[tt.wantReason == ""]; len(r.PhoneCalls) != want {
			t.Errorf("RecordCall(%s) left %d calls; want %d", tt.name, len(r.PhoneCalls), want)
		}
	}
	r := pending(t)
	r.Cancel(testNow)
	if err := r.RecordCall(PhoneCall{Phone: "1", Outcome: Confirmed}); !errors.Is(err, apierr.ErrFailedPrecondition) {
		t.Errorf("RecordCall(cancelled review) = %v; want FailedPrecondition", err)
	}
}

func TestDecisions(t *testing.T) {
	call := func(o Outcome) func(r *Review) {
		return func(r *Review) { r.PhoneCalls = append(r.PhoneCalls, PhoneCall{Phone: "1", Outcome: o, Time: testNow}) }
	}
	tests := []struct {
		name       string
		setup      []func(r *Review)
		documents  int
		wantReason string
	}{
		{"documents, no call", nil, 1, ""},
		{"documents and a confirming call", []func(*Review){call(Confirmed)}, 2, ""},
		{"no documents", []func(*Review){call(Confirmed)}, 0, "DOCUMENTS_REQUIRED"},
		{"denied", []func(*Review){call(Denied)}, 1, "CONTACT_DENIED"},
		{"denied then confirmed", []func(*Review){call(Denied), call(Confirmed)}, 1, "CONTACT_DENIED"},
		{"manual needs no documents", []func(*Review){func(r *Review) { r.Kind = KindManual }}, 0, ""},
		{"already approved", []func(*Review){func(r *Review) { r.State = Approved }}, 1, "REVIEW_NOT_PENDING"},
	}
	for _, tt := range tests {
		r := pending(t)
		for _, s := range tt.setup {
			s(&r)
		}
		err := r.Approve("staff", "ok", tt.documents, testNow.Add(time.Hour))
		if apierr.ReasonOf(err) != tt.wantReason {
			t.Errorf("Approve(%s) = %v; want reason %q", tt.name, err, tt.wantReason)
			continue
		}
		if err == nil && (r.State != Approved || r.Reviewer != "staff" || !r.DecideTime.Equal(testNow.Add(time.Hour))) {
			t.Errorf("Approve(%s) = %+v; want APPROVED by staff at the decision time", tt.name, r)
		}
	}

	for _, tt := range []struct {
		cause      string
		wantReason string
	}{
		{"the business licence has expired; upload the current one", ""},
		{"  ", "MISSING_FIELD"},
		{strings.Repeat("c", MaxCauseLength+1), "CAUSE_TOO_LONG"},
	} {
		r := pending(t)
		if err := r.Reject("staff", tt.cause, testNow); apierr.ReasonOf(err) != tt.wantReason {
			t.Errorf("Reject(%.20q) = %v; want reason %q", tt.cause, err, tt.wantReason)
		} else if err == nil && (r.State != Rejected || r.Cause != tt.cause) {
			t.Errorf("Reject(%.20q) = %+v; want REJECTED with the cause", tt.cause, r)
		}
	}

	r := pending(t)
	if !r.Cancel(testNow) || r.State != Cancelled || r.Cancel(testNow) {
		t.Errorf("Cancel twice = state %s; want CANCELLED once, then a no-op", r.State)
	}
	if err := r.Reject("staff", "late", testNow); !errors.Is(err, apierr.ErrFailedPrecondition) {
		t.Errorf("Reject(cancelled) = %v; want FailedPrecondition", err)
	}
}

func TestOrganizationReuse(t *testing.T) {
	r := pending(t)
	if err := r.Approve("staff", "", 1, testNow); err != nil {
		t.Fatal(err)
	}
	ap, ok := r.Approval("reviews/r1")
	if !ok || ap.OrganizationID != "91330000MA27XF4T0K" || !ap.ApproveTime.Equal(testNow) {
		t.Fatalf("Approval() = %+v, %v; want the normalized id approved now", ap, ok)
	}
	same := orgReview().Organization
	tests := []struct {
		name string
		org  func() Organization
		at   time.Time
		want bool
	}{
		{"same organization next day", func() Organization { return same }, testNow.Add(24 * time.Hour), true},
		{"spacing and case differ", func() Organization {
			o := same
			o.OrganizationID, o.Name = "91330000MA27XF4T0K", " example  LTD"
			return o
		}, testNow, true},
		{"just under 398 days", func() Organization { return same }, testNow.Add(certpolicy.OrganizationValidationReuse - time.Second), true},
		{"at 398 days", func() Organization { return same }, testNow.Add(certpolicy.OrganizationValidationReuse), false},
		{"other id", func() Organization { o := same; o.OrganizationID = "X"; return o }, testNow, false},
		{"no id", func() Organization { o := same; o.OrganizationID = ""; return o }, testNow, false},
		{"renamed", func() Organization { o := same; o.Name = "Example Holdings Ltd"; return o }, testNow, false},
		{"moved", func() Organization { o := same; o.City = "Ningbo"; return o }, testNow, false},
	}
	for _, tt := range tests {
		if got := ap.ReusableFor(tt.org(), tt.at); got != tt.want {
			t.Errorf("ReusableFor(%s) = %v; want %v", tt.name, got, tt.want)
		}
	}

	reused := pending(t)
	reused.ApproveByReuse(ap, testNow.Add(48*time.Hour))
	if reused.State != Approved || !reused.Reused || reused.Reviewer != SystemReviewer || reused.ReusedReview != "reviews/r1" {
		t.Fatalf("ApproveByReuse = %+v; want APPROVED, reused, by system, naming reviews/r1", reused)
	}
	if _, ok := reused.Approval("reviews/r2"); ok {
		t.Fatalf("Approval() of a reuse = ok; a reuse must not extend the 398 days")
	}
	older := ap
	older.ApproveTime = testNow.Add(-time.Hour)
	if older.Merge(ap); !older.ApproveTime.Equal(testNow) {
		t.Fatalf("Merge(newer) kept %v; want %v", older.ApproveTime, testNow)
	}
	if ap.Merge(OrganizationApproval{ApproveTime: testNow.Add(-time.Hour)}) {
		t.Fatalf("Merge(older) = true; want the newer approval kept")
	}
}
