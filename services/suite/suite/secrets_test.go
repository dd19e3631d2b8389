package suite_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/certflow/certflow/pkg/events"
	"github.com/certflow/certflow/services/suite/suite"
)

// lockedBuffer collects log lines from every service at once.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}

// haystack is a named body of text (or bytes) the scan searches.
type haystack struct {
	where string
	data  []byte
}

// needle is a secret the run used, in one of its forms.
type needle struct {
	what  string
	value []byte
}

// TestNoSecretsLeak runs the end-to-end flows that handle secrets (a DV
// certificate validated by email with a service-made key downloaded, a
// webhook receiving the account's events, refused calls) and then searches
// every log line (at debug level), every event on the stream (data and
// headers), every notification, every webhook body and delivery record, the
// body of every refused call and every file the suite keeps at rest for the
// private key, the API keys, the key-encryption keys, the webhook secret and
// the DCV codes it used: none may appear.
func TestNoSecretsLeak(t *testing.T) {
	logs := &lockedBuffer{}
	dataDir := t.TempDir()
	e := startWith(t, func(o *suite.Options) {
		o.DataDir = dataDir
		o.Log = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	key := e.s.APIKey
	var hay []haystack

	// Every event of the stream, as another team would read it.
	var evMu sync.Mutex
	var evs []haystack
	types := map[string]int{}
	conn := readerConn(t, e.s)
	cons, err := conn.JS.CreateOrUpdateConsumer(context.Background(), events.Stream, jetstream.ConsumerConfig{
		Durable: "secrets-scan", FilterSubject: events.StreamSubjects, AckPolicy: jetstream.AckExplicitPolicy,
	})
	if err != nil {
		t.Fatal(err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		var hdr bytes.Buffer
		for k, v := range m.Headers() {
			fmt.Fprintf(&hdr, "%s: %s\n", k, strings.Join(v, ","))
		}
		evMu.Lock()
		types[m.Headers().Get(events.HeaderType)]++
		evs = append(evs, haystack{"event " + m.Subject() + " headers", hdr.Bytes()}, haystack{"event " + m.Subject() + " data", bytes.Clone(m.Data())})
		evMu.Unlock()
		_ = m.Ack()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Stop()

	// A webhook receiving the account's events.
	var hookMu sync.Mutex
	var hookBodies []haystack
	received := map[string]int{}
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var hdr bytes.Buffer
		_ = r.Header.Write(&hdr)
		hookMu.Lock()
		received[r.Header.Get("Certflow-Event-Type")]++
		hookBodies = append(hookBodies, haystack{"webhook delivery headers", hdr.Bytes()}, haystack{"webhook delivery body", body})
		hookMu.Unlock()
	}))
	defer hook.Close()
	var wh obj
	if code := e.call(t, key, "POST", "/v1/webhooks", obj{"url": hook.URL + "/scan"}, &wh); code != 200 || str(wh, "secret") == "" {
		t.Fatalf("create webhook = %d %v", code, wh)
	}
	webhookSecret := str(wh, "secret")

	// refused records the body of a call that must fail with status (or,
	// with status 0, with any 4xx).
	refused := func(what string, status int, k, method, path string, body any) {
		t.Helper()
		var out json.RawMessage
		if code := e.call(t, k, method, path, body, &out); code != status && (status != 0 || code < 400 || code > 499) {
			t.Fatalf("%s: %s %s = %d %s; want %d", what, method, path, code, out, status)
		}
		hay = append(hay, haystack{"refused call: " + what, out})
	}
	refused("no key", http.StatusUnauthorized, "", "GET", "/v1/products", nil)
	refused("wrong key", http.StatusUnauthorized, "cf_wrong_key_0000000000", "GET", "/v1/products", nil)
	refused("key hash as key", http.StatusUnauthorized, "sha256:"+strings.Repeat("0", 64), "GET", "/v1/products", nil)

	// A DV certificate validated by email: the code reaches the
	// constructed address by SMTP, the only place it may be.
	inst := e.buy(t, key, "products/dv-single-1y", 1)
	app := e.apply(t, obj{"instance": inst[0], "domains": []string{"scan.example.test"}, "applicant": applicant(),
		"validation_method": "VALIDATION_METHOD_EMAIL", "approver_mailbox": "admin"})
	sub := e.submit(t, app)
	ch := asList(sub["challenges"])[0].(obj)
	codeRE := regexp.MustCompile(`Confirmation code: (\S+)`)
	var dcvCode string
	for deadline := time.Now().Add(15 * time.Second); dcvCode == ""; {
		for _, m := range e.smtp.Messages() {
			if len(m.To) == 1 && m.To[0] == "admin@scan.example.test" {
				if mm := codeRE.FindSubmatch(m.Data); mm != nil {
					dcvCode = string(mm[1])
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no validation mail reached admin@scan.example.test")
		}
		time.Sleep(20 * time.Millisecond)
	}
	chName := "/v1/" + str(ch, "name") + ":confirm"
	refused("wrong DCV code", http.StatusBadRequest, key, "POST", chName, obj{"code": "AAAA-AAAA-AAAA-AAAA-AAAA-AAAA"})
	refused("DCV code by another account", http.StatusNotFound, otherKey, "POST", chName, obj{"code": dcvCode})
	var confirmed json.RawMessage
	if code := e.call(t, key, "POST", chName, obj{"code": dcvCode}, &confirmed); code != 200 {
		t.Fatalf("confirm = %d %s", code, confirmed)
	}
	hay = append(hay, haystack{"confirm answer", confirmed})
	refused("DCV code twice", http.StatusBadRequest, key, "POST", chName, obj{"code": dcvCode})
	issued := e.waitState(t, key, app, "ISSUED")
	cert := str(issued, "certificate")

	// Download the service-made key, then ask for it as another account.
	var bundle obj
	if code := e.call(t, key, "GET", "/v1/"+cert+":download", nil, &bundle); code != 200 || str(bundle, "private_key_pem") == "" {
		t.Fatalf("download = %d; want the bundle with the private key", code)
	}
	keyPEM := str(bundle, "private_key_pem")
	refused("download by another account", http.StatusNotFound, otherKey, "GET", "/v1/"+cert+":download", nil)
	refused("reviewer download of a customer's key", 0, e.s.ReviewerKey, "GET", "/v1/"+cert+":download", nil)

	// Wait for what the run produces: the webhook's deliveries and the
	// stream's events up to the issuance.
	for deadline := time.Now().Add(30 * time.Second); ; {
		hookMu.Lock()
		hookDone := received[events.DomainEmailChallenge] == 1 && received[events.ApplicationIssued] == 1
		hookMu.Unlock()
		evMu.Lock()
		evDone := types[events.DomainEmailChallenge] == 1 && types[events.ApplicationIssued] == 1 && types[events.CertificateIssued] == 1
		evMu.Unlock()
		if hookDone && evDone {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("webhook got %v, stream %v; want the email_sent and issued events in both", received, types)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Notifications and the delivery log, as the account reads them.
	var notes, deliveries json.RawMessage
	for deadline := time.Now().Add(15 * time.Second); ; {
		var list obj
		e.call(t, key, "GET", "/v1/notifications?page_size=100", nil, &list)
		dcvMail := false
		for _, n := range asList(list["notifications"]) {
			if n.(obj)["recipient"] == "admin@scan.example.test" && n.(obj)["state"] == "SENT" {
				dcvMail = true
			}
		}
		if dcvMail && len(asList(list["notifications"])) >= 3 {
			e.call(t, key, "GET", "/v1/notifications?page_size=100", nil, &notes)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("notifications = %v; want the DCV mail SENT among them", list)
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.call(t, key, "GET", "/v1/"+str(wh, "name")+"/deliveries?page_size=100", nil, &deliveries)
	var hooks json.RawMessage
	e.call(t, key, "GET", "/v1/webhooks", nil, &hooks)
	hay = append(hay, haystack{"notifications", notes}, haystack{"webhook deliveries", deliveries}, haystack{"webhooks list", hooks})
	hookMu.Lock()
	hay = append(hay, hookBodies...)
	hookMu.Unlock()
	evMu.Lock()
	hay = append(hay, evs...)
	nEvents := len(evs) / 2
	evMu.Unlock()
	logBytes := logs.Bytes()
	for i, line := range bytes.Split(logBytes, []byte("\n")) {
		if len(line) > 0 {
			hay = append(hay, haystack{fmt.Sprintf("log line %d", i+1), line})
		}
	}

	// At rest: every file of the data folder (database, stream store, CA
	// folder, keys file) but the key-encryption keys themselves and the
	// development credentials. Keys and webhook secrets are sealed, codes
	// and API keys kept as hashes. With a real MongoDB (not in the data
	// folder) only the other files are searched.
	skip := map[string]bool{"secrets/kek": true, "secrets/ca-kek": true, "secrets/webhook-kek": true, "dev-credentials": true}
	if err := filepath.WalkDir(dataDir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dataDir, path)
		if skip[filepath.ToSlash(rel)] || strings.HasPrefix(filepath.ToSlash(rel), "secrets/nats/") || strings.HasSuffix(rel, "-key.pem") {
			return nil // where these secrets live, readable only by the owner
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		hay = append(hay, haystack{"file at rest " + rel, b})
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	// The secrets the run used, in the forms a leak would take.
	var needles []needle
	add := func(what string, forms ...[]byte) {
		for _, f := range forms {
			if len(f) >= 8 {
				needles = append(needles, needle{what, f})
			}
		}
	}
	block, _ := pem.Decode([]byte(keyPEM))
	if block == nil {
		t.Fatalf("downloaded key is not PEM")
	}
	body := base64.StdEncoding.EncodeToString(block.Bytes)
	add("private key PEM", []byte(keyPEM), []byte(jsonString(keyPEM)), []byte(body), block.Bytes)
	// Each line of the PEM body, except one that also appears in the
	// certificate's base64 (as the database keeps it): PKCS#8 carries the
	// public key too, and its last line can be public key bytes only.
	certBlock, _ := pem.Decode([]byte(str(bundle, "certificate_pem")))
	if certBlock == nil {
		t.Fatalf("bundle has no certificate")
	}
	certB64 := base64.StdEncoding.EncodeToString(certBlock.Bytes)
	for _, line := range strings.Split(keyPEM, "\n") {
		if !strings.HasPrefix(line, "-----") && len(line) >= 32 && !strings.Contains(certB64, line) {
			add("private key PEM line", []byte(line))
		}
	}
	// The private scalar itself, raw and in base64 at each alignment.
	priv, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	var d []byte
	switch k := priv.(type) {
	case *ecdsa.PrivateKey:
		if d, err = k.Bytes(); err != nil {
			t.Fatal(err)
		}
	case *rsa.PrivateKey:
		d = k.D.Bytes()
	default:
		t.Fatalf("downloaded key is a %T", priv)
	}
	add("private key scalar", d)
	for i := range 3 {
		if b64 := base64.StdEncoding.EncodeToString(d[i:]); len(b64) > 8 {
			add("private key scalar (base64)", []byte(b64[4:len(b64)-4]))
		}
	}
	add("API key", []byte(e.s.APIKey), []byte(e.s.ReviewerKey), []byte(otherKey))
	for _, name := range []string{"kek", "ca-kek", "webhook-kek"} {
		b, err := os.ReadFile(filepath.Join(dataDir, "secrets", name))
		if err != nil {
			t.Fatalf("key-encryption key %s: %v", name, err)
		}
		text := strings.TrimSpace(string(b))
		raw, err := base64.StdEncoding.DecodeString(text)
		if err != nil || len(raw) != 32 {
			t.Fatalf("key-encryption key %s is not 32 bytes of base64", name)
		}
		add("key-encryption key "+name, []byte(text), raw, []byte(base64.RawURLEncoding.EncodeToString(raw)))
	}
	// Component identities: the NATS nkey seeds and the internal PKI's
	// private keys.
	seeds, _ := filepath.Glob(filepath.Join(dataDir, "secrets", "nats", "*.nk"))
	keys, _ := filepath.Glob(filepath.Join(dataDir, "pki", "*-key.pem"))
	if len(seeds) < 6 || len(keys) < 1 {
		t.Fatalf("found %d NATS seeds and %d internal PKI keys; want every NATS user's and the operator's", len(seeds), len(keys))
	}
	for _, f := range append(seeds, keys...) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		add("identity secret "+filepath.Base(f), bytes.TrimSpace(b))
		if blk, _ := pem.Decode(b); blk != nil {
			add("identity key "+filepath.Base(f), blk.Bytes, []byte(base64.StdEncoding.EncodeToString(blk.Bytes)))
		}
	}
	add("webhook secret", []byte(webhookSecret), []byte(strings.TrimPrefix(webhookSecret, "whsec_")))
	add("DCV code", []byte(dcvCode), []byte(strings.ReplaceAll(dcvCode, "-", "")))

	// The scan must look at something (the needles are real: the code was
	// read from the mailbox, the key from the bundle).
	if nEvents < 8 || len(hookBodies) < 4 || bytes.Count(logBytes, []byte("\n")) < 20 {
		t.Fatalf("scanned %d events, %d webhook parts, %d log lines; too few to mean anything", nEvents, len(hookBodies), bytes.Count(logBytes, []byte("\n")))
	}
	// The search finds each secret where it belongs: the code in the
	// mailbox, the key in the bundle the owner downloaded.
	var mailbox []byte
	for _, m := range e.smtp.Messages() {
		mailbox = append(mailbox, m.Data...)
	}
	bundleJSON, _ := json.Marshal(bundle)
	if !bytes.Contains(mailbox, []byte(dcvCode)) {
		t.Errorf("the DCV code is not in the mail that carried it: the scan would miss it")
	}
	if !bytes.Contains(bundleJSON, []byte(jsonString(keyPEM))) || !bytes.Contains(bundleJSON, []byte(strings.Split(keyPEM, "\n")[1])) {
		t.Errorf("the scan's private key forms are not in the downloaded bundle: the scan would miss them")
	}
	hits := 0
	for _, h := range hay {
		for _, n := range needles {
			if bytes.Contains(h.data, n.value) {
				hits++
				t.Errorf("%s found in %s: %.300q", n.what, h.where, h.data)
			}
		}
	}
	t.Logf("searched %d places (%d events, %d log bytes) for %d secret forms: %d hits", len(hay), nEvents, len(logBytes), len(needles), hits)
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return strings.Trim(string(b), `"`)
}
