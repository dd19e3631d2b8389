package service_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	verificationv1 "github.com/certflow/certflow/gen/go/certflow/verification/v1"
	"github.com/certflow/certflow/pkg/auth"
	"github.com/certflow/certflow/pkg/devdns"
	"github.com/certflow/certflow/pkg/service"
	"github.com/certflow/certflow/pkg/testenv"
	verification "github.com/certflow/certflow/services/verification/service"
)

// mpicEnv is a primary with its own DNS server and five remote
// perspectives, each a perspective-role server with a DNS server of its
// own, so each can be made to see something else.
type mpicEnv struct {
	*env
	names []string
	dns   map[string]*devdns.Server
	stop  map[string]func()
}

var testRegions = [][2]string{
	{"us-east", "ARIN"}, {"eu-west", "RIPE"}, {"ap-southeast", "APNIC"}, {"sa-east", "LACNIC"}, {"af-south", "AFRINIC"},
}

func startDNSServer(t *testing.T) *devdns.Server {
	t.Helper()
	s, err := devdns.Start(context.Background(), devdns.Options{Addr: "127.0.0.1:0", DefaultA: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func startMPIC(t *testing.T, at time.Time) *mpicEnv {
	t.Helper()
	e := &mpicEnv{env: &env{clock: &clock{t: at}}, dns: map[string]*devdns.Server{}, stop: map[string]func(){}}
	e.env.dns = startDNSServer(t)
	e.mail = startNotification(t)
	natsURL := testenv.NATS(t)
	_, db := testenv.Database(t)
	cfg := verification.Config{
		Config:                service.Config{GRPCAddr: "127.0.0.1:0", MongoURI: testenv.MongoURI(t), Database: db, NATSURL: natsURL, NATSSeedFile: testenv.NATSSeed(t, natsURL, "verification"), PKI: testenv.PKI(t), Log: testenv.Logger(t), RelayInterval: 100 * time.Millisecond},
		DNSServers:            e.env.dns.Addr(),
		NotificationAddr:      e.mail.addr,
		ApplicationAddr:       "127.0.0.1:1", // never called: no documents here
		HTTPPort:              80,
		AllowPrivateAddresses: true,
		ChallengeLifetime:     time.Hour,
		RetryInitial:          time.Hour, // checked on demand only
		RetryMax:              time.Hour,
		SweepInterval:         time.Hour,
		PerspectiveTimeout:    2 * time.Second,
		Now:                   e.clock.Now,
	}
	var list []string
	for _, r := range testRegions {
		pdns := startDNSServer(t)
		pcfg := cfg
		pcfg.GRPCAddr, pcfg.DNSServers, pcfg.Region, pcfg.RIR = "127.0.0.1:0", pdns.Addr(), r[0], r[1]
		p, err := verification.NewPerspective(context.Background(), pcfg)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- p.Run(ctx) }()
		var once sync.Once
		stop := func() {
			once.Do(func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("perspective %s: %v", p.Name, err)
				}
			})
		}
		t.Cleanup(stop)
		e.names = append(e.names, p.Name)
		e.dns[p.Name], e.stop[p.Name] = pdns, stop
		list = append(list, p.Name+"="+p.GRPC.Addr())
	}
	cfg.Perspectives = strings.Join(list, ",")
	svc, err := verification.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Run(t, svc.Run)
	e.client = verificationv1.NewVerificationServiceClient(testenv.Dial(t, svc.GRPC.Addr()))
	return e
}

// publish puts a TXT record in the primary's DNS and in that of every
// perspective but the ones left out.
func (e *mpicEnv) publish(name, value string, leftOut ...string) {
	e.env.dns.SetTXT(name, value)
	for _, n := range e.names {
		if !contains(leftOut, n) {
			e.dns[n].SetTXT(name, value)
		}
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// check creates a DNS_TXT challenge for name, publishes it everywhere but
// leftOut, and checks it once.
func (e *mpicEnv) check(t *testing.T, ctx context.Context, application, name string, leftOut ...string) *verificationv1.Challenge {
	t.Helper()
	resp, err := create(ctx, e.env, application, verificationv1.ValidationMethod_VALIDATION_METHOD_DNS_TXT, name)
	if err != nil {
		t.Fatalf("CreateChallenges(%s) = %v", name, err)
	}
	c := resp.Challenges[0]
	e.publish(c.DnsRecordName, c.DnsRecordValue, leftOut...)
	got, err := e.client.CheckChallenge(ctx, &verificationv1.CheckChallengeRequest{Name: c.Name})
	if err != nil {
		t.Fatalf("CheckChallenge(%s) = %v", name, err)
	}
	return got
}

// disagreeing lists the perspectives of rs that do not corroborate.
func disagreeing(rs []*verificationv1.PerspectiveResult) []string {
	var out []string
	for _, r := range rs {
		if !r.Corroborates {
			out = append(out, r.Perspective)
		}
	}
	return out
}

// TestCorroboration: from 2026-12-15 five remote perspectives corroborate
// each validation and CAA decision; one may disagree (or be down), two may
// not, and the cause names them. Each challenge records what each saw.
func TestCorroboration(t *testing.T) {
	start := time.Now()
	now := time.Date(2027, time.January, 10, 12, 0, 0, 0, time.UTC)
	e := startMPIC(t, now)
	alice := testenv.As(context.Background(), "alice", auth.Customer)
	authorize := func(application, name string) (*verificationv1.AuthorizeIssuanceResponse, error) {
		return e.client.AuthorizeIssuance(alice, &verificationv1.AuthorizeIssuanceRequest{
			Application: application, Attempt: 1, Domains: []string{name}, SignTime: timestamppb.New(e.clock.Now()),
		})
	}

	// Everyone sees the proof.
	c := e.check(t, alice, "applications/all", "all.test")
	if c.State != verificationv1.Challenge_VERIFIED || len(c.Perspectives) != 5 || len(disagreeing(c.Perspectives)) != 0 {
		t.Fatalf("all see it: challenge %v, perspectives %v; want VERIFIED with 5 corroborating", c.State, c.Perspectives)
	}
	for i, p := range c.Perspectives {
		if p.Perspective != testRegions[i][0] || p.Region != testRegions[i][0] || p.Rir != testRegions[i][1] {
			t.Errorf("perspective %d = %v; want %s in %s", i, p, testRegions[i][0], testRegions[i][1])
		}
	}

	// One disagrees: still validated, and the certificate may be signed;
	// the evidence carries what each saw.
	c = e.check(t, alice, "applications/one", "one.test", "eu-west")
	if c.State != verificationv1.Challenge_VERIFIED || strings.Join(disagreeing(c.Perspectives), ",") != "eu-west" {
		t.Fatalf("one disagrees: challenge %v (%s), perspectives %v; want VERIFIED, eu-west disagreeing", c.State, c.LastError, c.Perspectives)
	}
	if d := c.Perspectives[1].Detail; !strings.Contains(d, "no TXT record") {
		t.Errorf("eu-west's detail = %q; want what it saw (no TXT record)", d)
	}
	got, err := authorize("applications/one", "one.test")
	if err != nil {
		t.Fatalf("AuthorizeIssuance(one disagreeing) = %v; want OK", err)
	}
	if len(got.Validations[0].Perspectives) != 5 || len(got.CaaPerspectives) != 5 || len(disagreeing(got.CaaPerspectives)) != 0 {
		t.Errorf("AuthorizeIssuance evidence: validation perspectives %v, CAA perspectives %v; want 5 each", got.Validations[0].Perspectives, got.CaaPerspectives)
	}

	// A reuse of that validation carries what the perspectives saw then.
	resp, err := create(alice, e.env, "applications/one-again", verificationv1.ValidationMethod_VALIDATION_METHOD_DNS_TXT, "one.test")
	if err != nil || !resp.Challenges[0].Reused || strings.Join(disagreeing(resp.Challenges[0].Perspectives), ",") != "eu-west" || len(resp.Challenges[0].Perspectives) != 5 {
		t.Fatalf("reused challenge = %v, %v; want reused with the original 5 perspectives (eu-west disagreeing)", resp, err)
	}

	// Two disagree: not validated; the cause names both.
	c = e.check(t, alice, "applications/two", "two.test", "eu-west", "ap-southeast")
	if c.State != verificationv1.Challenge_PENDING || len(c.Perspectives) != 5 ||
		!strings.Contains(c.LastError, "2 of 5 remote perspectives disagree") ||
		!strings.Contains(c.LastError, "eu-west (") || !strings.Contains(c.LastError, "ap-southeast (") {
		t.Fatalf("two disagree: challenge %v, last error %q, perspectives %v; want PENDING naming eu-west and ap-southeast", c.State, c.LastError, c.Perspectives)
	}
	if _, err := authorize("applications/two", "two.test"); dcvReason(err) != "VALIDATION_MISSING" {
		t.Errorf("AuthorizeIssuance(two disagreeing) = %v; want VALIDATION_MISSING", err)
	}

	// CAA at signing: one perspective seeing a forbidding CAA set is
	// outvoted, two are not.
	e.check(t, alice, "applications/caa", "caa.test")
	e.dns["sa-east"].SetCAA("caa.test", devdns.CAA{Tag: "issue", Value: "other-ca.example"})
	if got, err := authorize("applications/caa", "caa.test"); err != nil || strings.Join(disagreeing(got.GetCaaPerspectives()), ",") != "sa-east" {
		t.Fatalf("AuthorizeIssuance(CAA, one forbids) = %v, %v; want OK with sa-east disagreeing", got, err)
	}
	e.dns["af-south"].SetCAA("caa.test", devdns.CAA{Tag: "issue", Value: "other-ca.example"})
	_, err = authorize("applications/caa", "caa.test")
	if testenv.Code(err) != codes.FailedPrecondition || dcvReason(err) != "NOT_CORROBORATED" ||
		!strings.Contains(err.Error(), "sa-east (CAA at caa.test") || !strings.Contains(err.Error(), "af-south (") {
		t.Fatalf("AuthorizeIssuance(CAA, two forbid) = %v; want NOT_CORROBORATED naming sa-east and af-south", err)
	}

	// A perspective that is down counts as disagreeing: alone it is
	// outvoted, with another disagreeing it is not.
	e.stop["us-east"]()
	c = e.check(t, alice, "applications/down", "down.test")
	if c.State != verificationv1.Challenge_VERIFIED || strings.Join(disagreeing(c.Perspectives), ",") != "us-east" ||
		!strings.HasPrefix(c.Perspectives[0].Detail, "unreachable: ") || strings.Contains(c.Perspectives[0].Detail, "127.0.0.1") {
		t.Fatalf("one down: challenge %v (%s), perspectives %v; want VERIFIED with us-east unreachable (without its address)", c.State, c.LastError, c.Perspectives)
	}
	c = e.check(t, alice, "applications/downtwo", "downtwo.test", "eu-west")
	if c.State != verificationv1.Challenge_PENDING || !strings.Contains(c.LastError, "us-east (unreachable: ") || !strings.Contains(c.LastError, "eu-west (") {
		t.Fatalf("one down, one disagreeing: challenge %v, last error %q; want PENDING naming us-east and eu-west", c.State, c.LastError)
	}
	t.Logf("corroboration test took %v", time.Since(start).Round(time.Millisecond))
}

// TestPrimaryNeedsTheQuorum: a primary configured with fewer perspectives
// than the quorum in force does not start.
func TestPrimaryNeedsTheQuorum(t *testing.T) {
	_, err := verification.New(context.Background(), verification.Config{
		Config:     service.Config{GRPCAddr: "127.0.0.1:0", MongoURI: "mongodb://127.0.0.1:1/", PKI: testenv.PKI(t)},
		DNSServers: "127.0.0.1:53", NotificationAddr: "127.0.0.1:1", ApplicationAddr: "127.0.0.1:1", HTTPPort: 80,
		ChallengeLifetime: time.Hour, RetryInitial: time.Second, RetryMax: time.Second, SweepInterval: time.Second,
		Perspectives: "us-east=127.0.0.1:1,eu-west=127.0.0.1:2",
		Now:          func() time.Time { return time.Date(2026, time.December, 15, 0, 0, 0, 0, time.UTC) },
	})
	if err == nil || !strings.Contains(err.Error(), "2 remote perspective(s) configured") || !strings.Contains(err.Error(), "require 5") {
		t.Fatalf("New with 2 perspectives on 2026-12-15 = %v; want a refusal naming the quorum of 5", err)
	}
	for _, bad := range []string{"us-east", "us-east=127.0.0.1:1,us-east=127.0.0.1:2", "US East=127.0.0.1:1"} {
		_, err := verification.New(context.Background(), verification.Config{
			Config: service.Config{GRPCAddr: "127.0.0.1:0", PKI: testenv.PKI(t)}, DNSServers: "127.0.0.1:53", NotificationAddr: "127.0.0.1:1", ApplicationAddr: "127.0.0.1:1",
			ChallengeLifetime: time.Hour, RetryInitial: time.Second, RetryMax: time.Second, SweepInterval: time.Second, Perspectives: bad,
		})
		if err == nil || !strings.Contains(err.Error(), "perspective") {
			t.Errorf("New(-perspectives %q) = %v; want a refusal", bad, err)
		}
	}
	for _, cfg := range [][2]string{{"", "ARIN"}, {"us-east", "IANA"}, {"US_EAST", "ARIN"}} {
		if _, err := verification.NewPerspective(context.Background(), verification.Config{
			Config: service.Config{GRPCAddr: "127.0.0.1:0", PKI: testenv.PKI(t)}, DNSServers: "127.0.0.1:53", Region: cfg[0], RIR: cfg[1],
		}); err == nil {
			t.Errorf("NewPerspective(region %q, RIR %q) = nil error; want a refusal", cfg[0], cfg[1])
		}
	}
}
