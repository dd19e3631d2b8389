package domain

import (
	"strings"
	"testing"
	"time"
)

func TestRender(t *testing.T) {
	at := time.Date(2026, 11, 21, 20, 30, 0, 0, time.FixedZone("CET", 3600))
	tests := []struct {
		name        string
		tmpl        Template
		wantSubject string
		wantBody    []string // each must appear in the body
		notBody     []string // none may appear
	}{
		{
			name: "submitted DV",
			tmpl: SubmittedMail{
				Application: "applications/a1", Attempt: 1, Domains: []string{"example.com", "www.example.com"}, ValidationLevel: "DV",
				Challenges: []Challenge{
					{Domain: "example.com", Method: "DNS_TXT", RecordName: "_dnsauth.example.com", RecordType: "TXT", RecordValue: "tok-Abc_123", ExpireTime: at.Add(24 * time.Hour)},
					{Domain: "www.example.com", Method: "HTTP_FILE", URL: "http://www.example.com/.well-known/pki-validation/fileauth.txt", Content: "file-content-xyz"},
				},
				ExpectedIssueTime: at,
			},
			wantSubject: "Verify your domains for applications/a1",
			wantBody: []string{
				"  - example.com\n", "  - www.example.com\n",
				"Record name:  _dnsauth.example.com\n", "Record type:  TXT\n", "Record value: tok-Abc_123\n",
				"URL:     http://www.example.com/.well-known/pki-validation/fileauth.txt\n", "Content: file-content-xyz\n", "exactly this content",
				"Publish it before 2026-11-22 19:30 UTC",
				"Expected issue time: 2026-11-21 19:30 UTC.",
				"usually completes within 2 hours once the proof is published",
				"GET /v1/applications/a1",
			},
			notBody: []string{"Organization validation", "attempt"},
		},
		{
			name: "resubmitted OV with a record type left out",
			tmpl: SubmittedMail{
				Application: "applications/a2", Attempt: 2, Domains: []string{"example.org"}, ValidationLevel: "OV",
				Challenges: []Challenge{{Domain: "example.org", Method: "DNS_TXT", RecordName: "_dnsauth.example.org", RecordValue: "v"}},
			},
			wantSubject: "Verify your domains for applications/a2",
			wantBody:    []string{"again (attempt 2)", "OV certificate", "Record type:  TXT\n", "within 2 hours", "3 to 5 business days"},
			notBody:     []string{"Expected issue time"},
		},
		{
			name: "submitted with an unknown method",
			tmpl: SubmittedMail{
				Application: "applications/a3", Domains: []string{"example.net"},
				Challenges: []Challenge{{Domain: "example.net", Method: "DNS_CNAME", RecordName: "_x.example.net", RecordValue: "y.ca.test"}},
			},
			wantSubject: "Verify your domains for applications/a3",
			wantBody:    []string{"Method: DNS_CNAME", "Record name: _x.example.net", "Record value: y.ca.test"},
			notBody:     []string{"URL:"},
		},
		{
			name:        "domain verified",
			tmpl:        VerifiedMail{Application: "applications/a1", Domain: "www.example.com", Method: "HTTP_FILE", VerifyTime: at},
			wantSubject: "Domain www.example.com verified",
			wantBody:    []string{"www.example.com of your application applications/a1 passed validation (method HTTP_FILE) on 2026-11-21 19:30 UTC", "until the certificate is issued"},
		},
		{
			name:        "failed",
			tmpl:        FailedMail{Application: "applications/a1", Cause: "CAA record of example.com\nforbids this CA"},
			wantSubject: "Application applications/a1 failed: CAA record of example.com forbids this CA",
			wantBody:    []string{"Cause: CAA record of example.com\nforbids this CA", "PATCH /v1/applications/a1", "POST /v1/applications/a1:submit"},
		},
		{
			name:        "failed without a cause",
			tmpl:        FailedMail{Application: "applications/a1"},
			wantSubject: "Application applications/a1 failed: no cause given",
			wantBody:    []string{"Cause: no cause given"},
		},
		{
			name:        "issued",
			tmpl:        IssuedMail{Application: "applications/a1", Certificate: "certificates/c1", Domains: []string{"example.com", "www.example.com"}},
			wantSubject: "Your certificate for example.com, www.example.com is issued",
			wantBody:    []string{"certificates/c1", "  - www.example.com\n", "GET /v1/certificates/c1:download"},
		},
		{
			name:        "issued for many names",
			tmpl:        IssuedMail{Application: "applications/a1", Certificate: "certificates/c2", Domains: []string{"a.test", "b.test", "c.test", "d.test", "e.test"}},
			wantSubject: "Your certificate for a.test, b.test, c.test and 2 more is issued",
			wantBody:    []string{"  - e.test\n", "GET /v1/certificates/c2:download"},
		},
		{
			name: "submitted with an EMAIL challenge and warnings",
			tmpl: SubmittedMail{
				Application: "applications/a4", Domains: []string{"example.com"},
				Challenges: []Challenge{{Name: "challenges/c4", Domain: "example.com", Method: "EMAIL", EmailAddress: "admin@example.com"}},
				Warnings:   []string{"The EMAIL method must not be used from 2028-03-15."},
			},
			wantSubject: "Verify your domains for applications/a4",
			wantBody: []string{"A confirmation code is emailed to admin@example.com.", "POST /v1/challenges/c4:confirm", `{"code": "<code>"}`,
				"Please note:\n  - The EMAIL method must not be used from 2028-03-15.\n"},
			notBody: []string{"Method: EMAIL"},
		},
		{
			name:        "organization verification",
			tmpl:        OrganizationMail{Application: "applications/ov1", ApplicantPhone: "+49 170 1234567", CompanyPhone: "+49 30 9876543"},
			wantSubject: "Answer the phone: the CA will verify your organization",
			wantBody: []string{"calling the applicant at +49 170 1234567 and the company at +49 30 9876543",
				"documents you uploaded are being reviewed; this usually takes 3 to 5 business days", "GET /v1/applications/ov1"},
		},
		{
			name:        "organization verification of a named company without phones",
			tmpl:        OrganizationMail{Application: "applications/ov2", Company: "Example\nGmbH"},
			wantSubject: "Answer the phone: the CA will verify Example GmbH",
			wantBody:    []string{"the CA may call to confirm the application.\n", "3 to 5 business days"},
			notBody:     []string{"calling"},
		},
		{
			name:        "domain control email",
			tmpl:        DomainControlMail{Domain: "www.example.com", Challenge: "challenges/c7", Application: "applications/a7", Code: "K7-93xQ", ExpireTime: at},
			wantSubject: "Confirm control of www.example.com",
			wantBody: []string{"certificate for www.example.com", "Confirmation code: K7-93xQ\n", "POST /v1/challenges/c7:confirm\n", `{"code": "K7-93xQ"}`,
				"expires on 2026-11-21 19:30 UTC", "ignore this email"},
		},
	}
	for _, tt := range tests {
		got := tt.tmpl.Render()
		if got.Subject != tt.wantSubject {
			t.Errorf("Render(%s) subject = %q; want %q", tt.name, got.Subject, tt.wantSubject)
		}
		if strings.ContainsAny(got.Subject, "\r\n") {
			t.Errorf("Render(%s) subject = %q; want one line", tt.name, got.Subject)
		}
		for _, want := range tt.wantBody {
			if !strings.Contains(got.Body, want) {
				t.Errorf("Render(%s) body = %q; want it to contain %q", tt.name, got.Body, want)
			}
		}
		for _, not := range tt.notBody {
			if strings.Contains(got.Body, not) {
				t.Errorf("Render(%s) body = %q; want no %q", tt.name, got.Body, not)
			}
		}
	}
}

func TestFailedSubjectIsBounded(t *testing.T) {
	cause := strings.Repeat("é", 500)
	got := FailedMail{Application: "applications/a1", Cause: cause}.Render()
	if n := len([]rune(got.Subject)); n > 150 {
		t.Errorf("Render(long cause) subject has %d characters; want at most 150", n)
	}
	if !strings.Contains(got.Body, cause) {
		t.Errorf("Render(long cause) body lost the full cause")
	}
}

func TestNotificationAttempts(t *testing.T) {
	now := time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		failures  int  // transient failures before the last call
		permanent bool // the last failure is permanent
		wantRetry bool
		wantState State
	}{
		{"first transient failure", 0, false, true, Pending},
		{"fourth transient failure", 3, false, true, Pending},
		{"fifth transient failure", MaxAttempts - 1, false, false, Failed},
		{"permanent failure", 0, true, false, Failed},
	}
	for _, tt := range tests {
		n := NewEmail("a@example.com", Message{Subject: "s", Body: "b"}, "t", "e1", "applications/a1", now)
		for range tt.failures {
			n.MarkAttemptFailed("timeout", false)
		}
		retry := n.MarkAttemptFailed("refused", tt.permanent)
		if retry != tt.wantRetry || n.State != tt.wantState || n.Error != "refused" || n.Attempts != tt.failures+1 {
			t.Errorf("%s: MarkAttemptFailed = %v, state %s, error %q, attempts %d; want %v, %s, %q, %d",
				tt.name, retry, n.State, n.Error, n.Attempts, tt.wantRetry, tt.wantState, "refused", tt.failures+1)
		}
		if n.Done() != (tt.wantState == Failed) {
			t.Errorf("%s: Done() = %v in state %s", tt.name, n.Done(), n.State)
		}
	}

	n := NewEmail("a@example.com", Message{}, "t", "e1", "applications/a1", now)
	n.MarkAttemptFailed("timeout", false)
	n.MarkSent(now)
	if n.State != Sent || n.Error != "" || n.Attempts != 2 || !n.SendTime.Equal(now) || !n.Done() {
		t.Errorf("MarkSent after a failure = %+v; want SENT, no error, 2 attempts", n)
	}
}

func TestDomainControlMailRedacted(t *testing.T) {
	m := DomainControlMail{Domain: "example.com", Challenge: "challenges/c7", Code: "K7-93xQ"}
	var tmpl Template = m
	r, ok := tmpl.(Redactor)
	if !ok {
		t.Fatal("DomainControlMail is not a Redactor; its record would hold the code")
	}
	got := r.Redacted()
	if strings.Contains(got.Body, "K7-93xQ") || got.Subject != m.Render().Subject || !strings.Contains(got.Body, "POST /v1/challenges/c7:confirm") {
		t.Errorf("Redacted() = %+v; want the same mail without the code", got)
	}
}

func TestSMSTexts(t *testing.T) {
	tests := []struct {
		name string
		got  string
		want []string
	}{
		{"organization", OrganizationSMS("applications/ov1"), []string{"certflow: the CA may call you to verify applications/ov1"}},
		{"failed", FailedSMS("applications/a1", "CAA record\nforbids this CA"), []string{"applications/a1 failed: CAA record forbids this CA.", "resubmit"}},
		{"failed without a cause", FailedSMS("applications/a1", " "), []string{"failed: no cause given."}},
		{"failed with a long cause", FailedSMS("applications/a1", strings.Repeat("x", 500)), []string{strings.Repeat("x", maxSMSCause-1) + "…"}},
		{"issued", IssuedSMS("certificates/c1"), []string{"certificates/c1 is issued", "GET /v1/certificates/c1:download"}},
	}
	for _, tt := range tests {
		for _, want := range tt.want {
			if !strings.Contains(tt.got, want) {
				t.Errorf("%s SMS = %q; want it to contain %q", tt.name, tt.got, want)
			}
		}
		if n := len([]rune(tt.got)); n > 160 || strings.ContainsAny(tt.got, "\r\n") {
			t.Errorf("%s SMS = %q (%d characters); want one line of at most 160", tt.name, tt.got, n)
		}
	}
}
