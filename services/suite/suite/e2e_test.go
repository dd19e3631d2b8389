package suite_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	applicationv1 "github.com/certflow/certflow/gen/go/certflow/application/v1"
	issuancev1 "github.com/certflow/certflow/gen/go/certflow/issuance/v1"
	orderv1 "github.com/certflow/certflow/gen/go/certflow/order/v1"
	verificationv1 "github.com/certflow/certflow/gen/go/certflow/verification/v1"
	"github.com/certflow/certflow/pkg/auth"
	"github.com/certflow/certflow/pkg/devdns"
	"github.com/certflow/certflow/pkg/embedded"
	"github.com/certflow/certflow/pkg/events"
	"github.com/certflow/certflow/pkg/smtptest"
	"github.com/certflow/certflow/pkg/testenv"
	gateway "github.com/certflow/certflow/services/gateway/service"
	"github.com/certflow/certflow/services/suite/suite"
)

const otherKey = "cf_test_other_account_key_0001"

// env is a running suite with the test's own DNS, web and mail servers.
type env struct {
	s     *suite.Suite
	dns   *devdns.Server
	smtp  *smtptest.Server
	files sync.Map // HTTP proof files: path -> content

	mu     sync.Mutex
	events map[string]int // ce-type -> count
	ids    map[string]int // ce-id -> count
}

func start(t *testing.T) *env { t.Helper(); return startWith(t, nil) }

// startWith is start with the suite options changed by opt (for example a
// test clock in Now).
func startWith(t *testing.T, opt func(*suite.Options)) *env {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test; skipped with -short")
	}
	e := &env{events: map[string]int{}, ids: map[string]int{}}
	var err error
	e.dns, err = devdns.Start(context.Background(), devdns.Options{Addr: "127.0.0.1:0", DefaultA: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.dns.Close() })
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if v, ok := e.files.Load(r.URL.Path); ok {
			_, _ = io.WriteString(w, v.(string))
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(web.Close)
	_, port, _ := net.SplitHostPort(web.Listener.Addr().String())
	webPort, _ := strconv.Atoi(port)
	e.smtp = smtptest.Start(t)

	any := "127.0.0.1:0"
	o := suite.Options{
		DataDir:  t.TempDir(),
		MongoURI: os.Getenv(testenv.MongoEnv),
		NATSAddr: any, MongoAddr: any, OrderAddr: any, ApplicationAddr: any, VerificationAddr: any,
		IssuanceAddr: any, IssuanceHTTPAddr: any, NotificationAddr: any, AuditAddr: any, GatewayAddr: any,
		DNSServers: e.dns.Addr(), DCVHTTPPort: webPort, SMTPAddr: e.smtp.Addr(),
		RetryInitial: 100 * time.Millisecond, RetryMax: 500 * time.Millisecond, SweepInterval: 50 * time.Millisecond,
		ExtraAPIKeys:        gateway.HashAPIKey(otherKey) + " other customer\n",
		WebhookRetryInitial: 100 * time.Millisecond,
		Log:                 testenv.Logger(t),
		PKI:                 testenv.PKI(t),
		// Tests poll every 50 ms from one key; TestRateLimitsAndOverload
		// checks the limits themselves.
		GatewayLimits: gateway.Limits{KeyRate: 1e6, KeyBurst: 1e6},
	}
	if opt != nil {
		opt(&o)
	}
	e.s, err = suite.Start(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Run(t, e.s.Run)

	// A subscriber of another team: a durable JetStream consumer of every
	// lifecycle event, counting what the stream delivers.
	conn := readerConn(t, e.s)
	cons, err := conn.JS.CreateOrUpdateConsumer(context.Background(), events.Stream, jetstream.ConsumerConfig{
		Durable: "e2e-audit", FilterSubject: events.StreamSubjects, AckPolicy: jetstream.AckExplicitPolicy,
	})
	if err != nil {
		t.Fatal(err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		e.mu.Lock()
		e.events[m.Headers().Get(events.HeaderType)]++
		e.ids[m.Headers().Get(events.HeaderID)]++
		e.mu.Unlock()
		_ = m.Ack()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cc.Stop)
	return e
}

// call makes a JSON request through the gateway and decodes the answer.
func (e *env) call(t *testing.T, key, method, path string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, e.s.GatewayURL+path, rd)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: decode %q: %v", method, path, data, err)
		}
	}
	return resp.StatusCode
}

type obj = map[string]any

func str(m obj, keys ...string) string {
	var v any = m
	for _, k := range keys {
		v = v.(obj)[k]
	}
	s, _ := v.(string)
	return s
}

func (e *env) buy(t *testing.T, key, product string, qty int) []string {
	t.Helper()
	var order obj
	body := obj{"product": product, "quantity": qty}
	if strings.Contains(product, "multi") {
		body["domain_count"] = 5
	}
	if code := e.call(t, key, "POST", "/v1/orders?request_id="+url.QueryEscape(fmt.Sprintf("%s-%d-%d", product, qty, time.Now().UnixNano())), body, &order); code != 200 {
		t.Fatalf("POST /v1/orders = %d %v", code, order)
	}
	var out []string
	for _, in := range order["instances"].([]any) {
		out = append(out, in.(string))
	}
	return out
}

func applicant() obj {
	return obj{"name": "Li Lei", "phone": "+86 571 8502 2088", "email": "li.lei@example.test"}
}

func (e *env) waitState(t *testing.T, key, name, want string) obj {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var app obj
		e.call(t, key, "GET", "/v1/"+name, nil, &app)
		if app["state"] == want {
			return app
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is %v (cause %v); want %s", name, app["state"], app["failure_cause"], want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestDVPathThroughGateway(t *testing.T) {
	e := start(t)
	key := e.s.APIKey

	// Authentication: no key and a wrong key are 401; the OpenAPI document is public.
	if code := e.call(t, "", "GET", "/v1/products", nil, nil); code != http.StatusUnauthorized {
		t.Fatalf("GET /v1/products without key = %d; want 401", code)
	}
	if code := e.call(t, "cf_wrong_key_0000000000", "GET", "/v1/products", nil, nil); code != http.StatusUnauthorized {
		t.Fatalf("GET /v1/products with a wrong key = %d; want 401", code)
	}
	var spec obj
	if code := e.call(t, "", "GET", "/openapi.json", nil, &spec); code != 200 || spec["paths"] == nil {
		t.Fatalf("GET /openapi.json = %d; want the OpenAPI document", code)
	}

	// Buy a DV single-domain instance; it is listed as pending application.
	instances := e.buy(t, key, "products/dv-single-1y", 1)
	var list obj
	e.call(t, key, "GET", "/v1/instances?filter="+url.QueryEscape("state = PENDING_APPLICATION"), nil, &list)
	if n := len(list["instances"].([]any)); n != 1 {
		t.Fatalf("pending instances = %d; want 1", n)
	}

	// Apply for www.shop.test, prove control by DNS TXT, and wait.
	var app obj
	if code := e.call(t, key, "POST", "/v1/applications", obj{
		"instance": instances[0], "domains": []string{"www.shop.test"}, "applicant": applicant(),
		"validation_method": "VALIDATION_METHOD_DNS_TXT",
	}, &app); code != 200 {
		t.Fatalf("POST /v1/applications = %d %v", code, app)
	}
	if app["state"] != "DRAFT" || app["key_algorithm"] != "KEY_ALGORITHM_ECDSA_P256" {
		t.Fatalf("new application = %v; want a DRAFT with an ECDSA P-256 key by default", app)
	}
	name := app["name"].(string)
	if code := e.call(t, key, "POST", "/v1/"+name+":submit", obj{}, &app); code != 200 {
		t.Fatalf("submit = %d %v", code, app)
	}
	if app["state"] != "PENDING_DOMAIN_VERIFICATION" || app["progress_percent"] != float64(40) || app["expected_issue_time"] == nil {
		t.Fatalf("submitted application = %v; want PENDING_DOMAIN_VERIFICATION, 40%%, an expected issue time", app)
	}
	ch := app["challenges"].([]any)[0].(obj)
	if ch["dns_record_name"] != "_certflow-challenge.www.shop.test" || ch["dns_record_type"] != "TXT" || ch["dns_record_value"] == "" {
		t.Fatalf("challenge = %v; want the TXT record to publish", ch)
	}
	// Instance bound, and submitting again is refused.
	var inst obj
	e.call(t, key, "GET", "/v1/"+instances[0], nil, &inst)
	if inst["state"] != "APPLYING" {
		t.Fatalf("instance after submit = %v; want APPLYING", inst["state"])
	}
	var errBody obj
	if code := e.call(t, key, "POST", "/v1/"+name+":submit", obj{}, &errBody); code != http.StatusBadRequest || !strings.Contains(fmt.Sprint(errBody), "APPLICATION_ALREADY_SUBMITTED") {
		t.Fatalf("second submit = %d %v; want 400 APPLICATION_ALREADY_SUBMITTED", code, errBody)
	}

	e.dns.SetTXT(ch["dns_record_name"].(string), ch["dns_record_value"].(string))
	var checked obj
	e.call(t, key, "POST", "/v1/"+ch["name"].(string)+":check", obj{}, &checked)
	issued := e.waitState(t, key, name, "ISSUED")
	if issued["progress_percent"] != float64(100) || issued["certificate"] == nil {
		t.Fatalf("issued application = %v", issued)
	}

	// Download and verify the chain against the suite's root file.
	var bundle obj
	if code := e.call(t, key, "GET", "/v1/"+issued["certificate"].(string)+":download", nil, &bundle); code != 200 {
		t.Fatalf("download = %d %v", code, bundle)
	}
	rootPEM, err := os.ReadFile(e.s.RootCAPath)
	if err != nil {
		t.Fatal(err)
	}
	verifyBundle(t, rootPEM, bundle, "www.shop.test")
	checkIssued(t, e, key, issued["certificate"].(string), "DV")

	e.call(t, key, "GET", "/v1/"+instances[0], nil, &inst)
	if inst["state"] != "ISSUED" || inst["certificate"] != issued["certificate"] {
		t.Fatalf("instance after issue = %v; want ISSUED with the certificate", inst)
	}
	if code := e.call(t, key, "POST", "/v1/"+name+":withdraw", obj{}, &errBody); code != http.StatusBadRequest || !strings.Contains(fmt.Sprint(errBody), "APPLICATION_ALREADY_ISSUED") {
		t.Fatalf("withdraw after issue = %d %v; want 400 APPLICATION_ALREADY_ISSUED", code, errBody)
	}

	// Another account sees none of it.
	if code := e.call(t, otherKey, "GET", "/v1/"+name, nil, nil); code != http.StatusNotFound {
		t.Fatalf("other account GET application = %d; want 404", code)
	}
	if code := e.call(t, otherKey, "GET", "/v1/"+issued["certificate"].(string)+":download", nil, nil); code != http.StatusNotFound {
		t.Fatalf("other account download = %d; want 404", code)
	}

	// Each lifecycle event reached JetStream subscribers exactly once.
	want := map[string]int{
		events.OrderCreated: 1, events.ApplicationCreated: 1, events.InstanceBound: 1, events.ApplicationSubmitted: 1,
		events.DomainVerified: 1, events.ApplicationStateChanged: 1, events.CertificateIssued: 1,
		events.ApplicationIssued: 1, events.InstanceIssued: 1,
		// The customer's actions, in the audit trail (the key is downloaded
		// here and in checkIssued).
		events.AuditSubject("application.create"): 1, events.AuditSubject("application.submit"): 1,
		events.AuditSubject("certificate.key_download"): 2,
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		e.mu.Lock()
		got := fmt.Sprint(e.events)
		done := fmt.Sprint(want) == got
		dups := 0
		for _, n := range e.ids {
			if n > 1 {
				dups++
			}
		}
		e.mu.Unlock()
		if dups > 0 {
			t.Fatalf("%d events were delivered more than once", dups)
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("events seen = %s; want %v", got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// The applicant got mail: submitted (with the record), verified, issued.
	msgs := e.smtp.WaitFor(t, 3, 15*time.Second)
	var subjects []string
	for _, m := range msgs {
		if len(m.To) != 1 || m.To[0] != "li.lei@example.test" {
			t.Errorf("mail to %v; want the applicant", m.To)
		}
		subjects = append(subjects, subjectOf(m.Data))
	}
	all := strings.Join(subjects, " | ")
	for _, w := range []string{"Verify", "verified", "issued"} {
		if !strings.Contains(all, w) {
			t.Errorf("mail subjects %q lack one about %q", all, w)
		}
	}
	if !bytes.Contains(msgs[0].Data, []byte(ch["dns_record_value"].(string))) {
		t.Errorf("the submitted mail does not carry the TXT value to publish")
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		var notes obj
		e.call(t, key, "GET", "/v1/notifications?filter="+url.QueryEscape(`application = "`+name+`"`), nil, &notes)
		channels := map[string]int{}
		for _, n := range asList(notes["notifications"]) {
			channels[n.(obj)["channel"].(string)]++
		}
		if channels["CHANNEL_EMAIL"] == 3 && channels["CHANNEL_SMS"] == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("notifications listed = %v; want 3 emails and the issued SMS", channels)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func subjectOf(data []byte) string {
	for _, line := range strings.Split(string(data), "\n") {
		if s, ok := strings.CutPrefix(strings.TrimRight(line, "\r"), "Subject: "); ok {
			return s
		}
	}
	return ""
}

func verifyBundle(t *testing.T, rootPEM []byte, bundle obj, names ...string) {
	t.Helper()
	roots, inters := x509.NewCertPool(), x509.NewCertPool()
	if !roots.AppendCertsFromPEM(rootPEM) {
		t.Fatalf("root file holds no certificate")
	}
	inters.AppendCertsFromPEM([]byte(str(bundle, "chain_pem")))
	block, _ := pem.Decode([]byte(str(bundle, "certificate_pem")))
	if block == nil {
		t.Fatalf("bundle has no certificate PEM: %v", bundle)
	}
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: n, Roots: roots, Intermediates: inters, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("certificate does not verify for %s: %v", n, err)
		}
	}
	if !strings.HasPrefix(str(bundle, "full_chain_pem"), str(bundle, "certificate_pem")) {
		t.Errorf("full chain does not start with the leaf")
	}
	kb, _ := pem.Decode([]byte(str(bundle, "private_key_pem")))
	if kb == nil {
		t.Fatalf("bundle has no private key although the service made it")
	}
	key, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !key.(crypto.Signer).Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(leaf.PublicKey) {
		t.Errorf("private key does not match the certificate")
	}
	if d := leaf.NotAfter.Sub(leaf.NotBefore); d > 200*24*time.Hour {
		t.Errorf("validity %v exceeds the 200-day maximum", d)
	}
}

// TestBadInputThroughGateway: each refusal has the right status and stores
// nothing.
func TestBadInputThroughGateway(t *testing.T) {
	e := start(t)
	key := e.s.APIKey
	single := e.buy(t, key, "products/dv-single-1y", 2)
	wild := e.buy(t, key, "products/dv-wildcard-1y", 1)

	draft := func(instance string, domains ...string) obj {
		return obj{"instance": instance, "domains": domains, "applicant": applicant()}
	}
	var used obj
	e.call(t, key, "POST", "/v1/applications", draft(single[1], "used.example.test"), &used)
	e.call(t, key, "POST", "/v1/"+used["name"].(string)+":submit", obj{}, nil)

	tests := []struct {
		name   string
		body   obj
		status int
		reason string
	}{
		{"malformed domain", draft(single[0], "exa mple.com"), 400, "INVALID_DOMAIN"},
		{"public suffix", draft(single[0], "co.uk"), 400, "INVALID_DOMAIN"},
		{"two names on single", draft(single[0], "a.example.test", "b.example.test"), 400, "DOMAIN_LIMIT_EXCEEDED"},
		{"wildcard on single", draft(single[0], "*.example.test"), 400, "WILDCARD_NOT_ALLOWED"},
		{"wildcard by HTTP", obj{"instance": wild[0], "domains": []string{"*.example.test"}, "applicant": applicant(), "validation_method": "VALIDATION_METHOD_HTTP_FILE"}, 400, "WILDCARD_NEEDS_DNS"},
		{"unknown instance", draft("instances/nope-1", "a.example.test"), 404, "NOT_FOUND"},
		{"used instance", draft(single[1], "a.example.test"), 400, "INSTANCE_NOT_AVAILABLE"},
		{"no applicant", obj{"instance": single[0], "domains": []string{"a.example.test"}}, 400, "MISSING_FIELD"},
		{"bad email", obj{"instance": single[0], "domains": []string{"a.example.test"}, "applicant": obj{"name": "A", "phone": "+1 555 0100", "email": "nope"}}, 400, "INVALID_EMAIL"},
		{"no instance", obj{"domains": []string{"a.example.test"}, "applicant": applicant()}, 400, "INVALID_NAME"},
	}
	for _, tt := range tests {
		var body obj
		code := e.call(t, key, "POST", "/v1/applications", tt.body, &body)
		if code != tt.status || !strings.Contains(fmt.Sprint(body), tt.reason) {
			t.Errorf("%s: POST /v1/applications = %d %v; want %d %s", tt.name, code, body, tt.status, tt.reason)
		}
	}
	var apps obj
	e.call(t, key, "GET", "/v1/applications", nil, &apps)
	if n := len(apps["applications"].([]any)); n != 1 {
		t.Errorf("applications stored after refusals = %d; want only the one used", n)
	}
	var inst obj
	e.call(t, key, "GET", "/v1/"+single[0], nil, &inst)
	if inst["state"] != "PENDING_APPLICATION" {
		t.Errorf("instance after refused applications = %v; want PENDING_APPLICATION", inst["state"])
	}
	if code := e.call(t, otherKey, "POST", "/v1/"+used["name"].(string)+":withdraw", obj{}, nil); code != 404 {
		t.Errorf("withdraw by another account = %d; want 404", code)
	}
	if code := e.call(t, otherKey, "POST", "/v1/applications", draft(single[0], "a.example.test"), nil); code != 404 {
		t.Errorf("apply with another account's instance = %d; want 404", code)
	}
	if code := e.call(t, key, "POST", "/v1/orders", obj{"product": "products/nope", "quantity": 1}, nil); code != 400 {
		t.Errorf("order of an unknown product = %d; want 400", code)
	}
	if code := e.call(t, key, "GET", "/v1/instances?filter="+url.QueryEscape("state = NOPE"), nil, nil); code != 400 {
		t.Errorf("bad filter = %d; want 400", code)
	}
	// The withdrawn application's instance is free again.
	var w obj
	if code := e.call(t, key, "POST", "/v1/"+used["name"].(string)+":withdraw", obj{}, &w); code != 200 || w["state"] != "WITHDRAWN" {
		t.Fatalf("withdraw = %d %v", code, w)
	}
	e.call(t, key, "GET", "/v1/"+single[1], nil, &inst)
	if inst["state"] != "PENDING_APPLICATION" {
		t.Errorf("instance after withdraw = %v; want PENDING_APPLICATION", inst["state"])
	}
}

// TestDVPathThroughGRPC drives the same path as an internal client would,
// with HTTP file validation and an RSA key.
func TestDVPathThroughGRPC(t *testing.T) {
	e := start(t)
	ctx, cancel := context.WithTimeout(testenv.As(context.Background(), "dev", auth.Customer), 60*time.Second)
	defer cancel()
	orders := orderv1.NewOrderServiceClient(testenv.Dial(t, e.s.OrderAddr))
	apps := applicationv1.NewApplicationServiceClient(testenv.Dial(t, e.s.ApplicationAddr))
	checks := verificationv1.NewVerificationServiceClient(testenv.Dial(t, e.s.VerificationAddr))
	certs := issuancev1.NewIssuanceServiceClient(testenv.Dial(t, e.s.IssuanceAddr))

	o, err := orders.CreateOrder(ctx, &orderv1.CreateOrderRequest{Order: &orderv1.Order{Product: "products/dv-multi-1y", Quantity: 1, DomainCount: 2}})
	if err != nil {
		t.Fatal(err)
	}
	app, err := apps.CreateApplication(ctx, &applicationv1.CreateApplicationRequest{Application: &applicationv1.Application{
		Instance: o.Instances[0], Domains: []string{"api.example.test", "www.example.test"},
		ValidationMethod: verificationv1.ValidationMethod_VALIDATION_METHOD_HTTP_FILE,
		Applicant:        &applicationv1.Applicant{Name: "Han Meimei", Phone: "+86 10 1234 5678", Email: "han@example.test"},
		KeyAlgorithm:     applicationv1.KeyAlgorithm_KEY_ALGORITHM_RSA_2048,
	}})
	if err != nil {
		t.Fatal(err)
	}
	app, err = apps.SubmitApplication(ctx, &applicationv1.SubmitApplicationRequest{Name: app.Name})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range app.Challenges {
		u, _ := url.Parse(c.HttpUrl)
		e.files.Store(u.Path, c.HttpContent)
		if _, err := checks.CheckChallenge(ctx, &verificationv1.CheckChallengeRequest{Name: c.Name}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for app.State != applicationv1.Application_ISSUED {
		if time.Now().After(deadline) {
			t.Fatalf("application is %v; want ISSUED", app.State)
		}
		time.Sleep(50 * time.Millisecond)
		if app, err = apps.GetApplication(ctx, &applicationv1.GetApplicationRequest{Name: app.Name}); err != nil {
			t.Fatal(err)
		}
	}
	b, err := certs.DownloadCertificate(ctx, &issuancev1.DownloadCertificateRequest{Name: app.Certificate})
	if err != nil {
		t.Fatal(err)
	}
	ca, err := certs.GetCaCertificates(ctx, &issuancev1.GetCaCertificatesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	verifyBundle(t, []byte(ca.RootPem), obj{
		"certificate_pem": b.CertificatePem, "chain_pem": b.ChainPem, "full_chain_pem": b.FullChainPem, "private_key_pem": b.PrivateKeyPem,
	}, "api.example.test", "www.example.test")
	cert, _ := certs.GetCertificate(ctx, &issuancev1.GetCertificateRequest{Name: app.Certificate})
	if cert.GetKeyAlgorithm() != "RSA-2048" {
		t.Errorf("key algorithm = %q; want RSA-2048", cert.GetKeyAlgorithm())
	}
}

// readerConn connects to the suite's NATS as another team would: the
// read-only user.
func readerConn(t *testing.T, s *suite.Suite) *events.Conn {
	t.Helper()
	conn, err := events.Connect(context.Background(), s.NATSURL, t.Name(), events.Credentials{User: events.Reader, SeedFile: embedded.NATSSeedFile(s.NATSSeeds, events.Reader)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Close)
	return conn
}
