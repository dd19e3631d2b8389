package service_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/certflow/certflow/gen/go/certflow/events/v1"
	notificationv1 "github.com/certflow/certflow/gen/go/certflow/notification/v1"
	"github.com/certflow/certflow/pkg/auth"
	"github.com/certflow/certflow/pkg/callpolicy"
	"github.com/certflow/certflow/pkg/events"
	"github.com/certflow/certflow/pkg/smtptest"
	"github.com/certflow/certflow/pkg/testenv"
	notification "github.com/certflow/certflow/services/notification/service"
)

func TestOrganizationVerificationEmailAndSMS(t *testing.T) {
	srv := smtptest.Start(t)
	svc, client, conn := startWith(t, notification.Config{SMTPAddr: srv.Addr(), Now: tickingClock()})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const (
		app          = "applications/ov1"
		email        = "erin@example.com"
		phone        = "+49 170 1234567"
		companyPhone = "+49 30 9876543"
	)
	// Another state change sends nothing; it goes first so the wanted
	// messages prove it was handled.
	publish(ctx, t, conn, events.ApplicationStateChanged, app, &eventsv1.ApplicationStateChanged{
		Account: "alice", Application: app, Attempt: 1, FromState: "PENDING_ORGANIZATION_VERIFICATION", ToState: "PENDING_ISSUANCE",
		ApplicantEmail: email, ApplicantPhone: phone,
	})
	ov := publish(ctx, t, conn, events.ApplicationStateChanged, app, &eventsv1.ApplicationStateChanged{
		Account: "alice", Application: app, Attempt: 1, FromState: "PENDING_DOMAIN_VERIFICATION", ToState: "PENDING_ORGANIZATION_VERIFICATION",
		ProgressPercent: 70, ApplicantEmail: email, ApplicantPhone: phone, CompanyPhone: companyPhone,
	})

	msgs := srv.WaitFor(t, 1, 20*time.Second)
	p := parse(t, msgs[0])
	if p.to != email || !strings.HasPrefix(p.subject, "Answer the phone: the CA will verify") {
		t.Errorf("mail = to %q, subject %q; want to %s, \"Answer the phone: …\"", p.to, p.subject, email)
	}
	for _, want := range []string{phone, companyPhone, "3 to 5 business days", "documents you uploaded are being reviewed"} {
		if !strings.Contains(p.body, want) {
			t.Errorf("organization mail body = %q; want it to contain %q", p.body, want)
		}
	}

	alice := testenv.As(ctx, "alice", auth.Customer)
	got := waitList(alice, t, client, allSent(2))
	texts := svc.SMS().Messages()
	if len(texts) != 1 || texts[0].To != phone || !strings.Contains(texts[0].Text, "the CA may call you to verify "+app) {
		t.Fatalf("SMS sent = %+v; want one to %s saying the CA may call", texts, phone)
	}
	if n := len(srv.Messages()); n != 1 {
		t.Errorf("SMTP server received %d mails; want only the organization one", n)
	}
	channels := map[notificationv1.Channel]*notificationv1.Notification{}
	for _, n := range got {
		channels[n.Channel] = n
		if n.EventId != ov.ID || n.Application != app {
			t.Errorf("notification %s = event %s about %s; want event %s about %s", n.Name, n.EventId, n.Application, ov.ID, app)
		}
	}
	if n := channels[notificationv1.Channel_CHANNEL_SMS]; n == nil || n.Recipient != phone || n.Body != texts[0].Text {
		t.Errorf("SMS notification = %v; want one to %s with the text sent", n, phone)
	}
	if n := channels[notificationv1.Channel_CHANNEL_EMAIL]; n == nil || n.Recipient != email {
		t.Errorf("email notification = %v; want one to %s", n, email)
	}
}

func TestSendDomainValidationEmailMailsConstructedAddress(t *testing.T) {
	srv := smtptest.Start(t)
	svc, client, _ := startWith(t, notification.Config{SMTPAddr: srv.Addr(), Now: tickingClock()})
	// Customers and reviewers come through the gateway.
	viaGateway := notificationv1.NewNotificationServiceClient(testenv.DialAs(t, svc.GRPC.Addr(), callpolicy.Gateway))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const code = "K7-93xQ-5pZ"
	expires := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	system := testenv.As(ctx, "alice", auth.System)
	req := func(id, challenge, recipient, code string) *notificationv1.SendDomainValidationEmailRequest {
		return &notificationv1.SendDomainValidationEmailRequest{
			RequestId: id, Challenge: challenge, Application: "applications/a7", Domain: "example.test",
			Recipient: recipient, Code: code, ExpireTime: timestamppb.New(expires),
		}
	}
	// An address that is not the domain's constructed one never gets the
	// code.
	if _, err := client.SendDomainValidationEmail(system, req("challenges/c6/emails/1", "challenges/c6", "admin@attacker.test", "stolen")); testenv.Code(err) != codes.InvalidArgument {
		t.Fatalf("SendDomainValidationEmail(admin@attacker.test) = %v; want InvalidArgument", err)
	}
	// Customers and reviewers (the gateway's callers) cannot ask.
	for _, role := range []auth.Role{auth.Customer, auth.Reviewer} {
		if _, err := viaGateway.SendDomainValidationEmail(testenv.As(ctx, "alice", role), req("challenges/c7/emails/1", "challenges/c7", "admin@example.test", code)); testenv.Code(err) != codes.PermissionDenied {
			t.Errorf("SendDomainValidationEmail as %s = %v; want PermissionDenied", role, err)
		}
	}
	for range 2 { // a retry of the same request sends no second mail
		resp, err := client.SendDomainValidationEmail(system, req("challenges/c7/emails/1", "challenges/c7", "admin@example.test", code))
		if err != nil {
			t.Fatalf("SendDomainValidationEmail = %v", err)
		}
		if n := resp.GetNotification(); n.State != notificationv1.Notification_SENT || strings.Contains(n.Body, code) {
			t.Fatalf("SendDomainValidationEmail = %v; want SENT with the code hidden", n)
		}
	}
	msgs := srv.WaitFor(t, 1, 20*time.Second)
	p := parse(t, msgs[0])
	if p.to != "admin@example.test" || p.subject != "Confirm control of example.test" {
		t.Errorf("mail = to %q, subject %q; want to admin@example.test, \"Confirm control of example.test\"", p.to, p.subject)
	}
	for _, want := range []string{"Confirmation code: " + code, "POST /v1/challenges/c7:confirm", `{"code": "` + code + `"}`, "2026-11-22 09:00 UTC"} {
		if !strings.Contains(p.body, want) {
			t.Errorf("DCV mail body = %q; want it to contain %q", p.body, want)
		}
	}

	got := waitList(testenv.As(ctx, "alice", auth.Customer), t, client, allSent(1))
	if n := got[0]; n.Recipient != "admin@example.test" || n.Application != "applications/a7" || n.Subject != p.subject {
		t.Errorf("notification = %v; want the mail to admin@example.test about applications/a7", n)
	}
	// The account must not read the code: that would verify the domain
	// without its mailbox.
	if strings.Contains(got[0].Body, code) {
		t.Errorf("notification body = %q; want the code hidden", got[0].Body)
	}
	if n := len(srv.Messages()); n != 1 {
		t.Errorf("SMTP server received %d mails; want 1", n)
	}
}

// TestLogMailDriverRedactsCode: without an SMTP server the development
// driver logs the validation mail, with the code redacted, and no log line
// at any level carries it.
func TestLogMailDriverRedactsCode(t *testing.T) {
	var mu sync.Mutex
	var logs bytes.Buffer
	w := writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return logs.Write(p) })
	cfg := notification.Config{Now: tickingClock()}
	cfg.Log = slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
	_, client, _ := startWith(t, cfg)
	const code = "QW3R-TY7U-IO9P-ASDF-GH2J-KL4Z"
	resp, err := client.SendDomainValidationEmail(testenv.As(context.Background(), "alice", auth.System), &notificationv1.SendDomainValidationEmailRequest{
		RequestId: "challenges/c9/emails/1", Challenge: "challenges/c9", Application: "applications/a9", Domain: "example.test",
		Recipient: "postmaster@example.test", Code: code,
	})
	if err != nil || resp.GetNotification().GetState() != notificationv1.Notification_SENT {
		t.Fatalf("SendDomainValidationEmail = %v, %v; want SENT by the log driver", resp, err)
	}
	mu.Lock()
	out := logs.String()
	mu.Unlock()
	if !strings.Contains(out, "postmaster@example.test") || !strings.Contains(out, "[redacted]") {
		t.Fatalf("log = %s; want the mail logged with the code redacted", out)
	}
	if strings.Contains(out, code) || strings.Contains(out, strings.ReplaceAll(code, "-", "")) {
		t.Fatalf("log carries the DCV code: %s", out)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
