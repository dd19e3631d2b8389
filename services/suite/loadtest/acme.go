package loadtest

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/acme"

	"github.com/certflow/certflow/pkg/devdns"
)

// Pebble runs Let's Encrypt's Pebble ACME test server as a child process
// and issues through it with an in-process ACME client (golang.org/x/crypto/
// acme) over http-01: Pebble's validation authority resolves the names
// through a development DNS server that answers 127.0.0.1 and fetches the
// token from this process's HTTP responder. Pebble keeps everything in
// memory; its random validation delay and nonce rejection are turned off
// (PEBBLE_VA_NOSLEEP, PEBBLE_WFE_NONCEREJECT=0) so that only its work is
// measured. The latency is new order → certificate.
type Pebble struct {
	cmd     *exec.Cmd
	dns     *devdns.Server
	http01  *http.Server
	tokens  sync.Map // token -> key authorization
	client  *acme.Client
	account string
	run     atomic.Int64
}

// StartPebble starts the pebble binary at path with its files in dir.
func StartPebble(ctx context.Context, path, dir string) (*Pebble, error) {
	p := &Pebble{}
	var err error
	if p.dns, err = devdns.Start(ctx, devdns.Options{Addr: "127.0.0.1:0", DefaultA: "127.0.0.1"}); err != nil {
		return nil, err
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		p.Close()
		return nil, err
	}
	p.http01 = &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		const prefix = "/.well-known/acme-challenge/"
		if len(r.URL.Path) > len(prefix) {
			if v, ok := p.tokens.Load(r.URL.Path[len(prefix):]); ok {
				_, _ = w.Write([]byte(v.(string)))
				return
			}
		}
		http.NotFound(w, r)
	})}
	go func() { _ = p.http01.Serve(lis) }()
	httpPort := lis.Addr().(*net.TCPAddr).Port

	certPEM, keyPEM, pool, err := selfSigned()
	if err != nil {
		p.Close()
		return nil, err
	}
	listen, mgmt := freePort(), freePort()
	_, tp, _ := net.SplitHostPort(freePort())
	tlsPort, _ := strconv.Atoi(tp)
	cfg := map[string]any{"pebble": map[string]any{
		"listenAddress": listen, "managementListenAddress": mgmt,
		"certificate": filepath.Join(dir, "cert.pem"), "privateKey": filepath.Join(dir, "key.pem"),
		"httpPort": httpPort, "tlsPort": tlsPort, "ocspResponderURL": "", "externalAccountBindingRequired": false,
		"retryAfter": map[string]int{"authz": 1, "order": 1}, "keyAlgorithm": "ecdsa",
		"profiles": map[string]any{"default": map[string]any{"description": "default", "validityPeriod": 7776000}},
	}}
	b, _ := json.Marshal(cfg)
	for name, data := range map[string][]byte{"cert.pem": certPEM, "key.pem": keyPEM, "pebble.json": b} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			p.Close()
			return nil, err
		}
	}
	p.cmd = exec.Command(path, "-config", filepath.Join(dir, "pebble.json"), "-dnsserver", p.dns.Addr())
	p.cmd.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_AUTHZREUSE=0")
	logf, err := os.Create(filepath.Join(dir, "pebble.log"))
	if err != nil {
		p.Close()
		return nil, err
	}
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		p.Close()
		return nil, fmt.Errorf("start pebble (make bench-compare installs it): %w", err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p.client = &acme.Client{Key: key, DirectoryURL: "https://" + listen + "/dir",
		HTTPClient: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, MaxIdleConnsPerHost: 64}}}
	deadline := time.Now().Add(30 * time.Second)
	for {
		acct, err := p.client.Register(ctx, &acme.Account{}, acme.AcceptTOS)
		if err == nil {
			p.account = acct.URI
			break
		}
		if time.Now().After(deadline) {
			p.Close()
			out, _ := os.ReadFile(filepath.Join(dir, "pebble.log"))
			if len(out) > 2000 {
				out = out[len(out)-2000:]
			}
			return nil, fmt.Errorf("pebble did not answer: %w; its log:\n%s", err, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := p.Issue(ctx, -1); err != nil {
		p.Close()
		return nil, fmt.Errorf("pebble warm-up: %w", err)
	}
	return p, nil
}

// PID is the Pebble process, for CPUMeter.
func (p *Pebble) PID() int { return p.cmd.Process.Pid }

// NextRun gives the following Issue calls fresh names.
func (p *Pebble) NextRun() { p.run.Add(1) }

// Close stops Pebble and the helpers.
func (p *Pebble) Close() {
	if p.cmd != nil && p.cmd.Process != nil {
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
	}
	if p.http01 != nil {
		_ = p.http01.Close()
	}
	if p.dns != nil {
		_ = p.dns.Close()
	}
}

// Issue orders, validates over http-01 and finalizes one certificate.
func (p *Pebble) Issue(ctx context.Context, i int) (time.Duration, error) {
	name := fmt.Sprintf("www%d.r%d.pebble.test", i+1, p.run.Load())
	start := time.Now()
	order, err := p.client.AuthorizeOrder(ctx, acme.DomainIDs(name))
	if err != nil {
		return 0, err
	}
	for _, u := range order.AuthzURLs {
		z, err := p.client.GetAuthorization(ctx, u)
		if err != nil {
			return 0, err
		}
		var ch *acme.Challenge
		for _, c := range z.Challenges {
			if c.Type == "http-01" {
				ch = c
			}
		}
		if ch == nil {
			return 0, errors.New("no http-01 challenge offered")
		}
		resp, err := p.client.HTTP01ChallengeResponse(ch.Token)
		if err != nil {
			return 0, err
		}
		p.tokens.Store(ch.Token, resp)
		if _, err := p.client.Accept(ctx, ch); err != nil {
			return 0, fmt.Errorf("accept %s: %w", ch.URI, err)
		}
	}
	// Poll briefly rather than by Retry-After (x/crypto/acme waits a
	// second at least), so that Pebble's own pace is what is measured.
	for {
		o, err := p.client.GetOrder(ctx, order.URI)
		if err != nil {
			return 0, fmt.Errorf("order %q: %w", order.URI, err)
		}
		if o.Status == acme.StatusReady {
			break
		}
		if o.Status == acme.StatusInvalid {
			return 0, fmt.Errorf("order %s invalid", order.URI)
		}
		time.Sleep(5 * time.Millisecond)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: []string{name}}, key)
	if err != nil {
		return 0, err
	}
	// x/crypto/acme's finalize waits a second at least for Pebble's
	// asynchronous issuance; post the finalize ourselves and poll.
	if err := p.post(ctx, order.FinalizeURL, map[string]string{"csr": base64.RawURLEncoding.EncodeToString(csr)}); err != nil {
		return 0, fmt.Errorf("finalize %s: %w", order.FinalizeURL, err)
	}
	for {
		o, err := p.client.GetOrder(ctx, order.URI)
		if err != nil {
			return 0, fmt.Errorf("order %q: %w", order.URI, err)
		}
		if o.Status == acme.StatusValid {
			der, err := p.client.FetchCert(ctx, o.CertURL, true)
			if err != nil {
				return 0, err
			}
			if len(der) == 0 {
				return 0, errors.New("no certificate returned")
			}
			return time.Since(start), nil
		}
		if o.Status == acme.StatusInvalid {
			return 0, fmt.Errorf("order %s invalid after finalize", order.URI)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// post sends an RFC 8555 JWS-signed POST (ES256, kid = the account) and
// checks for 200.
func (p *Pebble) post(ctx context.Context, url string, payload any) error {
	dir, err := p.client.Discover(ctx)
	if err != nil {
		return err
	}
	nreq, _ := http.NewRequestWithContext(ctx, http.MethodHead, dir.NonceURL, nil)
	nres, err := p.client.HTTPClient.Do(nreq)
	if err != nil {
		return err
	}
	_ = nres.Body.Close()
	nonce := nres.Header.Get("Replay-Nonce")
	prot, _ := json.Marshal(map[string]string{"alg": "ES256", "kid": p.account, "nonce": nonce, "url": url})
	pl, _ := json.Marshal(payload)
	b64 := base64.RawURLEncoding
	input := b64.EncodeToString(prot) + "." + b64.EncodeToString(pl)
	h := sha256.Sum256([]byte(input))
	r, sig, err := ecdsa.Sign(rand.Reader, p.client.Key.(*ecdsa.PrivateKey), h[:])
	if err != nil {
		return err
	}
	raw := make([]byte, 64)
	r.FillBytes(raw[:32])
	sig.FillBytes(raw[32:])
	body, _ := json.Marshal(map[string]string{"protected": b64.EncodeToString(prot), "payload": b64.EncodeToString(pl), "signature": b64.EncodeToString(raw)})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/jose+json")
	res, err := p.client.HTTPClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
		return fmt.Errorf("%s: %d %s", url, res.StatusCode, msg)
	}
	return nil
}

func freePort() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "127.0.0.1:" + strconv.Itoa(14000)
	}
	defer l.Close()
	return l.Addr().String()
}

// selfSigned makes the certificate Pebble serves its API with.
func selfSigned() (certPEM, keyPEM []byte, pool *x509.CertPool, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "pebble (benchmark)"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), crypto.Signer(key))
	if err != nil {
		return nil, nil, nil, err
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	kd, _ := x509.MarshalPKCS8PrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}), pool, nil
}
