package app_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	applicationv1 "github.com/certflow/certflow/gen/go/certflow/application/v1"
	issuancev1 "github.com/certflow/certflow/gen/go/certflow/issuance/v1"
	orderv1 "github.com/certflow/certflow/gen/go/certflow/order/v1"
	verificationv1 "github.com/certflow/certflow/gen/go/certflow/verification/v1"
	"github.com/certflow/certflow/pkg/auth"
	"github.com/certflow/certflow/pkg/devdns"
	"github.com/certflow/certflow/pkg/service"
	"github.com/certflow/certflow/pkg/testenv"
	"github.com/certflow/certflow/services/application/internal/app"
	"github.com/certflow/certflow/services/application/internal/domain"
	application "github.com/certflow/certflow/services/application/service"
	issuance "github.com/certflow/certflow/services/issuance/service"
	notification "github.com/certflow/certflow/services/notification/service"
	order "github.com/certflow/certflow/services/order/service"
	verification "github.com/certflow/certflow/services/verification/service"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// stack is the application service with the real order, verification and
// issuance services behind it, over real gRPC, on embedded FerretDB and
// NATS.
type stack struct {
	apps   applicationv1.ApplicationServiceClient
	orders orderv1.OrderServiceClient
	checks verificationv1.VerificationServiceClient
	certs  issuancev1.IssuanceServiceClient
	dns    *devdns.Server
}

func startStack(t *testing.T) *stack {
	t.Helper()
	natsURL := testenv.NATS(t)
	mongoURI := testenv.MongoURI(t)
	ctx := context.Background()
	base := func(name string) service.Config {
		_, db := testenv.Database(t)
		return service.Config{GRPCAddr: "127.0.0.1:0", MongoURI: mongoURI, Database: db, NATSURL: natsURL,
			NATSSeedFile: testenv.NATSSeed(t, natsURL, name), PKI: testenv.PKI(t), Log: testenv.Logger(t)}
	}
	key := func() string {
		k := make([]byte, 32)
		_, _ = rand.Read(k)
		return base64.StdEncoding.EncodeToString(k)
	}
	s := &stack{}
	var err error
	s.dns, err = devdns.Start(ctx, devdns.Options{Addr: "127.0.0.1:0", DefaultA: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.dns.Close() })
	ord, err := order.New(ctx, order.Config{Config: base("order")})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Run(t, ord.Run)
	not, err := notification.New(ctx, notification.Config{Config: base("notification"), WebhookKEK: key()})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Run(t, not.Run)
	// The application's listener first: verification asks it about documents.
	appLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	vcfg := verification.Config{
		Config: base("verification"), NotificationAddr: not.GRPC.Addr(), ApplicationAddr: appLis.Addr().String(), DNSServers: s.dns.Addr(), HTTPPort: 80, AllowPrivateAddresses: true,
		ChallengeLifetime: time.Hour, RetryInitial: time.Hour, RetryMax: time.Hour, SweepInterval: time.Hour,
	}
	perspectives, err := verification.StartLocal(ctx, &vcfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range perspectives {
		testenv.Run(t, p.Run)
	}
	ver, err := verification.New(ctx, vcfg)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Run(t, ver.Run)
	iss, err := issuance.New(ctx, issuance.Config{Config: base("issuance"), CADir: t.TempDir(), KEK: key(), CAKEK: key(), VerificationAddr: ver.GRPC.Addr(), HTTPAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Run(t, iss.Run)
	acfg := base("application")
	acfg.GRPCListener = appLis
	ap, err := application.New(ctx, application.Config{
		Config: acfg, OrderAddr: ord.GRPC.Addr(), VerificationAddr: ver.GRPC.Addr(), IssuanceAddr: iss.GRPC.Addr(),
		RetryDelay: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Run(t, ap.Run)
	s.apps = applicationv1.NewApplicationServiceClient(testenv.Dial(t, ap.GRPC.Addr()))
	s.orders = orderv1.NewOrderServiceClient(testenv.Dial(t, ord.GRPC.Addr()))
	s.checks = verificationv1.NewVerificationServiceClient(testenv.Dial(t, ver.GRPC.Addr()))
	s.certs = issuancev1.NewIssuanceServiceClient(testenv.Dial(t, iss.GRPC.Addr()))
	return s
}

// op is one request of a race and how it ended.
type op struct {
	kind  string // "submit A", "edit A", "withdraw A", "submit B"
	app   string // "A" or "B"
	code  codes.Code
	err   error
	names []string // edit: the new names
}

// model is what one serial order of the successful requests makes of the
// two applications sharing one instance.
type model struct {
	state      map[string]applicationv1.Application_State
	names      map[string][]string
	challenged map[string][]string
	attempt    map[string]int
	owner      string // the application the instance is bound to
}

func live(s applicationv1.Application_State) bool {
	return s != applicationv1.Application_DRAFT && s != applicationv1.Application_WITHDRAWN && s != applicationv1.Application_VALIDATION_FAILED
}

// apply runs o on m and reports whether o is allowed there.
func (m *model) apply(o op) bool {
	st := m.state[o.app]
	switch o.kind[:strings.IndexByte(o.kind, ' ')] {
	case "submit":
		if live(st) || (m.owner != "" && m.owner != o.app) {
			return false
		}
		m.state[o.app], m.owner = applicationv1.Application_PENDING_DOMAIN_VERIFICATION, o.app
		m.attempt[o.app]++
		m.challenged[o.app] = m.names[o.app]
	case "edit":
		if live(st) {
			return false
		}
		m.names[o.app] = o.names
	case "withdraw":
		if st == applicationv1.Application_WITHDRAWN {
			return false
		}
		m.state[o.app] = applicationv1.Application_WITHDRAWN
		if m.owner == o.app {
			m.owner = ""
		}
	}
	return true
}

// serializable reports whether some order of the successful requests,
// each allowed where it comes, leaves what got says.
func serializable(start model, ok []op, got model) bool {
	var perm func(rest []op, m model) bool
	perm = func(rest []op, m model) bool {
		if len(rest) == 0 {
			return m.equal(got)
		}
		for i, o := range rest {
			next := m.clone()
			if !next.apply(o) {
				continue
			}
			others := append(append([]op{}, rest[:i]...), rest[i+1:]...)
			if perm(others, next) {
				return true
			}
		}
		return false
	}
	return perm(ok, start)
}

func (m model) clone() model {
	c := model{state: map[string]applicationv1.Application_State{}, names: map[string][]string{}, challenged: map[string][]string{}, attempt: map[string]int{}, owner: m.owner}
	for k, v := range m.state {
		c.state[k] = v
	}
	for k, v := range m.names {
		c.names[k] = v
	}
	for k, v := range m.challenged {
		c.challenged[k] = v
	}
	for k, v := range m.attempt {
		c.attempt[k] = v
	}
	return c
}

func (m model) equal(o model) bool {
	for _, a := range []string{"A", "B"} {
		if m.state[a] != o.state[a] || !slices.Equal(m.names[a], o.names[a]) || m.attempt[a] != o.attempt[a] ||
			(m.attempt[a] > 0 && !slices.Equal(m.challenged[a], o.challenged[a])) {
			return false
		}
	}
	return m.owner == o.owner
}

func (m model) String() string {
	return fmt.Sprintf("A %v %v attempt %d challenged %v; B %v %v attempt %d challenged %v; instance bound to %q",
		m.state["A"], m.names["A"], m.attempt["A"], m.challenged["A"], m.state["B"], m.names["B"], m.attempt["B"], m.challenged["B"], m.owner)
}

// TestRaceSubmitEditWithdraw races, hundreds of times, two submits, an edit
// of the names and a withdrawal of one application, and a submit of a
// second application on the same instance, with the window between the
// reads and writes of each request widened by a test hook. Each run must
// end as some serial order of the requests that succeeded would: the
// challenged names are the names at the submit that won, the instance is
// bound to at most one live application (and to the live one), pending
// challenges belong only to a live attempt and name exactly its names,
// flagged review words are those of its names, and the history holds one
// step per successful submit and withdrawal. A few of the runs whose
// application is live are then proven and issued: the certificate names
// exactly the application's names, each with a verified challenge of its
// own.
func TestRaceSubmitEditWithdraw(t *testing.T) {
	// About 50 s on two cores that other work keeps busy (load 7), much less
	// on idle ones.
	if testing.Short() {
		t.Skip("races real services; skipped with -short")
	}
	const runs = 200
	// Each batch of runs gets a fresh stack: FerretDB's SQLite backend
	// scans a collection for most queries, so a run costs in proportion to
	// what earlier runs stored.
	const batch = 10
	app.SetTestHook(func(point string) {
		time.Sleep(time.Duration(mrand.IntN(3000)) * time.Microsecond)
	})
	t.Cleanup(func() { app.SetTestHook(nil) })
	ctx, cancel := context.WithTimeout(testenv.As(context.Background(), "alice", auth.Customer), 5*time.Minute)
	defer cancel()

	started := time.Now()
	outcomes := map[string]int{}
	issued := 0
	for b := 0; b < runs; b += batch {
		if !t.Run(fmt.Sprintf("runs%03d-%03d", b, b+batch-1), func(t *testing.T) {
			s := startStack(t)
			for r := b; r < min(b+batch, runs); r++ {
				raceOnce(t, ctx, s, r, outcomes, &issued)
			}
		}) {
			break
		}
	}
	t.Logf("%d runs in %v; outcomes (successful requests): %v", runs, time.Since(started).Round(time.Millisecond), outcomes)
	if issued == 0 {
		t.Errorf("no run ended with a live application without flagged words to issue")
	}
}

// raceOnce is run r of TestRaceSubmitEditWithdraw.
func raceOnce(t *testing.T, ctx context.Context, s *stack, r int, outcomes map[string]int, issued *int) {
	t.Helper()
	o, err := s.orders.CreateOrder(ctx, &orderv1.CreateOrderRequest{Order: &orderv1.Order{Product: "products/dv-multi-1y", Quantity: 1, DomainCount: 2}})
	if err != nil {
		t.Fatal(err)
	}
	instance := o.Instances[0]
	first := map[string][]string{
		"A": {fmt.Sprintf("a%d.race.test", r), fmt.Sprintf("www.a%d.race.test", r)},
		"B": {fmt.Sprintf("b%d.race.test", r)},
	}
	edited := []string{fmt.Sprintf("c%d.race.test", r), fmt.Sprintf("pay%d.race.test", r)}
	names := map[string]string{}
	for _, a := range []string{"A", "B"} {
		created, err := s.apps.CreateApplication(ctx, &applicationv1.CreateApplicationRequest{Application: &applicationv1.Application{
			Instance: instance, Domains: first[a], ValidationMethod: verificationv1.ValidationMethod_VALIDATION_METHOD_DNS_TXT,
			Applicant: &applicationv1.Applicant{Name: "Han Meimei", Phone: "+86 10 1234 5678", Email: "han@example.test"},
		}})
		if err != nil {
			t.Fatal(err)
		}
		names[a] = created.Name
	}

	ops := []op{{kind: "submit A", app: "A"}, {kind: "submit A", app: "A"}, {kind: "edit A", app: "A", names: edited}, {kind: "withdraw A", app: "A"}, {kind: "submit B", app: "B"}}
	mrand.Shuffle(len(ops), func(i, j int) { ops[i], ops[j] = ops[j], ops[i] })
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for i := range ops {
		wg.Go(func() {
			<-gate
			time.Sleep(time.Duration(mrand.IntN(1500)) * time.Microsecond)
			o := &ops[i]
			n := names[o.app]
			switch o.kind {
			case "submit A", "submit B":
				_, o.err = s.apps.SubmitApplication(ctx, &applicationv1.SubmitApplicationRequest{Name: n})
			case "edit A":
				_, o.err = s.apps.UpdateApplication(ctx, &applicationv1.UpdateApplicationRequest{
					Application: &applicationv1.Application{Name: n, Domains: o.names}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"domains"}},
				})
			case "withdraw A":
				_, o.err = s.apps.WithdrawApplication(ctx, &applicationv1.WithdrawApplicationRequest{Name: n})
			}
			o.code = testenv.Code(o.err)
		})
	}
	close(gate)
	wg.Wait()

	var ok []op
	for _, o := range ops {
		switch o.code {
		case codes.OK:
			ok = append(ok, o)
		case codes.Aborted, codes.FailedPrecondition:
		default:
			t.Fatalf("run %d: %s = %v; want OK, Aborted (retry) or FailedPrecondition", r, o.kind, o.err)
		}
	}

	got := model{state: map[string]applicationv1.Application_State{}, names: map[string][]string{}, challenged: map[string][]string{}, attempt: map[string]int{}}
	recs := map[string]*applicationv1.Application{}
	for _, a := range []string{"A", "B"} {
		rec, err := s.apps.GetApplication(ctx, &applicationv1.GetApplicationRequest{Name: names[a]})
		if err != nil {
			t.Fatal(err)
		}
		recs[a] = rec
		got.state[a], got.names[a], got.attempt[a] = rec.State, rec.Domains, int(rec.Attempt)
		for _, c := range rec.Challenges {
			got.challenged[a] = append(got.challenged[a], c.Domain)
		}
		checkHistory(t, r, a, rec, ops)
		// Pending challenges: only a live attempt's, for exactly its names.
		pending, err := s.checks.ListChallenges(ctx, &verificationv1.ListChallengesRequest{Filter: `application = "` + names[a] + `" AND state = PENDING`, PageSize: 100})
		if err != nil {
			t.Fatal(err)
		}
		var pendingNames []string
		for _, c := range pending.Challenges {
			if int(c.Attempt) != int(rec.Attempt) || !live(rec.State) {
				t.Errorf("run %d: application %s is %v at attempt %d, yet challenge %s of attempt %d for %s is PENDING",
					r, a, rec.State, rec.Attempt, c.Name, c.Attempt, c.Domain)
			}
			pendingNames = append(pendingNames, c.Domain)
		}
		if live(rec.State) {
			slices.Sort(pendingNames)
			if want := slices.Sorted(slices.Values(rec.Domains)); !slices.Equal(pendingNames, want) {
				t.Errorf("run %d: live application %s names %v; its pending challenges are for %v", r, a, rec.Domains, pendingNames)
			}
			if want := domain.FlaggedWords(rec.Domains, domain.DefaultReviewWords); !slices.Equal(rec.FlaggedWords, want) {
				t.Errorf("run %d: application %s names %v, flagged words %v; want %v", r, a, rec.Domains, rec.FlaggedWords, want)
			}
		}
	}
	in, err := s.orders.GetInstance(ctx, &orderv1.GetInstanceRequest{Name: instance})
	if err != nil {
		t.Fatal(err)
	}
	switch in.State {
	case orderv1.Instance_APPLYING:
		for a, n := range names {
			if n == in.Application {
				got.owner = a
			}
		}
	case orderv1.Instance_PENDING_APPLICATION:
	default:
		t.Fatalf("run %d: instance is %v", r, in.State)
	}
	if live(got.state["A"]) && live(got.state["B"]) {
		t.Errorf("run %d: both applications on instance %s are live: %v", r, instance, got)
	}
	for _, a := range []string{"A", "B"} {
		if live(got.state[a]) && got.owner != a {
			t.Errorf("run %d: application %s is %v but the instance is %v for %q", r, a, got.state[a], in.State, in.Application)
		}
	}

	startModel := model{
		state:      map[string]applicationv1.Application_State{"A": applicationv1.Application_DRAFT, "B": applicationv1.Application_DRAFT},
		names:      map[string][]string{"A": first["A"], "B": first["B"]},
		challenged: map[string][]string{}, attempt: map[string]int{},
	}
	if !serializable(startModel, ok, got) {
		var desc []string
		for _, o := range ops {
			desc = append(desc, fmt.Sprintf("%s: %v", o.kind, o.err))
		}
		t.Errorf("run %d: no serial order of the successful requests leaves\n\t%v\nrequests:\n\t%s", r, got, strings.Join(desc, "\n\t"))
	}
	if t.Failed() {
		t.FailNow()
	}
	var key []string
	for _, o := range ok {
		key = append(key, o.kind)
	}
	slices.Sort(key)
	outcomes[strings.Join(key, "+")]++

	// Prove and issue a few: the certificate must name exactly the names
	// of the application, each validated by its own challenge.
	for _, a := range []string{"A", "B"} {
		if rec := recs[a]; *issued < 3 && live(rec.State) && len(rec.FlaggedWords) == 0 {
			*issued++
			s.proveAndIssue(t, ctx, rec)
		}
	}
}

// checkHistory checks an application's timeline against the requests:
// it starts as a draft, each step is one the state machine allows, there is
// one submitted step per successful submit and one withdrawn step per
// successful withdrawal, and it ends in the application's state.
func checkHistory(t *testing.T, run int, a string, rec *applicationv1.Application, ops []op) {
	t.Helper()
	h := rec.History
	if len(h) == 0 || h[0].State != applicationv1.Application_DRAFT || h[len(h)-1].State != rec.State {
		t.Errorf("run %d: application %s history %v; want DRAFT first and %v last", run, a, h, rec.State)
		return
	}
	allowed := map[applicationv1.Application_State][]applicationv1.Application_State{
		applicationv1.Application_DRAFT:                       {applicationv1.Application_PENDING_DOMAIN_VERIFICATION, applicationv1.Application_WITHDRAWN},
		applicationv1.Application_WITHDRAWN:                   {applicationv1.Application_PENDING_DOMAIN_VERIFICATION},
		applicationv1.Application_PENDING_DOMAIN_VERIFICATION: {applicationv1.Application_WITHDRAWN},
	}
	submits, withdrawals := 0, 0
	for i := 1; i < len(h); i++ {
		if !slices.Contains(allowed[h[i-1].State], h[i].State) {
			t.Errorf("run %d: application %s history steps from %v to %v", run, a, h[i-1].State, h[i].State)
		}
		if h[i].Time.AsTime().Before(h[i-1].Time.AsTime()) {
			t.Errorf("run %d: application %s history goes back in time at step %d", run, a, i)
		}
		switch h[i].State {
		case applicationv1.Application_PENDING_DOMAIN_VERIFICATION:
			submits++
		case applicationv1.Application_WITHDRAWN:
			withdrawals++
		}
	}
	wantSubmits, wantWithdrawals := 0, 0
	for _, o := range ops {
		if o.app == a && o.code == codes.OK {
			switch o.kind[:strings.IndexByte(o.kind, ' ')] {
			case "submit":
				wantSubmits++
			case "withdraw":
				wantWithdrawals++
			}
		}
	}
	if submits != wantSubmits || withdrawals != wantWithdrawals || int(rec.Attempt) != submits {
		t.Errorf("run %d: application %s history has %d submits, %d withdrawals, attempt %d; %d submits and %d withdrawals succeeded",
			run, a, submits, withdrawals, rec.Attempt, wantSubmits, wantWithdrawals)
	}
}

func (s *stack) proveAndIssue(t *testing.T, ctx context.Context, rec *applicationv1.Application) {
	t.Helper()
	txt := map[string][]string{}
	for _, c := range rec.Challenges {
		txt[c.DnsRecordName] = append(txt[c.DnsRecordName], c.DnsRecordValue)
		s.dns.SetTXT(c.DnsRecordName, txt[c.DnsRecordName]...)
	}
	for _, c := range rec.Challenges {
		if _, err := s.checks.CheckChallenge(ctx, &verificationv1.CheckChallengeRequest{Name: c.Name}); err != nil {
			t.Fatalf("CheckChallenge(%s) = %v", c.Domain, err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for rec.State != applicationv1.Application_ISSUED {
		if time.Now().After(deadline) {
			t.Fatalf("application %s is %v (%s); want ISSUED", rec.Name, rec.State, rec.FailureCause)
		}
		time.Sleep(50 * time.Millisecond)
		var err error
		if rec, err = s.apps.GetApplication(ctx, &applicationv1.GetApplicationRequest{Name: rec.Name}); err != nil {
			t.Fatal(err)
		}
	}
	cert, err := s.certs.GetCertificate(ctx, &issuancev1.GetCertificateRequest{Name: rec.Certificate})
	if err != nil {
		t.Fatal(err)
	}
	verified, err := s.checks.ListChallenges(ctx, &verificationv1.ListChallengesRequest{Filter: `application = "` + rec.Name + `" AND state = VERIFIED`, PageSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	var validated []string
	for _, c := range verified.Challenges {
		if c.Attempt == rec.Attempt {
			validated = append(validated, c.Domain)
		}
	}
	slices.Sort(validated)
	certNames := slices.Sorted(slices.Values(cert.Domains))
	if want := slices.Sorted(slices.Values(rec.Domains)); !slices.Equal(certNames, want) || !slices.Equal(certNames, validated) {
		t.Errorf("certificate of %s names %v; the application names %v and validated %v", rec.Name, certNames, want, validated)
	}
}
