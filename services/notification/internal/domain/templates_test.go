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
