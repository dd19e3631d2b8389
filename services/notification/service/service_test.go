package service_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"mime"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/certflow/certflow/gen/go/certflow/events/v1"
	notificationv1 "github.com/certflow/certflow/gen/go/certflow/notification/v1"
	"github.com/certflow/certflow/pkg/auth"
	"github.com/certflow/certflow/pkg/events"
	"github.com/certflow/certflow/pkg/service"
	"github.com/certflow/certflow/pkg/smtptest"
	"github.com/certflow/certflow/pkg/testenv"
	notification "github.com/certflow/certflow/services/notification/service"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// tickingClock returns a clock that moves one second per reading, so
// "newest first" is well defined however fast the events are handled.
func tickingClock() func() time.Time {
	var mu sync.Mutex
	t := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t = t.Add(time.Second)
		return t
	}
}

func start(t *testing.T, smtpAddr string) (notificationv1.NotificationServiceClient, *events.Conn) {
	t.Helper()
	_, client, conn := startWith(t, notification.Config{SMTPAddr: smtpAddr, Now: tickingClock()})
	return client, conn
}

// testWebhookKEK seals the webhook secrets of the tests.
var testWebhookKEK = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 32))

// startWith runs a service with cfg's own settings on fresh infrastructure.
func startWith(t *testing.T, cfg notification.Config) (*notification.Service, notificationv1.NotificationServiceClient, *events.Conn) {
	t.Helper()
	_, db := testenv.Database(t)
	return startOn(t, db, cfg)
}

// startOn is startWith on the database named db, which the test may have
// filled first.
func startOn(t *testing.T, db string, cfg notification.Config) (*notification.Service, notificationv1.NotificationServiceClient, *events.Conn) {
	t.Helper()
	return startReplica(t, db, testenv.NATS(t), cfg)
}

// startReplica is startOn with the NATS server at natsURL, which another
// replica of the service may use too.
func startReplica(t *testing.T, db, natsURL string, cfg notification.Config) (*notification.Service, notificationv1.NotificationServiceClient, *events.Conn) {
	t.Helper()
	svc := newReplica(t, db, natsURL, cfg)
	testenv.Run(t, svc.Run)
	return svc, notificationv1.NewNotificationServiceClient(testenv.Dial(t, svc.GRPC.Addr())), testenv.Conn(t, natsURL)
}

// newReplica makes the service as startReplica does, not running yet.
func newReplica(t *testing.T, db, natsURL string, cfg notification.Config) *notification.Service {
	t.Helper()
	log := cfg.Log
	if log == nil {
		log = testenv.Logger(t)
	}
	cfg.Config = service.Config{
		Tally:    cfg.Tally,
		GRPCAddr: "127.0.0.1:0", MongoURI: testenv.MongoURI(t), Database: db, NATSURL: natsURL, NATSSeedFile: testenv.NATSSeed(t, natsURL, "notification"), PKI: testenv.PKI(t), Log: log,
	}
	cfg.RetryDelay = 100 * time.Millisecond
	if cfg.WebhookKEK == "" && cfg.WebhookKEKFile == "" {
		cfg.WebhookKEK = testWebhookKEK
	}
	svc, err := notification.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

func publish(ctx context.Context, t *testing.T, conn *events.Conn, typ, subject string, msg proto.Message) events.Event {
	t.Helper()
	ev, err := events.Stamp(typ, "//certflow/test", subject, time.Now(), msg)
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.Publish(ctx, ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

// parsed is a received mail's headers and body.
type parsed struct {
	to, subject, body string
}

func parse(t *testing.T, m smtptest.Message) parsed {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
	if err != nil {
		t.Fatalf("received mail does not parse: %v\n%s", err, m.Data)
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		t.Fatalf("Subject %q: %v", msg.Header.Get("Subject"), err)
	}
	body, err := io.ReadAll(msg.Body)
	if err != nil {
		t.Fatal(err)
	}
	return parsed{to: strings.Join(m.To, ","), subject: subject, body: string(body)}
}

// listAll pages through an account's notifications, two at a time.
func listAll(ctx context.Context, t *testing.T, client notificationv1.NotificationServiceClient, filter string) []*notificationv1.Notification {
	t.Helper()
	var all []*notificationv1.Notification
	req := &notificationv1.ListNotificationsRequest{PageSize: 2, Filter: filter}
	for {
		resp, err := client.ListNotifications(ctx, req)
		if err != nil {
			t.Fatalf("ListNotifications(%q) = %v", filter, err)
		}
		all = append(all, resp.Notifications...)
		if resp.NextPageToken == "" {
			return all
		}
		req.PageToken = resp.NextPageToken
	}
}

// waitList polls ListNotifications until done accepts the list: a
// notification is recorded SENT just after its mail is accepted.
func waitList(ctx context.Context, t *testing.T, client notificationv1.NotificationServiceClient, done func([]*notificationv1.Notification) bool) []*notificationv1.Notification {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := listAll(ctx, t, client, "")
		if done(got) {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("ListNotifications = %v; still not as expected after 10s", got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func allSent(n int) func([]*notificationv1.Notification) bool {
	return func(ns []*notificationv1.Notification) bool {
		if len(ns) != n {
			return false
		}
		for _, x := range ns {
			if x.State != notificationv1.Notification_SENT {
				return false
			}
		}
		return true
	}
}

func TestApplicationLifecycleEmails(t *testing.T) {
	srv := smtptest.Start(t)
	client, conn := start(t, srv.Addr())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const (
		app   = "applications/a1"
		email = "alice@example.com"
		txt   = "Zx9-TXT_value-6b1f0c"
		file  = "http-content-5d2e7a"
	)
	now := time.Now()

	submitted := publish(ctx, t, conn, events.ApplicationSubmitted, app, &eventsv1.ApplicationSubmitted{
		Account: "alice", Application: app, Instance: "instances/o1-1", Attempt: 1,
		Domains: []string{"example.com", "www.example.com"}, ValidationLevel: "DV", ApplicantEmail: email,
		Challenges: []*eventsv1.ChallengeInstructions{
			{Challenge: "challenges/c1", Domain: "example.com", Method: "DNS_TXT",
				DnsRecordName: "_dnsauth.example.com", DnsRecordType: "TXT", DnsRecordValue: txt},
			{Challenge: "challenges/c2", Domain: "www.example.com", Method: "HTTP_FILE",
				HttpUrl: "http://www.example.com/.well-known/pki-validation/fileauth.txt", HttpContent: file},
		},
		ExpectedIssueTime: timestamppb.New(now.Add(2 * time.Hour)),
	})
	publish(ctx, t, conn, events.DomainVerified, "challenges/c1", &eventsv1.DomainVerified{
		Account: "alice", Challenge: "challenges/c1", Application: app, Attempt: 1, Domain: "example.com", Method: "DNS_TXT",
		VerifyTime: timestamppb.New(now),
	})
	publish(ctx, t, conn, events.ApplicationFailed, app, &eventsv1.ApplicationFailed{
		Account: "alice", Application: app, Attempt: 1, FromState: "PENDING_DOMAIN_VERIFICATION",
		Cause: "CAA record forbids this CA", ApplicantEmail: email,
	})
	publish(ctx, t, conn, events.ApplicationIssued, app, &eventsv1.ApplicationIssued{
		Account: "alice", Application: app, Attempt: 2, Certificate: "certificates/cert1",
		Domains: []string{"example.com", "www.example.com"}, ApplicantEmail: email,
	})

	wantSubjects := []string{
		"Verify your domains for " + app,
		"Domain example.com verified",
		"Application " + app + " failed: CAA record forbids this CA",
		"Your certificate for example.com, www.example.com is issued",
	}
	msgs := srv.WaitFor(t, len(wantSubjects), 20*time.Second)
	if len(msgs) != len(wantSubjects) {
		t.Fatalf("SMTP server received %d mails; want %d", len(msgs), len(wantSubjects))
	}
	for i, m := range msgs {
		p := parse(t, m)
		if p.to != email || p.subject != wantSubjects[i] {
			t.Errorf("mail %d = to %q, subject %q; want to %q, subject %q", i+1, p.to, p.subject, email, wantSubjects[i])
		}
		if m.From != "no-reply@certflow.test" {
			t.Errorf("mail %d envelope sender = %q; want no-reply@certflow.test", i+1, m.From)
		}
	}
	first := parse(t, msgs[0])
	for _, want := range []string{"_dnsauth.example.com", "TXT", txt, file, "within 2 hours"} {
		if !strings.Contains(first.body, want) {
			t.Errorf("submitted mail body = %q; want it to contain %q", first.body, want)
		}
	}
	if last := parse(t, msgs[3]); !strings.Contains(last.body, "GET /v1/certificates/cert1:download") {
		t.Errorf("issued mail body = %q; want the download call", last.body)
	}

	// A redelivered event sends nothing: publish the same event again (the
	// stream drops it by Nats-Msg-Id) and once more without the header, as
	// a relay republishing after the duplicate window would, so it reaches
	// the consumer. A later event's mail proves both were handled.
	if err := conn.Publish(ctx, submitted); err != nil {
		t.Fatal(err)
	}
	raw := events.ToMsg(submitted)
	raw.Header.Del(jetstream.MsgIDHeader)
	if _, err := conn.JS.PublishMsg(ctx, raw); err != nil {
		t.Fatal(err)
	}
	publish(ctx, t, conn, events.DomainVerified, "challenges/c2", &eventsv1.DomainVerified{
		Account: "alice", Challenge: "challenges/c2", Application: app, Attempt: 1, Domain: "www.example.com", Method: "HTTP_FILE",
	})
	msgs = srv.WaitFor(t, 5, 20*time.Second)
	if len(msgs) != 5 {
		t.Fatalf("SMTP server received %d mails after a duplicate event; want 5", len(msgs))
	}
	if p := parse(t, msgs[4]); p.subject != "Domain www.example.com verified" {
		t.Fatalf("mail 5 subject = %q; want the later event's, not a duplicate", p.subject)
	}

	// The account sees what was sent, newest first; another account does not.
	alice := testenv.As(ctx, "alice", auth.Customer)
	bob := testenv.As(ctx, "bob", auth.Customer)
	got := waitList(alice, t, client, allSent(5))
	if got[0].Subject != "Domain www.example.com verified" || got[4].Subject != wantSubjects[0] {
		t.Errorf("ListNotifications subjects = %q … %q; want newest first", got[0].Subject, got[4].Subject)
	}
	for _, n := range got {
		if n.Recipient != email || n.Application != app || n.Channel != notificationv1.Channel_CHANNEL_EMAIL || n.EventId == "" || n.CreateTime == nil {
			t.Errorf("notification %s = %v; want an email to %s about %s", n.Name, n, email, app)
		}
	}
	if got[4].EventId != submitted.ID || got[4].EventType != events.ApplicationSubmitted || !strings.Contains(got[4].Body, txt) {
		t.Errorf("oldest notification = %v; want the submitted event %s with the TXT value", got[4], submitted.ID)
	}
	if n := len(listAll(alice, t, client, `application = "`+app+`"`)); n != 5 {
		t.Errorf("ListNotifications(application = %s) = %d; want 5", app, n)
	}
	if n := len(listAll(alice, t, client, `application = "applications/other"`)); n != 0 {
		t.Errorf("ListNotifications(application = applications/other) = %d; want 0", n)
	}
	for _, f := range []string{`state = SENT`, `application = "a1"`, `application = `} {
		if _, err := client.ListNotifications(alice, &notificationv1.ListNotificationsRequest{Filter: f}); testenv.Code(err) != codes.InvalidArgument {
			t.Errorf("ListNotifications(filter %q) = %v; want InvalidArgument", f, err)
		}
	}
	if n := len(listAll(bob, t, client, "")); n != 0 {
		t.Errorf("ListNotifications as another account = %d; want 0", n)
	}
	if one, err := client.GetNotification(alice, &notificationv1.GetNotificationRequest{Name: got[0].Name}); err != nil || one.Subject != got[0].Subject {
		t.Errorf("GetNotification(%s) = %v, %v; want %q", got[0].Name, one, err, got[0].Subject)
	}
	if _, err := client.GetNotification(bob, &notificationv1.GetNotificationRequest{Name: got[0].Name}); testenv.Code(err) != codes.NotFound {
		t.Errorf("GetNotification by another account = %v; want NotFound", err)
	}
	if _, err := client.GetNotification(alice, &notificationv1.GetNotificationRequest{Name: "bogus"}); testenv.Code(err) != codes.InvalidArgument {
		t.Errorf("GetNotification(bogus) = %v; want InvalidArgument", err)
	}
	if _, err := client.ListNotifications(ctx, &notificationv1.ListNotificationsRequest{}); testenv.Code(err) != codes.Unauthenticated {
		t.Errorf("ListNotifications without account = %v; want Unauthenticated", err)
	}
}

func TestDomainVerifiedBeforeApplication(t *testing.T) {
	srv := smtptest.Start(t)
	_, conn := start(t, srv.Addr())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const app = "applications/a2"
	// The verification service's event overtakes the application's own.
	publish(ctx, t, conn, events.DomainVerified, "challenges/c9", &eventsv1.DomainVerified{
		Account: "alice", Challenge: "challenges/c9", Application: app, Attempt: 1, Domain: "example.org", Method: "DNS_TXT",
	})
	publish(ctx, t, conn, events.ApplicationSubmitted, app, &eventsv1.ApplicationSubmitted{
		Account: "alice", Application: app, Attempt: 1, Domains: []string{"example.org"}, ValidationLevel: "DV",
		ApplicantEmail: "carol@example.org",
		Challenges: []*eventsv1.ChallengeInstructions{{Domain: "example.org", Method: "DNS_TXT",
			DnsRecordName: "_dnsauth.example.org", DnsRecordType: "TXT", DnsRecordValue: "v-123"}},
	})
	msgs := srv.WaitFor(t, 2, 20*time.Second)
	want := map[string]bool{"Verify your domains for " + app: true, "Domain example.org verified": true}
	for _, m := range msgs {
		p := parse(t, m)
		if !want[p.subject] || p.to != "carol@example.org" {
			t.Errorf("mail = to %q, subject %q; want one of %v to carol@example.org", p.to, p.subject, want)
		}
		delete(want, p.subject)
	}
	if len(msgs) != 2 || len(want) != 0 {
		t.Errorf("received %d mails, missing %v; want both", len(msgs), want)
	}
}

func TestRefusedMailIsRecordedFailed(t *testing.T) {
	srv := smtptest.Start(t)
	srv.RejectRecipient("gone@example.com")
	client, conn := start(t, srv.Addr())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	publish(ctx, t, conn, events.ApplicationFailed, "applications/a3", &eventsv1.ApplicationFailed{
		Account: "alice", Application: "applications/a3", Cause: "DNS record not found", ApplicantEmail: "gone@example.com",
	})
	got := waitList(testenv.As(ctx, "alice", auth.Customer), t, client, func(ns []*notificationv1.Notification) bool {
		return len(ns) == 1 && ns[0].State == notificationv1.Notification_FAILED
	})
	if got[0].Error == "" || got[0].Recipient != "gone@example.com" {
		t.Errorf("notification = %v; want FAILED with the server's refusal", got[0])
	}
	if n := len(srv.Messages()); n != 0 {
		t.Errorf("SMTP server accepted %d mails; want 0", n)
	}
}

func TestDevelopmentDriverRecordsSent(t *testing.T) {
	client, conn := start(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	publish(ctx, t, conn, events.ApplicationIssued, "applications/a4", &eventsv1.ApplicationIssued{
		Account: "alice", Application: "applications/a4", Certificate: "certificates/c4",
		Domains: []string{"example.net"}, ApplicantEmail: "dave@example.net",
	})
	waitList(testenv.As(ctx, "alice", auth.Customer), t, client, allSent(1))
}

func TestNewRejectsBadSender(t *testing.T) {
	_, err := notification.New(context.Background(), notification.Config{From: "not an address"})
	if err == nil {
		t.Fatal("New(From: not an address) = nil error; want one")
	}
}
