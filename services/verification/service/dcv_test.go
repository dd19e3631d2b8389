package service_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/certflow/certflow/gen/go/certflow/events/v1"
	verificationv1 "github.com/certflow/certflow/gen/go/certflow/verification/v1"
	"github.com/certflow/certflow/pkg/auth"
	"github.com/certflow/certflow/pkg/devdns"
	"github.com/certflow/certflow/pkg/events"
	"github.com/certflow/certflow/pkg/service"
	"github.com/certflow/certflow/pkg/testenv"
	verification "github.com/certflow/certflow/services/verification/service"
)

// late2026 is when these tests run by the service's clock: EMAIL is allowed
// with a warning, and validations are reusable for 200 days.
var late2026 = time.Date(2026, time.November, 21, 12, 0, 0, 0, time.UTC)

// startDCV is start with the service clock set to at (and the default CNAME
// zone and CAA identity).
func startDCV(t *testing.T, at time.Time) *env {
	t.Helper()
	e := &env{clock: &clock{t: at}}
	var err error
	e.dns, err = devdns.Start(context.Background(), devdns.Options{Addr: "127.0.0.1:0", DefaultA: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.dns.Close() })
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if v, ok := e.files.Load(r.URL.Path); ok {
			_, _ = w.Write([]byte(v.(string)))
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(web.Close)
	_, portStr, _ := net.SplitHostPort(web.Listener.Addr().String())
	port, _ := strconv.Atoi(portStr)

	e.mail = startNotification(t)
	natsURL := testenv.NATS(t)
	_, db := testenv.Database(t)
	svc, err := newVerification(t, verification.Config{
		Config:                service.Config{GRPCAddr: "127.0.0.1:0", MongoURI: testenv.MongoURI(t), Database: db, NATSURL: natsURL, NATSSeedFile: testenv.NATSSeed(t, natsURL, "verification"), PKI: testenv.PKI(t), Log: testenv.Logger(t), RelayInterval: 100 * time.Millisecond},
		DNSServers:            e.dns.Addr(),
		NotificationAddr:      e.mail.addr,
		HTTPPort:              port,
		AllowPrivateAddresses: true,
		ChallengeLifetime:     time.Hour,
		RetryInitial:          50 * time.Millisecond,
		RetryMax:              200 * time.Millisecond,
		SweepInterval:         50 * time.Millisecond,
		Now:                   e.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Run(t, svc.Run)
	e.client = verificationv1.NewVerificationServiceClient(testenv.Dial(t, svc.GRPC.Addr()))
	e.reviews = verificationv1.NewReviewServiceClient(testenv.Dial(t, svc.GRPC.Addr()))
	e.conn = testenv.Conn(t, natsURL)
	return e
}

// dcvReason is the ErrorInfo reason of a gRPC error.
func dcvReason(err error) string {
	st, _ := status.FromError(err)
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.Reason
		}
	}
	return ""
}

// dcvEvents polls the CERTFLOW stream until done(messages on subject) is
// true, and fails the test after a deadline.
func dcvEvents(t *testing.T, e *env, subject string, done func(msgs [][]byte) bool) [][]byte {
	t.Helper()
	ctx := context.Background()
	stream, err := e.conn.JS.Stream(ctx, events.Stream)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := stream.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var msgs [][]byte
		for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
			m, err := stream.GetMsg(ctx, seq)
			if err == nil && m.Subject == subject {
				msgs = append(msgs, m.Data)
			}
		}
		if done(msgs) {
			return msgs
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d %s events in the stream; did not get the ones expected", len(msgs), subject)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// emailEvents returns the DomainEmailChallenge events of a challenge once
// there is at least one.
func emailEvents(t *testing.T, e *env, challenge string) []*eventsv1.DomainEmailChallenge {
	t.Helper()
	var out []*eventsv1.DomainEmailChallenge
	dcvEvents(t, e, events.DomainEmailChallenge, func(msgs [][]byte) bool {
		out = nil
		for _, m := range msgs {
			var ev eventsv1.DomainEmailChallenge
			if err := proto.Unmarshal(m, &ev); err != nil {
				t.Fatal(err)
			}
			if ev.Challenge == challenge {
				out = append(out, &ev)
			}
		}
		return len(out) > 0
	})
	return out
}

// verifiedEvent waits for the DomainVerified event of a challenge.
func verifiedEvent(t *testing.T, e *env, challenge string) *eventsv1.DomainVerified {
	t.Helper()
	var got *eventsv1.DomainVerified
	dcvEvents(t, e, events.DomainVerified, func(msgs [][]byte) bool {
		for _, m := range msgs {
			var ev eventsv1.DomainVerified
			if err := proto.Unmarshal(m, &ev); err != nil {
				t.Fatal(err)
			}
			if ev.Challenge == challenge {
				got = &ev
				return true
			}
		}
		return false
	})
	return got
}

func create(ctx context.Context, e *env, application string, m verificationv1.ValidationMethod, names ...string) (*verificationv1.CreateChallengesResponse, error) {
	return e.client.CreateChallenges(ctx, &verificationv1.CreateChallengesRequest{
		Application: application, Attempt: 1, Domains: names, Method: m,
	})
}

func TestCNAMEChallenge(t *testing.T) {
	e := startDCV(t, late2026)
	ctx := testenv.As(context.Background(), "alice", auth.Customer)
	resp, err := create(ctx, e, "applications/c1", verificationv1.ValidationMethod_VALIDATION_METHOD_DNS_CNAME, "cname.example.test", "*.cname.example.test")
	if err != nil {
		t.Fatal(err)
	}
	c0, c1 := resp.Challenges[0], resp.Challenges[1]
	if c0.Method != verificationv1.ValidationMethod_VALIDATION_METHOD_DNS_CNAME || c0.DnsRecordType != "CNAME" ||
		c0.DnsRecordName != "_certflow-challenge.cname.example.test" || !strings.HasSuffix(c0.DnsRecordValue, ".dcv.certflow.test") || c0.RuleVersion == "" {
		t.Fatalf("CNAME challenge = %v; want a CNAME at _certflow-challenge.cname.example.test to <label>.dcv.certflow.test with a rule version", c0)
	}
	// A name and its wildcard share the record owner, and a name has one
	// CNAME: both get the same target.
	if c1.DnsRecordName != c0.DnsRecordName || c1.DnsRecordValue != c0.DnsRecordValue {
		t.Fatalf("wildcard CNAME = %s -> %s; want the same as %s -> %s", c1.DnsRecordName, c1.DnsRecordValue, c0.DnsRecordName, c0.DnsRecordValue)
	}
	again, err := create(ctx, e, "applications/c1", verificationv1.ValidationMethod_VALIDATION_METHOD_DNS_CNAME, "*.cname.example.test", "cname.example.test")
	if err != nil || again.Challenges[0].Name != c1.Name || again.Challenges[0].DnsRecordValue != c1.DnsRecordValue {
		t.Fatalf("CreateChallenges retry = %v, %v; want the same challenges", again, err)
	}

	got, err := e.client.CheckChallenge(ctx, &verificationv1.CheckChallengeRequest{Name: c0.Name})
	if err != nil || got.State != verificationv1.Challenge_PENDING || !strings.Contains(got.LastError, c0.DnsRecordValue) {
		t.Fatalf("CheckChallenge before the CNAME = %v (%q), %v; want PENDING naming the target", got.GetState(), got.GetLastError(), err)
	}
	e.dns.SetCNAME(c0.DnsRecordName, c0.DnsRecordValue+".")
	got, err = e.client.CheckChallenge(ctx, &verificationv1.CheckChallengeRequest{Name: c0.Name})
	if err != nil || got.State != verificationv1.Challenge_VERIFIED {
		t.Fatalf("CheckChallenge after the CNAME = %v (%q), %v; want VERIFIED", got.GetState(), got.GetLastError(), err)
	}
	e.clock.Advance(time.Second)                                    // past a retry parked before the record existed
	e.waitState(t, ctx, c1.Name, verificationv1.Challenge_VERIFIED) // by the worker
	if ev := verifiedEvent(t, e, c1.Name); ev.Method != "DNS_CNAME" || ev.RuleVersion == "" || ev.Reused {
		t.Fatalf("DomainVerified = %v; want method DNS_CNAME, a rule version, not reused", ev)
	}
}

func TestEmailChallenge(t *testing.T) {
	e := startDCV(t, late2026)
	ctx := testenv.As(context.Background(), "alice", auth.Customer)
	bob := testenv.As(context.Background(), "bob", auth.Customer)
	req := &verificationv1.CreateChallengesRequest{
		Application: "applications/m1", Attempt: 1, Domains: []string{"www.mail.test", "*.mail.test"},
		Method: verificationv1.ValidationMethod_VALIDATION_METHOD_EMAIL, EmailLocalPart: "hostmaster",
	}
	resp, err := e.client.CreateChallenges(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	c, wild := resp.Challenges[0], resp.Challenges[1]
	if c.EmailAddress != "hostmaster@www.mail.test" || wild.EmailAddress != "hostmaster@mail.test" || c.Warning == "" || c.DnsRecordValue != "" || c.HttpContent != "" {
		t.Fatalf("EMAIL challenges = %v, %v; want hostmaster@www.mail.test and hostmaster@mail.test with a warning and nothing to publish", c, wild)
	}
	// A retry returns the same challenges and sends no second email.
	again, err := e.client.CreateChallenges(ctx, req)
	if err != nil || again.Challenges[0].Name != c.Name {
		t.Fatalf("CreateChallenges retry = %v, %v; want the same challenges", again, err)
	}

	mails := e.mail.mails(c.Name)
	if len(mails) != 1 {
		t.Fatalf("validation emails for %s = %d; want 1 (a retry sends no second code)", c.Name, len(mails))
	}
	m := mails[0]
	code := m.GetCode()
	if m.Recipient != "hostmaster@www.mail.test" || m.Domain != "www.mail.test" || m.Application != "applications/m1" || len(code) < 23 ||
		m.ExpireTime.AsTime() != c.ExpireTime.AsTime() || m.RequestId != c.Name+"/emails/1" {
		t.Fatalf("validation email = %v; want one to hostmaster@www.mail.test with a code, the expire time and request id %s/emails/1", m, c.Name)
	}
	// The call is made as the system acting for the account.
	e.mail.mu.Lock()
	caller := e.mail.calls[0]
	e.mail.mu.Unlock()
	if caller != (auth.Principal{Account: "alice", Role: auth.System}) {
		t.Errorf("SendDomainValidationEmail caller = %+v; want alice as system", caller)
	}
	// The stream announces the mail without the code.
	sent := emailEvents(t, e, c.Name)
	if len(sent) != 1 || sent[0].Recipient != "hostmaster@www.mail.test" || sent[0].ExpireTime.AsTime() != c.ExpireTime.AsTime() {
		t.Fatalf("DomainEmailChallenge events = %v; want one to hostmaster@www.mail.test with the expire time", sent)
	}
	if raw, _ := proto.Marshal(sent[0]); strings.Contains(string(raw), code) {
		t.Fatalf("DomainEmailChallenge event carries the code")
	}
	if _, err := e.client.CheckChallenge(ctx, &verificationv1.CheckChallengeRequest{Name: c.Name}); testenv.Code(err) != codes.FailedPrecondition {
		t.Fatalf("CheckChallenge(EMAIL) = %v; want FailedPrecondition (confirm with the code)", err)
	}

	confirm := func(ctx context.Context, name, code string) (*verificationv1.Challenge, error) {
		return e.client.ConfirmChallenge(ctx, &verificationv1.ConfirmChallengeRequest{Name: name, Code: code})
	}
	if _, err := confirm(ctx, c.Name, "AAAA-AAAA-AAAA-AAAA-AAAA-AAAA"); testenv.Code(err) != codes.InvalidArgument || dcvReason(err) != "CODE_MISMATCH" {
		t.Fatalf("ConfirmChallenge(wrong code) = %v; want InvalidArgument CODE_MISMATCH", err)
	}
	if _, err := confirm(bob, c.Name, code); testenv.Code(err) != codes.NotFound {
		t.Fatalf("ConfirmChallenge by another account = %v; want NotFound", err)
	}
	got, err := confirm(ctx, c.Name, code)
	if err != nil || got.State != verificationv1.Challenge_VERIFIED || got.Method != verificationv1.ValidationMethod_VALIDATION_METHOD_EMAIL {
		t.Fatalf("ConfirmChallenge(right code) = %v, %v; want VERIFIED", got, err)
	}
	if _, err := confirm(ctx, c.Name, code); testenv.Code(err) != codes.FailedPrecondition || !strings.Contains(status.Convert(err).Message(), "already used") {
		t.Fatalf("ConfirmChallenge(same code again) = %v; want FailedPrecondition: already used", err)
	}
	if ev := verifiedEvent(t, e, c.Name); ev.Method != "EMAIL" || ev.Reused {
		t.Fatalf("DomainVerified = %v; want method EMAIL, not reused", ev)
	}
	if n := len(emailEvents(t, e, c.Name)); n != 1 {
		t.Fatalf("DomainEmailChallenge events for %s = %d; want 1 (a retry sends no second code)", c.Name, n)
	}

	// Guessing: the fifth wrong code fails the challenge.
	wcode := e.mail.code(t, wild.Name)
	for i := 1; i <= 5; i++ {
		if _, err := confirm(ctx, wild.Name, "wrong"); testenv.Code(err) != codes.InvalidArgument {
			t.Fatalf("ConfirmChallenge(wrong) #%d = %v; want InvalidArgument", i, err)
		}
	}
	if _, err := confirm(ctx, wild.Name, wcode); testenv.Code(err) != codes.FailedPrecondition {
		t.Fatalf("ConfirmChallenge(right code) after 5 wrong = %v; want FailedPrecondition", err)
	}
	if got, _ := e.client.GetChallenge(ctx, &verificationv1.GetChallengeRequest{Name: wild.Name}); got.GetState() != verificationv1.Challenge_FAILED || got.GetLastError() == "" {
		t.Fatalf("after 5 wrong codes = %v (%q); want FAILED with a cause", got.GetState(), got.GetLastError())
	}

	if _, err := e.client.CreateChallenges(ctx, &verificationv1.CreateChallengesRequest{
		Application: "applications/m2", Attempt: 1, Domains: []string{"x.mail.test"},
		Method: verificationv1.ValidationMethod_VALIDATION_METHOD_EMAIL, EmailLocalPart: "root",
	}); testenv.Code(err) != codes.InvalidArgument {
		t.Fatalf("CreateChallenges(EMAIL, root@) = %v; want InvalidArgument", err)
	}

	// The worker does not poll an EMAIL challenge, but fails it at expiry.
	late, err := create(ctx, e, "applications/m3", verificationv1.ValidationMethod_VALIDATION_METHOD_EMAIL, "late.mail.test")
	if err != nil {
		t.Fatal(err)
	}
	lateCode := e.mail.code(t, late.Challenges[0].Name)
	e.clock.Advance(2 * time.Hour)
	failed := e.waitState(t, ctx, late.Challenges[0].Name, verificationv1.Challenge_FAILED)
	if failed.CheckCount != 0 || !strings.Contains(failed.LastError, "admin@late.mail.test") {
		t.Fatalf("expired EMAIL challenge = %d checks, %q; want none and a cause naming admin@late.mail.test", failed.CheckCount, failed.LastError)
	}
	if _, err := confirm(ctx, failed.Name, lateCode); testenv.Code(err) != codes.FailedPrecondition {
		t.Fatalf("ConfirmChallenge after expiry = %v; want FailedPrecondition", err)
	}
}

// TestEmailNotSentIsRetriedWithNewCode: when the notification service
// cannot take the mail, CreateChallenges fails and its retry sends a new
// code under a new request id; the code that never went out does not
// confirm.
func TestEmailNotSentIsRetriedWithNewCode(t *testing.T) {
	e := startDCV(t, late2026)
	ctx := testenv.As(context.Background(), "alice", auth.Customer)
	req := &verificationv1.CreateChallengesRequest{
		Application: "applications/n1", Attempt: 1, Domains: []string{"down.mail.test"},
		Method: verificationv1.ValidationMethod_VALIDATION_METHOD_EMAIL,
	}
	e.mail.failNext(1)
	if _, err := e.client.CreateChallenges(ctx, req); testenv.Code(err) != codes.Unavailable || dcvReason(err) != "EMAIL_NOT_SENT" {
		t.Fatalf("CreateChallenges with the mail refused = %v; want Unavailable EMAIL_NOT_SENT", err)
	}
	resp, err := e.client.CreateChallenges(ctx, req)
	if err != nil {
		t.Fatalf("CreateChallenges retry = %v", err)
	}
	c := resp.Challenges[0]
	mails := e.mail.mails(c.Name)
	if len(mails) != 1 || mails[0].RequestId != c.Name+"/emails/2" {
		t.Fatalf("mails after the retry = %v; want one, request %s/emails/2", mails, c.Name)
	}
	// A further retry, the mail accepted, sends nothing.
	if _, err := e.client.CreateChallenges(ctx, req); err != nil || len(e.mail.mails(c.Name)) != 1 {
		t.Fatalf("CreateChallenges after the mail went out = %v, %d mails; want no second mail", err, len(e.mail.mails(c.Name)))
	}
	got, err := e.client.ConfirmChallenge(ctx, &verificationv1.ConfirmChallengeRequest{Name: c.Name, Code: mails[0].Code})
	if err != nil || got.State != verificationv1.Challenge_VERIFIED {
		t.Fatalf("ConfirmChallenge(the mailed code) = %v, %v; want VERIFIED", got, err)
	}
}

func TestEmailRefusedFrom2028(t *testing.T) {
	e := startDCV(t, time.Date(2028, time.March, 15, 0, 0, 0, 0, time.UTC))
	ctx := testenv.As(context.Background(), "alice", auth.Customer)
	_, err := create(ctx, e, "applications/e1", verificationv1.ValidationMethod_VALIDATION_METHOD_EMAIL, "example.test")
	msg := status.Convert(err).Message()
	if testenv.Code(err) != codes.FailedPrecondition || dcvReason(err) != "METHOD_NOT_ALLOWED" || !strings.Contains(msg, "2028-03-15") || !strings.Contains(msg, "DNS_TXT") {
		t.Fatalf("CreateChallenges(EMAIL) on 2028-03-15 = %v; want FailedPrecondition METHOD_NOT_ALLOWED naming the date and DNS_TXT", err)
	}
	if _, err := create(ctx, e, "applications/e1", verificationv1.ValidationMethod_VALIDATION_METHOD_DNS_TXT, "example.test"); err != nil {
		t.Fatalf("CreateChallenges(DNS_TXT) on 2028-03-15 = %v; want it allowed", err)
	}
}

func TestReuseOfValidation(t *testing.T) {
	e := startDCV(t, late2026)
	alice := testenv.As(context.Background(), "alice", auth.Customer)
	bob := testenv.As(context.Background(), "bob", auth.Customer)
	txt := verificationv1.ValidationMethod_VALIDATION_METHOD_DNS_TXT
	httpFile := verificationv1.ValidationMethod_VALIDATION_METHOD_HTTP_FILE

	// Alice validates reuse.test and *.dns.test by DNS, shop.test by HTTP.
	first, err := create(alice, e, "applications/r1", txt, "reuse.test", "*.dns.test")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range first.Challenges {
		e.dns.SetTXT(c.DnsRecordName, c.DnsRecordValue)
		if got, err := e.client.CheckChallenge(alice, &verificationv1.CheckChallengeRequest{Name: c.Name}); err != nil || got.State != verificationv1.Challenge_VERIFIED {
			t.Fatalf("CheckChallenge(%s) = %v, %v; want VERIFIED", c.Domain, got.GetState(), err)
		}
	}
	orig, _ := e.client.GetChallenge(alice, &verificationv1.GetChallengeRequest{Name: first.Challenges[0].Name})
	shop, err := create(alice, e, "applications/r1", httpFile, "shop.test")
	if err != nil {
		t.Fatal(err)
	}
	u, _ := parsePath(shop.Challenges[0].HttpUrl)
	e.files.Store(u, shop.Challenges[0].HttpContent)
	if got, err := e.client.CheckChallenge(alice, &verificationv1.CheckChallengeRequest{Name: shop.Challenges[0].Name}); err != nil || got.State != verificationv1.Challenge_VERIFIED {
		t.Fatalf("CheckChallenge(shop.test) = %v, %v; want VERIFIED", got.GetState(), err)
	}

	e.clock.Advance(24 * time.Hour)
	second, err := create(alice, e, "applications/r2", httpFile, "reuse.test", "shop.test")
	if err != nil {
		t.Fatal(err)
	}
	r := second.Challenges[0]
	if r.State != verificationv1.Challenge_VERIFIED || !r.Reused || r.Method != txt || r.RuleVersion != orig.RuleVersion ||
		!r.ValidationTime.AsTime().Equal(orig.VerifyTime.AsTime()) || r.HttpUrl != "" {
		t.Fatalf("second application's challenge = %v; want VERIFIED at once, reused, DNS_TXT, rule version %q, validation time %v",
			r, orig.RuleVersion, orig.VerifyTime.AsTime())
	}
	if second.Challenges[1].State != verificationv1.Challenge_VERIFIED || second.Challenges[1].Method != httpFile {
		t.Fatalf("reuse of an HTTP validation for the same name = %v; want VERIFIED by HTTP_FILE", second.Challenges[1])
	}
	ev := verifiedEvent(t, e, r.Name)
	if !ev.Reused || ev.Method != "DNS_TXT" || ev.Application != "applications/r2" || !ev.VerifyTime.AsTime().Equal(orig.VerifyTime.AsTime()) {
		t.Fatalf("DomainVerified of the reused challenge = %v; want reused, DNS_TXT, the original verify time", ev)
	}

	// Another account validates for itself.
	other, err := create(bob, e, "applications/b1", txt, "reuse.test")
	if err != nil || other.Challenges[0].State != verificationv1.Challenge_PENDING || other.Challenges[0].Reused {
		t.Fatalf("another account's challenge = %v, %v; want PENDING, not reused", other, err)
	}

	// A wildcard reuses a DNS validation of itself, never an HTTP one.
	wild, err := create(alice, e, "applications/r3", txt, "*.dns.test", "*.shop.test")
	if err != nil {
		t.Fatal(err)
	}
	if w := wild.Challenges[0]; w.State != verificationv1.Challenge_VERIFIED || !w.Reused {
		t.Fatalf("*.dns.test after its DNS validation = %v; want VERIFIED, reused", w)
	}
	if w := wild.Challenges[1]; w.State != verificationv1.Challenge_PENDING || w.Reused {
		t.Fatalf("*.shop.test after an HTTP validation of shop.test = %v; want PENDING, not reused", w)
	}

	// Past the reuse period (200 days in late 2026), the name is validated again.
	e.clock.Advance(200 * 24 * time.Hour)
	late, err := create(alice, e, "applications/r4", txt, "reuse.test")
	if err != nil || late.Challenges[0].State != verificationv1.Challenge_PENDING {
		t.Fatalf("challenge 201 days after validation = %v, %v; want PENDING", late, err)
	}
}

func TestEmailValidationDoesNotCoverWildcard(t *testing.T) {
	e := startDCV(t, late2026)
	ctx := testenv.As(context.Background(), "alice", auth.Customer)
	first, err := create(ctx, e, "applications/w1", verificationv1.ValidationMethod_VALIDATION_METHOD_EMAIL, "*.wmail.test")
	if err != nil {
		t.Fatal(err)
	}
	code := e.mail.code(t, first.Challenges[0].Name)
	if _, err := e.client.ConfirmChallenge(ctx, &verificationv1.ConfirmChallengeRequest{Name: first.Challenges[0].Name, Code: code}); err != nil {
		t.Fatal(err)
	}
	again, err := create(ctx, e, "applications/w2", verificationv1.ValidationMethod_VALIDATION_METHOD_DNS_TXT, "*.wmail.test")
	if err != nil || again.Challenges[0].State != verificationv1.Challenge_PENDING || again.Challenges[0].Reused {
		t.Fatalf("wildcard after an EMAIL validation = %v, %v; want PENDING, not reused", again, err)
	}
}

func TestCheckCaa(t *testing.T) {
	e := startDCV(t, late2026)
	e.dns.SetCAA("ok.test", devdns.CAA{Tag: "issue", Value: "certflow.test"})
	e.dns.SetCAA("other.test", devdns.CAA{Tag: "issue", Value: "other-ca.example"})
	e.dns.SetCAA("wild.test", devdns.CAA{Tag: "issue", Value: "certflow.test"}, devdns.CAA{Tag: "issuewild", Value: ";"})
	e.dns.FailWith("broken.test", dns.RcodeServerFailure)
	ctx := context.Background() // internal: no account needed

	tests := []struct {
		names        []string
		allowed      bool
		lookupFailed bool
		domain       string
		reason       string
	}{
		{[]string{"www.ok.test", "*.ok.test", "free.test"}, true, false, "", ""},
		{[]string{"www.ok.test", "www.other.test"}, false, false, "www.other.test",
			`CAA at other.test: 0 issue "other-ca.example" does not authorize certflow.test; add 0 issue "certflow.test" or remove it`},
		{[]string{"wild.test", "*.wild.test"}, false, false, "*.wild.test", `0 issuewild ";"`},
		{[]string{"WWW.Broken.Test."}, false, true, "www.broken.test", "never permission"},
	}
	for _, tt := range tests {
		got, err := e.client.CheckCaa(ctx, &verificationv1.CheckCaaRequest{Domains: tt.names})
		if err != nil || got.Allowed != tt.allowed || got.LookupFailed != tt.lookupFailed || got.Domain != tt.domain || !strings.Contains(got.Reason, tt.reason) {
			t.Errorf("CheckCaa(%q) = %v, %v; want allowed %v, lookup failed %v, domain %q, reason with %q",
				tt.names, got, err, tt.allowed, tt.lookupFailed, tt.domain, tt.reason)
		}
	}
	if _, err := e.client.CheckCaa(ctx, &verificationv1.CheckCaaRequest{Domains: []string{"bad name"}}); testenv.Code(err) != codes.InvalidArgument {
		t.Errorf("CheckCaa(bad name) = %v; want InvalidArgument", err)
	}
}

// TestProofAfterExpiryRefused: a proof that shows up only after its
// challenge expired verifies nothing, whether CheckChallenge or the sweep
// finds it; the challenge expires instead.
func TestProofAfterExpiryRefused(t *testing.T) {
	e := startDCV(t, late2026)
	ctx := testenv.As(context.Background(), "alice", auth.Customer)
	dnsResp, err := create(ctx, e, "applications/x1", verificationv1.ValidationMethod_VALIDATION_METHOD_DNS_TXT, "late.test", "swept.test")
	if err != nil {
		t.Fatal(err)
	}
	web, err := create(ctx, e, "applications/x2", verificationv1.ValidationMethod_VALIDATION_METHOD_HTTP_FILE, "late-web.test")
	if err != nil {
		t.Fatal(err)
	}
	all := append(dnsResp.Challenges, web.Challenges...)
	// The sweep looks once while nothing is published; the test clock
	// stands still, so it does not look again until the clock moves.
	for _, c := range all {
		deadline := time.Now().Add(10 * time.Second)
		for {
			got, err := e.client.GetChallenge(ctx, &verificationv1.GetChallengeRequest{Name: c.Name})
			if err != nil {
				t.Fatal(err)
			}
			if got.CheckCount > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("challenge %s never checked by the sweep", c.Name)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// The proofs are published, then the challenges expire (lifetime 1h).
	for _, c := range dnsResp.Challenges {
		e.dns.SetTXT(c.DnsRecordName, c.DnsRecordValue)
	}
	u, _ := parsePath(web.Challenges[0].HttpUrl)
	e.files.Store(u, web.Challenges[0].HttpContent)
	e.clock.Advance(time.Hour + time.Second)

	for _, c := range []*verificationv1.Challenge{dnsResp.Challenges[0], web.Challenges[0]} {
		got, err := e.client.CheckChallenge(ctx, &verificationv1.CheckChallengeRequest{Name: c.Name})
		// The sweep may get there first: then the challenge is no longer pending.
		if r := dcvReason(err); testenv.Code(err) != codes.FailedPrecondition || (r != "CHALLENGE_EXPIRED" && r != "CHALLENGE_NOT_PENDING") {
			t.Errorf("CheckChallenge(%s) after expiry with the proof published = %v, %v; want FailedPrecondition CHALLENGE_EXPIRED", c.Domain, got.GetState(), err)
		}
	}
	for _, c := range all {
		failed := e.waitState(t, ctx, c.Name, verificationv1.Challenge_FAILED)
		if failed.VerifyTime != nil || !strings.Contains(failed.LastError, "expired") {
			t.Errorf("challenge %s after expiry = verified at %v, %q; want never verified, a cause saying it expired", c.Domain, failed.VerifyTime, failed.LastError)
		}
	}
	failedEvs := dcvEvents(t, e, events.DomainFailed, func(msgs [][]byte) bool { return len(msgs) >= len(all) })
	if len(failedEvs) != len(all) {
		t.Errorf("DomainValidationFailed events = %d; want %d", len(failedEvs), len(all))
	}
	dcvEvents(t, e, events.DomainVerified, func(msgs [][]byte) bool {
		if len(msgs) != 0 {
			t.Fatalf("%d DomainVerified events for expired challenges; want none", len(msgs))
		}
		return true
	})
}
