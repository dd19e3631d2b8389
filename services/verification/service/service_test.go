package service_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/certflow/certflow/gen/go/certflow/events/v1"
	verificationv1 "github.com/certflow/certflow/gen/go/certflow/verification/v1"
	"github.com/certflow/certflow/pkg/auth"
	"github.com/certflow/certflow/pkg/devdns"
	"github.com/certflow/certflow/pkg/events"
	"github.com/certflow/certflow/pkg/service"
	"github.com/certflow/certflow/pkg/tally"
	"github.com/certflow/certflow/pkg/testenv"
	verification "github.com/certflow/certflow/services/verification/service"
)

func TestMain(m *testing.M) { testenv.Main(m) }

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

type env struct {
	client verificationv1.VerificationServiceClient
	// reviews is the same server's review service.
	reviews verificationv1.ReviewServiceClient
	mail    *fakeNotification
	dns     *devdns.Server
	files   sync.Map // path -> content
	conn    *events.Conn
	clock   *clock
	// tally counts the service's database commands; single is whether its
	// database is FerretDB (one writer).
	tally  *tally.Counters
	single bool
}

func start(t *testing.T) *env {
	t.Helper()
	e := &env{clock: &clock{t: time.Now()}, tally: &tally.Counters{}}
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
		Config:                service.Config{GRPCAddr: "127.0.0.1:0", MongoURI: testenv.MongoURI(t), Database: db, NATSURL: natsURL, NATSSeedFile: testenv.NATSSeed(t, natsURL, "verification"), PKI: testenv.PKI(t), Log: testenv.Logger(t), RelayInterval: 100 * time.Millisecond, Tally: e.tally},
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
	e.single = svc.SingleWriter()
	testenv.Run(t, svc.Run)
	e.client = verificationv1.NewVerificationServiceClient(testenv.Dial(t, svc.GRPC.Addr()))
	e.reviews = verificationv1.NewReviewServiceClient(testenv.Dial(t, svc.GRPC.Addr()))
	e.conn = testenv.Conn(t, natsURL)
	return e
}

func (e *env) waitState(t *testing.T, ctx context.Context, name string, want verificationv1.Challenge_State) *verificationv1.Challenge {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := e.client.GetChallenge(ctx, &verificationv1.GetChallengeRequest{Name: name})
		if err != nil {
			t.Fatal(err)
		}
		if c.State == want {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("challenge %s is %v (last error %q); want %v", name, c.State, c.LastError, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestDNSAndHTTPChallenges(t *testing.T) {
	e := start(t)
	ctx := testenv.As(context.Background(), "alice", auth.Customer)

	dnsResp, err := e.client.CreateChallenges(ctx, &verificationv1.CreateChallengesRequest{
		Application: "applications/a1", Attempt: 1, Domains: []string{"example.test", "*.example.test"},
		Method: verificationv1.ValidationMethod_VALIDATION_METHOD_DNS_TXT,
	})
	if err != nil {
		t.Fatal(err)
	}
	again, err := e.client.CreateChallenges(ctx, &verificationv1.CreateChallengesRequest{
		Application: "applications/a1", Attempt: 1, Domains: []string{"example.test", "*.example.test"},
		Method: verificationv1.ValidationMethod_VALIDATION_METHOD_DNS_TXT,
	})
	if err != nil || again.Challenges[0].Name != dnsResp.Challenges[0].Name || again.Challenges[0].DnsRecordValue != dnsResp.Challenges[0].DnsRecordValue {
		t.Fatalf("CreateChallenges retry = %v, %v; want the same challenges %v", again, err, dnsResp)
	}
	c0, c1 := dnsResp.Challenges[0], dnsResp.Challenges[1]
	if c0.DnsRecordName != "_certflow-challenge.example.test" || c1.DnsRecordName != c0.DnsRecordName || c0.DnsRecordType != "TXT" {
		t.Fatalf("record names = %q, %q; want both _certflow-challenge.example.test", c0.DnsRecordName, c1.DnsRecordName)
	}

	// Nothing published yet: check now leaves it pending with a reason.
	got, err := e.client.CheckChallenge(ctx, &verificationv1.CheckChallengeRequest{Name: c0.Name})
	if err != nil || got.State != verificationv1.Challenge_PENDING || got.LastError == "" {
		t.Fatalf("CheckChallenge before publishing = %v (%q), %v; want PENDING with an error", got.GetState(), got.GetLastError(), err)
	}
	// Both names share one record owner: both values go in one TXT set.
	e.dns.SetTXT(c0.DnsRecordName, c0.DnsRecordValue, c1.DnsRecordValue)
	got, err = e.client.CheckChallenge(ctx, &verificationv1.CheckChallengeRequest{Name: c0.Name})
	if err != nil || got.State != verificationv1.Challenge_VERIFIED {
		t.Fatalf("CheckChallenge after publishing = %v, %v; want VERIFIED", got.GetState(), err)
	}
	// The test clock stands still: a worker check that ran before the record
	// existed parked c1 until clock+retry, so move the clock past it.
	e.clock.Advance(time.Second)
	e.waitState(t, ctx, c1.Name, verificationv1.Challenge_VERIFIED) // by the worker

	httpResp, err := e.client.CreateChallenges(ctx, &verificationv1.CreateChallengesRequest{
		Application: "applications/a2", Attempt: 1, Domains: []string{"www.example.test"},
		Method: verificationv1.ValidationMethod_VALIDATION_METHOD_HTTP_FILE,
	})
	if err != nil {
		t.Fatal(err)
	}
	h := httpResp.Challenges[0]
	u, _ := parsePath(h.HttpUrl)
	e.files.Store(u, h.HttpContent)
	e.clock.Advance(time.Second) // as above
	e.waitState(t, ctx, h.Name, verificationv1.Challenge_VERIFIED)

	// Verified events reach JetStream, one per challenge.
	seen := map[string]int{}
	deadline := time.Now().Add(10 * time.Second)
	sub, _ := e.conn.NC.SubscribeSync(events.DomainVerified)
	defer sub.Unsubscribe()
	stream, _ := e.conn.JS.Stream(context.Background(), events.Stream)
	for len(seen) < 3 && time.Now().Before(deadline) {
		info, _ := stream.Info(context.Background())
		seen = map[string]int{}
		for seq := uint64(1); seq <= info.State.LastSeq; seq++ {
			m, err := stream.GetMsg(context.Background(), seq)
			if err != nil || m.Subject != events.DomainVerified {
				continue
			}
			var ev eventsv1.DomainVerified
			if err := proto.Unmarshal(m.Data, &ev); err != nil {
				t.Fatal(err)
			}
			seen[ev.Challenge]++
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, name := range []string{c0.Name, c1.Name, h.Name} {
		if seen[name] != 1 {
			t.Errorf("DomainVerified events for %s = %d; want 1", name, seen[name])
		}
	}

	bob := testenv.As(context.Background(), "bob", auth.Customer)
	if _, err := e.client.GetChallenge(bob, &verificationv1.GetChallengeRequest{Name: h.Name}); testenv.Code(err) != codes.NotFound {
		t.Fatalf("GetChallenge by another account = %v; want NotFound", err)
	}
	list, err := e.client.ListChallenges(ctx, &verificationv1.ListChallengesRequest{Filter: `application = "applications/a1"`})
	if err != nil || len(list.Challenges) != 2 {
		t.Fatalf("ListChallenges(a1) = %d, %v; want 2", len(list.GetChallenges()), err)
	}
}

func TestChallengeExpiresAndCancel(t *testing.T) {
	e := start(t)
	ctx := testenv.As(context.Background(), "alice", auth.Customer)
	resp, err := e.client.CreateChallenges(ctx, &verificationv1.CreateChallengesRequest{
		Application: "applications/x", Attempt: 1, Domains: []string{"never.example.test"},
		Method: verificationv1.ValidationMethod_VALIDATION_METHOD_DNS_TXT,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(2 * time.Hour)
	failed := e.waitState(t, ctx, resp.Challenges[0].Name, verificationv1.Challenge_FAILED)
	if failed.LastError == "" {
		t.Fatalf("failed challenge has no cause")
	}
	if _, err := e.client.CheckChallenge(ctx, &verificationv1.CheckChallengeRequest{Name: failed.Name}); testenv.Code(err) != codes.FailedPrecondition {
		t.Fatalf("CheckChallenge of a failed challenge = %v; want FailedPrecondition", err)
	}

	if _, err := e.client.CreateChallenges(ctx, &verificationv1.CreateChallengesRequest{
		Application: "applications/y", Attempt: 1, Domains: []string{"y.example.test"},
		Method: verificationv1.ValidationMethod_VALIDATION_METHOD_DNS_TXT,
	}); err != nil {
		t.Fatal(err)
	}
	cancelled, err := e.client.CancelChallenges(ctx, &verificationv1.CancelChallengesRequest{Application: "applications/y"})
	if err != nil || len(cancelled.Challenges) != 1 || cancelled.Challenges[0].State != verificationv1.Challenge_CANCELLED {
		t.Fatalf("CancelChallenges = %v, %v; want one CANCELLED", cancelled, err)
	}

	if _, err := e.client.CreateChallenges(ctx, &verificationv1.CreateChallengesRequest{
		Application: "applications/z", Attempt: 1, Domains: []string{"*.example.test"},
		Method: verificationv1.ValidationMethod_VALIDATION_METHOD_HTTP_FILE,
	}); testenv.Code(err) != codes.InvalidArgument {
		t.Fatalf("HTTP challenge for a wildcard = %v; want InvalidArgument", err)
	}
}

// On FerretDB the worker finds what is due in memory: with challenges
// stored but none pending, its sweeps (every 50ms here) read nothing. (By
// the query, each sweep was a find reading the whole collection.)
func TestIdleSweepReadsNothingOnSingleWriter(t *testing.T) {
	e := start(t)
	if !e.single {
		t.Skip("MongoDB: the sweep is one indexed query")
	}
	ctx := testenv.As(context.Background(), "alice", auth.Customer)
	for _, app := range []string{"applications/i1", "applications/i2"} {
		if _, err := e.client.CreateChallenges(ctx, &verificationv1.CreateChallengesRequest{
			Application: app, Attempt: 1, Domains: []string{"idle.example.test"},
			Method: verificationv1.ValidationMethod_VALIDATION_METHOD_DNS_TXT,
		}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.client.CancelChallenges(ctx, &verificationv1.CancelChallengesRequest{Application: app}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(time.Second) // the relay publishes the events
	before := e.tally.Snapshot()
	time.Sleep(time.Second)
	// The relay's periodic sweep (every 60 intervals of 100ms, of two
	// collections) may fall in the window; the worker's 20 sweeps may not.
	if finds := e.tally.Snapshot()["db verification find"] - before["db verification find"]; finds > 2 {
		t.Errorf("%d finds in 1s of idle sweeps every 50ms; want none but the relay's", finds)
	}
}

func parsePath(u string) (string, error) {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return "", err
	}
	return req.URL.Path, nil
}

// newVerification starts the remote perspectives cfg needs (on cfg's
// resolvers) and then the primary.
func newVerification(t *testing.T, cfg verification.Config) (*verification.Service, error) {
	t.Helper()
	if cfg.ApplicationAddr == "" {
		cfg.ApplicationAddr = startApplications(t).addr
	}
	ps, err := verification.StartLocal(context.Background(), &cfg)
	if err != nil {
		return nil, err
	}
	for _, p := range ps {
		testenv.Run(t, p.Run)
	}
	return verification.New(context.Background(), cfg)
}
