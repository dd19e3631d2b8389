package suite_test

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/certflow/certflow/pkg/testenv"
	"github.com/certflow/certflow/services/suite/suite"
)

// slowDNS sits in front of the test's DNS server: it forwards every query
// over the transport it came on (so a truncated UDP answer makes the
// resolver come back over TCP), except names under slow.abuse.test, which
// it answers only after 30 seconds, long after any resolver gave up.
type slowDNS struct {
	addr     string
	upstream atomic.Value // host:port
	stop     chan struct{}
	servers  []*dns.Server
}

func startSlowDNS(t *testing.T) *slowDNS {
	t.Helper()
	d := &slowDNS{stop: make(chan struct{})}
	pc, ln := testenv.ListenDNS(t)
	d.addr = pc.LocalAddr().String()
	h := dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		if len(req.Question) == 1 && strings.HasSuffix(req.Question[0].Name, "slow.abuse.test.") {
			select {
			case <-time.After(30 * time.Second):
			case <-d.stop:
				return
			}
		}
		up, _ := d.upstream.Load().(string)
		_, udp := w.RemoteAddr().(*net.UDPAddr)
		// Names under oversized.abuse.test get the whole answer even over
		// UDP, as a server ignoring the EDNS buffer size would send it.
		oversized := len(req.Question) == 1 && strings.HasSuffix(req.Question[0].Name, "oversized.abuse.test.")
		c := &dns.Client{Net: "tcp", Timeout: 5 * time.Second}
		if udp && !oversized {
			c.Net = "udp"
		}
		resp, _, err := c.Exchange(req, up)
		if err != nil {
			resp = new(dns.Msg)
			resp.SetRcode(req, dns.RcodeServerFailure)
		}
		resp.Compress = true
		if udp && !oversized {
			size := dns.MinMsgSize
			if opt := req.IsEdns0(); opt != nil {
				size = max(int(opt.UDPSize()), dns.MinMsgSize)
			}
			resp.Truncate(size)
		}
		_ = w.WriteMsg(resp)
	})
	d.servers = []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: ln, Handler: h}}
	for _, s := range d.servers {
		go func() { _ = s.ActivateAndServe() }()
	}
	t.Cleanup(func() {
		close(d.stop)
		for _, s := range d.servers {
			_ = s.Shutdown()
		}
	})
	return d
}

// TestAbuseDomainValidation: HTTP proofs that redirect to private,
// loopback and metadata addresses are refused with the address and why;
// a DNS answer too large for UDP is read over TCP; a DNS server that does
// not answer in time leaves the challenge pending with the cause, and the
// check returns instead of hanging. Validation may reach the one loopback
// web server of the test and nothing else private.
func TestAbuseDomainValidation(t *testing.T) {
	front := startSlowDNS(t)
	var content sync.Map // host -> proof
	var port int
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.Host)
		to := func(h string) {
			http.Redirect(w, r, "http://"+net.JoinHostPort(h, strconv.Itoa(port))+r.URL.Path, http.StatusFound)
		}
		switch {
		case strings.HasPrefix(host, "to-private."):
			to("10.0.0.1")
		case strings.HasPrefix(host, "to-loopback."):
			to("127.0.0.2")
		case strings.HasPrefix(host, "to-metadata."):
			to("169.254.169.254")
		case strings.HasPrefix(host, "to-v6-loopback."):
			to("::1")
		case strings.HasPrefix(host, "to-internal-name."):
			to("internal.abuse.test")
		default:
			if v, ok := content.Load(host); ok {
				fmt.Fprint(w, v)
				return
			}
			http.NotFound(w, r)
		}
	}))
	defer web.Close()
	_, p, _ := net.SplitHostPort(web.Listener.Addr().String())
	port, _ = strconv.Atoi(p)

	e := startWith(t, func(o *suite.Options) {
		o.DNSServers = front.addr
		o.DCVHTTPPort = port
		o.DCVAllowAddresses = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	})
	front.upstream.Store(e.dns.Addr())
	e.dns.SetA("internal.abuse.test", "10.0.0.1")
	key := e.s.APIKey

	submit := func(domain, method string) obj {
		t.Helper()
		inst := e.buy(t, key, "products/dv-single-1y", 1)
		app := e.apply(t, obj{"instance": inst[0], "domains": []string{domain}, "applicant": applicant(), "validation_method": method})
		return asList(e.submit(t, app)["challenges"])[0].(obj)
	}
	check := func(ch obj) (obj, time.Duration) {
		t.Helper()
		var got obj
		start := time.Now()
		if code := e.call(t, key, "POST", "/v1/"+ch["name"].(string)+":check", obj{}, &got); code != 200 {
			t.Fatalf("check %s = %d %v", ch["domain"], code, got)
		}
		return got, time.Since(start)
	}

	// HTTP: the allowed server itself passes; every redirect off it to a
	// private address is refused, naming the address and its kind.
	direct := submit("direct.abuse.test", "VALIDATION_METHOD_HTTP_FILE")
	content.Store("direct.abuse.test", direct["http_content"])
	if got, _ := check(direct); got["state"] != "VERIFIED" {
		t.Errorf("HTTP proof on the allowed server = %v (%v); want VERIFIED", got["state"], got["last_error"])
	}
	for _, tt := range []struct{ host, want string }{
		{"to-private.abuse.test", "10.0.0.1 is private"},
		{"to-loopback.abuse.test", "127.0.0.2 is loopback"},
		{"to-metadata.abuse.test", "169.254.169.254 is link-local"},
		{"to-v6-loopback.abuse.test", "::1 is loopback"},
		{"to-internal-name.abuse.test", "10.0.0.1 is private"},
	} {
		ch := submit(tt.host, "VALIDATION_METHOD_HTTP_FILE")
		got, _ := check(ch)
		if msg, _ := got["last_error"].(string); got["state"] != "PENDING" || !strings.Contains(msg, "address not allowed") || !strings.Contains(msg, tt.want) {
			t.Errorf("HTTP proof redirected off %s = %v %q; want PENDING, the cause naming %q", tt.host, got["state"], msg, tt.want)
		}
	}

	// DNS: 150 TXT records of 250 bytes (about 38 KB, far over UDP's 1,232)
	// are read over TCP, with and without the proof among them.
	junk := make([]string, 150)
	for i := range junk {
		junk[i] = fmt.Sprintf("%03d", i) + strings.Repeat("x", 247)
	}
	// The same from a server that sends it whole over UDP, cut short by
	// the resolver's buffer: asked again over TCP.
	for _, domain := range []string{"huge.abuse.test", "x.oversized.abuse.test"} {
		ch := submit(domain, "VALIDATION_METHOD_DNS_TXT")
		e.dns.SetTXT(ch["dns_record_name"].(string), junk...)
		if got, _ := check(ch); got["state"] != "PENDING" || !strings.Contains(fmt.Sprint(got["last_error"]), ch["dns_record_name"].(string)) ||
			strings.Contains(fmt.Sprint(got["last_error"]), "lookup failed") {
			t.Errorf("%s: 38 KB of TXT without the proof = %v %q; want PENDING, the records read and the proof not among them", domain, got["state"], got["last_error"])
		}
		e.dns.SetTXT(ch["dns_record_name"].(string), append(junk, ch["dns_record_value"].(string))...)
		if got, _ := check(ch); got["state"] != "VERIFIED" {
			t.Errorf("%s: 38 KB of TXT with the proof = %v %q; want VERIFIED (read over TCP)", domain, got["state"], got["last_error"])
		}
	}

	// A server that answers after 30 s: the check comes back with a
	// lookup failure (to be retried), and the challenge stays pending.
	slow := submit("x.slow.abuse.test", "VALIDATION_METHOD_DNS_TXT")
	got, took := check(slow)
	if msg := fmt.Sprint(got["last_error"]); got["state"] != "PENDING" || !strings.Contains(msg, "dns lookup failed") {
		t.Errorf("TXT from a server that does not answer = %v %q; want PENDING with a lookup failure", got["state"], msg)
	}
	t.Logf("DNS that answers after 30 s: the check answered in %v with %q", took.Round(100*time.Millisecond), got["last_error"])
}
