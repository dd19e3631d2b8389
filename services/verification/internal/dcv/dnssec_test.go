package dcv_test

// The DNSSEC test: Unbound from Debian (.ci/run installs it) is the
// validating resolver, in front of a small authoritative server in this
// file. It serves test. signed with a test key (Unbound's trust anchor),
// which delegates secure.test. with a DS (a chain of trust; the child is
// signed, one TXT and one CAA record tampered with after signing, one CAA
// set with its signature stripped) and insecure.test. without one (an
// NSEC proves there is no DS: an unsigned, insecure zone), and
// brokenchain.test. with a DS of another key than the one it signs with.

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/certflow/certflow/pkg/testenv"
	"github.com/certflow/certflow/services/verification/internal/caa"
	"github.com/certflow/certflow/services/verification/internal/dcv"
)

// zone is one authoritative zone, optionally signed.
type zone struct {
	origin string
	rrs    map[string]map[uint16][]dns.RR // owner -> type -> RRset
	sigs   map[string]map[uint16]*dns.RRSIG
	owners []string // canonical order, when signed
}

func newZone(origin string, records ...string) *zone {
	z := &zone{origin: origin, rrs: map[string]map[uint16][]dns.RR{}, sigs: map[string]map[uint16]*dns.RRSIG{}}
	z.add(fmt.Sprintf("%s 300 IN SOA ns.%s hostmaster.%s 1 3600 600 86400 300", origin, origin, origin))
	z.add(fmt.Sprintf("%s 300 IN NS ns.%s", origin, origin))
	for _, r := range records {
		z.add(r)
	}
	return z
}

func (z *zone) add(record string) {
	rr, err := dns.NewRR(record)
	if err != nil {
		panic(err)
	}
	h := rr.Header()
	h.Name = dns.CanonicalName(h.Name)
	if z.rrs[h.Name] == nil {
		z.rrs[h.Name] = map[uint16][]dns.RR{}
	}
	z.rrs[h.Name][h.Rrtype] = append(z.rrs[h.Name][h.Rrtype], rr)
}

// sign adds the DNSKEY and an NSEC chain and signs every RRset; the
// DNSKEY is returned for the resolver's trust anchor.
func (z *zone) sign(t *testing.T) *dns.DNSKEY {
	t.Helper()
	key := &dns.DNSKEY{Hdr: dns.RR_Header{Name: z.origin, Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET, Ttl: 300},
		Flags: 257, Protocol: 3, Algorithm: dns.ECDSAP256SHA256}
	priv, err := key.Generate(256)
	if err != nil {
		t.Fatal(err)
	}
	z.rrs[z.origin][dns.TypeDNSKEY] = []dns.RR{key}
	for o := range z.rrs {
		z.owners = append(z.owners, o)
	}
	sort.Slice(z.owners, func(i, j int) bool { return canonicalLess(z.owners[i], z.owners[j]) })
	for i, o := range z.owners {
		types := []uint16{dns.TypeRRSIG, dns.TypeNSEC}
		for typ := range z.rrs[o] {
			types = append(types, typ)
		}
		sort.Slice(types, func(i, j int) bool { return types[i] < types[j] })
		z.rrs[o][dns.TypeNSEC] = []dns.RR{&dns.NSEC{Hdr: dns.RR_Header{Name: o, Rrtype: dns.TypeNSEC, Class: dns.ClassINET, Ttl: 300},
			NextDomain: z.owners[(i+1)%len(z.owners)], TypeBitMap: types}}
	}
	now := time.Now()
	for o, sets := range z.rrs {
		z.sigs[o] = map[uint16]*dns.RRSIG{}
		for typ, set := range sets {
			if typ == dns.TypeNS && o != z.origin {
				continue // a delegation's NS set is not signed (RFC 4035 §2.2)
			}
			sig := &dns.RRSIG{Hdr: dns.RR_Header{Ttl: 300}, Algorithm: dns.ECDSAP256SHA256, KeyTag: key.KeyTag(), SignerName: z.origin,
				Inception: uint32(now.Add(-time.Hour).Unix()), Expiration: uint32(now.Add(24 * time.Hour).Unix())}
			if err := sig.Sign(priv.(crypto.Signer), set); err != nil {
				t.Fatal(err)
			}
			z.sigs[o][typ] = sig
		}
	}
	return key
}

// tamper replaces an RRset's data after signing, as an attacker on the
// path would: its signature no longer verifies.
func (z *zone) tamper(record string) {
	rr, err := dns.NewRR(record)
	if err != nil {
		panic(err)
	}
	h := rr.Header()
	h.Name = dns.CanonicalName(h.Name)
	z.rrs[h.Name][h.Rrtype] = []dns.RR{rr}
}

// canonicalLess is RFC 4034 §6.1 order for plain lower-case names.
func canonicalLess(a, b string) bool {
	la, lb := dns.SplitDomainName(a), dns.SplitDomainName(b)
	for i := 1; i <= len(la) && i <= len(lb); i++ {
		x, y := la[len(la)-i], lb[len(lb)-i]
		if x != y {
			return x < y
		}
	}
	return len(la) < len(lb)
}

// answer fills m for q from z.
func (z *zone) answer(m *dns.Msg, q dns.Question, do bool) {
	signed := len(z.owners) > 0
	with := func(section *[]dns.RR, owner string, typ uint16) {
		*section = append(*section, z.rrs[owner][typ]...)
		if sig := z.sigs[owner][typ]; signed && do && sig != nil {
			*section = append(*section, sig)
		}
	}
	name := dns.CanonicalName(q.Name)
	if sets, ok := z.rrs[name]; ok {
		if _, ok := sets[q.Qtype]; ok {
			with(&m.Answer, name, q.Qtype)
			return
		}
		with(&m.Ns, z.origin, dns.TypeSOA) // NODATA
		if signed && do {
			with(&m.Ns, name, dns.TypeNSEC)
		}
		return
	}
	m.Rcode = dns.RcodeNameError
	with(&m.Ns, z.origin, dns.TypeSOA)
	if signed && do {
		// The NSEC covering the name, and the apex's, which covers the
		// wildcard *.<origin> (it sorts first).
		cover := z.owners[0]
		for _, o := range z.owners {
			if canonicalLess(o, name) {
				cover = o
			}
		}
		with(&m.Ns, cover, dns.TypeNSEC)
		if cover != z.origin {
			with(&m.Ns, z.origin, dns.TypeNSEC)
		}
	}
}

// authServer serves zones on a loopback UDP and TCP port.
type authServer struct {
	mu    sync.Mutex
	zones []*zone
	addr  string
}

func startAuth(t *testing.T, zones ...*zone) *authServer {
	t.Helper()
	a := &authServer{zones: zones}
	pc, l := testenv.ListenDNS(t)
	a.addr = pc.LocalAddr().String()
	for _, s := range []*dns.Server{{PacketConn: pc, Handler: a}, {Listener: l, Handler: a}} {
		go func() { _ = s.ActivateAndServe() }()
		t.Cleanup(func() { _ = s.Shutdown() })
	}
	return a
}

func (a *authServer) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	if len(r.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		_ = w.WriteMsg(m)
		return
	}
	q := r.Question[0]
	do := r.IsEdns0() != nil && r.IsEdns0().Do()
	a.mu.Lock()
	var best *zone
	qname := dns.CanonicalName(q.Name)
	for _, z := range a.zones {
		if q.Qtype == dns.TypeDS && z.origin == qname {
			continue // a DS lives in the parent zone
		}
		if dns.IsSubDomain(z.origin, qname) && (best == nil || len(z.origin) > len(best.origin)) {
			best = z
		}
	}
	if best == nil {
		m.Rcode = dns.RcodeRefused
	} else {
		best.answer(m, q, do)
	}
	a.mu.Unlock()
	if opt := r.IsEdns0(); opt != nil {
		m.SetEdns0(4096, do)
	}
	_ = w.WriteMsg(m)
}

// startUnbound runs Unbound as a validating resolver for test. in front
// of auth, trusting anchors.
func startUnbound(t *testing.T, auth string, anchors ...*dns.DNSKEY) string {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: runs unbound (not with -short)")
	}
	bin, err := exec.LookPath("unbound")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/unbound"); serr == nil {
			bin = "/usr/sbin/unbound"
		} else if os.Getenv("CI") != "" {
			t.Fatalf("unbound is not installed, and CI must run the DNSSEC test: .ci/run installs it (apt-get install unbound)")
		} else {
			t.Skip("unbound is not installed (apt-get install unbound): the DNSSEC test needs it as the validating resolver")
		}
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := pc.LocalAddr().(*net.UDPAddr).Port
	pc.Close()
	dir := t.TempDir()
	host, authPort, _ := net.SplitHostPort(auth)
	var ta strings.Builder
	for _, k := range anchors {
		fmt.Fprintf(&ta, "  trust-anchor: \"%s DNSKEY %d %d %d %s\"\n", k.Hdr.Name, k.Flags, k.Protocol, k.Algorithm, k.PublicKey)
	}
	conf := fmt.Sprintf(`server:
  interface: 127.0.0.1
  port: %d
  do-ip6: no
  do-daemonize: no
  use-syslog: no
  logfile: "%s"
  verbosity: 1
  chroot: ""
  username: ""
  directory: "%s"
  pidfile: "%s"
  num-threads: 1
  access-control: 127.0.0.0/8 allow
  do-not-query-localhost: no
  module-config: "validator iterator"
  local-zone: "test." nodefault
  qname-minimisation: no
  ede: yes
  val-log-level: 2
%sremote-control:
  control-enable: no
stub-zone:
  name: "test."
  stub-addr: %s@%s
`, port, filepath.Join(dir, "unbound.log"), dir, filepath.Join(dir, "unbound.pid"), ta.String(), host, authPort)
	path := filepath.Join(dir, "unbound.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := exec.Command(bin, "-d", "-c", path)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting unbound: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "unbound.log"))
			t.Logf("unbound output:\n%s%s", out.String(), log)
		}
	})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(10 * time.Second)
	for {
		m := new(dns.Msg)
		m.SetQuestion("test.", dns.TypeSOA)
		c := &dns.Client{Timeout: 500 * time.Millisecond}
		if r, _, err := c.Exchange(m, addr); err == nil && r.Rcode == dns.RcodeSuccess {
			return addr
		}
		select {
		case err := <-exited:
			exited <- err
			log, _ := os.ReadFile(filepath.Join(dir, "unbound.log"))
			t.Fatalf("unbound exited: %v\n%s%s", err, out.String(), log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("unbound did not answer on %s within 10s", addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestDNSSEC: through Unbound, a validly signed answer passes (with the AD
// bit), a tampered one is a bogus lookup failure, never "no record" nor
// permission, and an unsigned zone proceeds.
func TestDNSSEC(t *testing.T) {
	start := time.Now()
	secure := newZone("secure.test.",
		`_certflow-challenge.secure.test. 300 IN TXT "good-token"`,
		`_certflow-challenge.tampered.secure.test. 300 IN TXT "the-owners-token"`,
		`www.secure.test. 300 IN A 192.0.2.1`,
		`secure.test. 300 IN CAA 0 issue "certflow.test"`,
		`caa.tampered.secure.test. 300 IN CAA 0 issue "other-ca.example"`,
		`nosig.secure.test. 300 IN CAA 0 issue "certflow.test"`,
	)
	childKey := secure.sign(t)
	// An attacker's answers: the signatures are the zone's, the data not.
	secure.tamper(`_certflow-challenge.tampered.secure.test. 300 IN TXT "the-attackers-token"`)
	secure.tamper(`caa.tampered.secure.test. 300 IN CAA 0 issue "certflow.test"`)
	delete(secure.sigs["nosig.secure.test."], dns.TypeCAA) // stripped signature
	insecure := newZone("insecure.test.",
		`_certflow-challenge.insecure.test. 300 IN TXT "plain-token"`,
		`insecure.test. 300 IN CAA 0 issue "certflow.test"`,
	)
	// A signed zone whose parent's DS names another key: a broken chain.
	broken := newZone("brokenchain.test.", `_certflow-challenge.brokenchain.test. 300 IN TXT "token"`)
	broken.sign(t)
	stranger := newZone("brokenchain.test.")
	parent := newZone("test.",
		"secure.test. 300 IN NS ns.secure.test.",
		childKey.ToDS(dns.SHA256).String(),
		"brokenchain.test. 300 IN NS ns.brokenchain.test.",
		stranger.sign(t).ToDS(dns.SHA256).String(),
		"insecure.test. 300 IN NS ns.insecure.test.", // no DS: insecure
	)
	anchor := parent.sign(t)
	auth := startAuth(t, parent, secure, insecure, broken)
	resolver := startUnbound(t, auth.addr, anchor)

	r, err := dcv.NewResolver(dcv.ResolverOptions{Servers: []string{resolver}, Timeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	checker := dcv.DNSChecker{Resolver: r}

	// The resolver does validate: the signed answer carries AD, the
	// unsigned one does not.
	for _, tt := range []struct {
		name string
		ad   bool
	}{{"_certflow-challenge.secure.test.", true}, {"_certflow-challenge.insecure.test.", false}} {
		m := new(dns.Msg)
		m.SetQuestion(tt.name, dns.TypeTXT)
		m.SetEdns0(1232, true)
		resp, _, err := (&dns.Client{Timeout: 3 * time.Second}).Exchange(m, resolver)
		if err != nil || resp.Rcode != dns.RcodeSuccess || resp.AuthenticatedData != tt.ad {
			t.Fatalf("unbound TXT %s = %v, %v; want NOERROR with AD %v", tt.name, resp, err, tt.ad)
		}
	}

	// Domain validation.
	if err := checker.CheckTXT(ctx, "_certflow-challenge.secure.test", "good-token"); err != nil {
		t.Errorf("CheckTXT(signed, valid) = %v; want nil", err)
	}
	if err := checker.CheckTXT(ctx, "_certflow-challenge.insecure.test", "plain-token"); err != nil {
		t.Errorf("CheckTXT(unsigned zone) = %v; want nil: an insecure zone proceeds", err)
	}
	for _, want := range []string{"the-attackers-token", "the-owners-token"} {
		err := checker.CheckTXT(ctx, "_certflow-challenge.tampered.secure.test", want)
		if !errors.Is(err, dcv.ErrDNSSECBogus) || !errors.Is(err, dcv.ErrLookupFailed) || errors.Is(err, dcv.ErrNotFound) {
			t.Errorf("CheckTXT(tampered, %q) = %v; want a bogus lookup failure", want, err)
		}
	}
	if err := checker.CheckTXT(ctx, "_certflow-challenge.brokenchain.test", "token"); !errors.Is(err, dcv.ErrDNSSECBogus) {
		t.Errorf("CheckTXT(zone whose DS names another key) = %v; want a bogus lookup failure", err)
	}
	if _, err := r.LookupTXT(ctx, "_certflow-challenge.tampered.secure.test"); err == nil || !strings.Contains(err.Error(), "DNSSEC") {
		t.Errorf("LookupTXT(tampered) = %v; want an error naming DNSSEC (Unbound's extended error)", err)
	} else {
		t.Logf("tampered TXT: %v", err)
	}

	// CAA: a signed set permits, a signed NODATA (www has only A) climbs
	// to it, an unsigned zone's set permits, a tampered or unsigned set in
	// a signed zone is a lookup failure, never permission.
	c := &caa.Checker{Resolver: r, Identities: []string{"certflow.test"}, AccountURIBase: "https://certflow.test/accounts"}
	for _, tt := range []struct {
		name         string
		allowed      bool
		lookupFailed bool
	}{
		{"secure.test", true, false},
		{"www.secure.test", true, false},
		{"nothere.secure.test", true, false}, // NXDOMAIN, proven by NSEC
		{"nothere.test", true, false},        // likewise in the parent; CAA at test. is a signed NODATA
		{"insecure.test", true, false},
		{"caa.tampered.secure.test", false, true},
		{"nosig.secure.test", false, true},
	} {
		got, err := c.Check(ctx, caa.Query{Names: []string{tt.name}, Account: "acct-1"})
		if err != nil || got.Allowed != tt.allowed || got.LookupFailed != tt.lookupFailed {
			t.Errorf("CAA Check(%s) = %+v, %v; want allowed %v, lookup failed %v", tt.name, got, err, tt.allowed, tt.lookupFailed)
		}
	}
	t.Logf("DNSSEC test through unbound took %v", time.Since(start).Round(time.Millisecond))
}
