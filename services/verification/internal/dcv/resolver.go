// Package dcv checks domain-control-validation proofs for real: it asks DNS
// through configured servers and fetches HTTP files over the network,
// refusing to reach addresses it must not.
//
// DNSSEC: the configured servers are DNSSEC-validating resolvers that the
// service trusts (reached over loopback or a trusted network). Every query
// sets the DO bit and asks for the AD bit (RFC 6840 §5.7), never CD, so the
// resolver validates. A bogus answer is SERVFAIL from such a resolver: it is
// a failed lookup (ErrDNSSECBogus wraps ErrLookupFailed), never "no record"
// and never permission; the resolver's Extended DNS Error (RFC 8914), if
// any, is in the message. An answer from an unsigned (insecure) zone has no
// AD bit and is used as it is.
package dcv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"
)

var (
	// ErrNoRecords means the name does not exist (NXDOMAIN) or has no records
	// of the asked type (NODATA): a definite answer.
	ErrNoRecords = errors.New("no such record")
	// ErrLookupFailed means no server gave a definite answer (SERVFAIL,
	// REFUSED, timeout, ...): "could not look", never "no record".
	ErrLookupFailed = errors.New("dns lookup failed")
	// ErrDNSSECBogus means the validating resolver found the answer bogus
	// (a signature that does not verify, missing or expired signatures, a
	// broken chain of trust): it wraps ErrLookupFailed.
	ErrDNSSECBogus = fmt.Errorf("%w: DNSSEC validation failed (bogus)", ErrLookupFailed)
)

// CAARecord is one CAA record (RFC 8659).
type CAARecord struct {
	Flag  uint8
	Tag   string
	Value string
}

// ResolverOptions configures NewResolver.
type ResolverOptions struct {
	// Servers are host:port of recursive or authoritative servers, tried in
	// order. Required.
	Servers []string
	// Timeout bounds one query; default 3s.
	Timeout time.Duration
	// Retries is how many times a timed-out UDP query is repeated per server
	// before moving on; 0 means the default 2, negative means none.
	// Truncated answers are always retried over TCP.
	Retries int
}

// Resolver answers DNS questions through its configured servers, never the
// system resolver. It is safe for concurrent use.
type Resolver struct {
	servers []string
	timeout time.Duration
	retries int
}

const (
	defaultTimeout = 3 * time.Second
	defaultRetries = 2
	// maxCNAMEHops bounds CNAME chains, as recursive resolvers do.
	maxCNAMEHops = 8
	// ednsSize avoids IP fragmentation (DNS flag day 2020).
	ednsSize = 1232
)

// NewResolver validates opts and returns a Resolver.
func NewResolver(opts ResolverOptions) (*Resolver, error) {
	if len(opts.Servers) == 0 {
		return nil, errors.New("dcv: resolver needs at least one server")
	}
	for _, s := range opts.Servers {
		host, port, err := net.SplitHostPort(s)
		if err != nil || host == "" || port == "" {
			return nil, fmt.Errorf("dcv: resolver server %q is not host:port", s)
		}
	}
	if opts.Timeout < 0 {
		return nil, fmt.Errorf("dcv: negative resolver timeout %v", opts.Timeout)
	}
	r := &Resolver{
		servers: append([]string(nil), opts.Servers...),
		timeout: opts.Timeout,
		retries: opts.Retries,
	}
	if r.timeout == 0 {
		r.timeout = defaultTimeout
	}
	if r.retries == 0 {
		r.retries = defaultRetries
	} else if r.retries < 0 {
		r.retries = 0
	}
	return r, nil
}

// LookupTXT returns the TXT strings at name, each record's character-strings
// joined, following CNAMEs. No records is ErrNoRecords; no answer is
// ErrLookupFailed.
func (r *Resolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	rrs, err := r.lookup(ctx, name, dns.TypeTXT)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(rrs))
	for _, rr := range rrs {
		var b strings.Builder
		for _, s := range rr.(*dns.TXT).Txt {
			b.WriteString(unescape(s))
		}
		out = append(out, b.String())
	}
	return out, nil
}

// LookupCNAME returns the target of the CNAME at name (fully qualified,
// lower-case), or ErrNoRecords if name is not an alias.
func (r *Resolver) LookupCNAME(ctx context.Context, name string) (string, error) {
	rrs, err := r.lookup(ctx, name, dns.TypeCNAME)
	if err != nil {
		return "", err
	}
	return dns.CanonicalName(rrs[0].(*dns.CNAME).Target), nil
}

// LookupIP returns the A and AAAA addresses of host, following CNAMEs.
// Addresses from one family are returned even if the other lookup failed;
// with none, a failure wins over ErrNoRecords.
func (r *Resolver) LookupIP(ctx context.Context, host string) ([]netip.Addr, error) {
	type result struct {
		rrs []dns.RR
		err error
	}
	aaaa := make(chan result, 1)
	go func() {
		rrs, err := r.lookup(ctx, host, dns.TypeAAAA)
		aaaa <- result{rrs, err}
	}()
	rrs4, err4 := r.lookup(ctx, host, dns.TypeA)
	res6 := <-aaaa

	var addrs []netip.Addr
	for _, rr := range append(rrs4, res6.rrs...) {
		var ip netip.Addr
		switch rr := rr.(type) {
		case *dns.A:
			ip, _ = netip.AddrFromSlice(rr.A)
		case *dns.AAAA:
			ip, _ = netip.AddrFromSlice(rr.AAAA)
		}
		if ip.IsValid() {
			addrs = append(addrs, ip.Unmap())
		}
	}
	if len(addrs) > 0 {
		return addrs, nil
	}
	for _, err := range []error{err4, res6.err} {
		if err != nil && !errors.Is(err, ErrNoRecords) {
			return nil, err
		}
	}
	if err4 != nil {
		return nil, err4
	}
	return nil, fmt.Errorf("%w: no A or AAAA at %s", ErrNoRecords, host)
}

// LookupCAA returns the CAA records at exactly name (no climbing to
// parents), following CNAMEs.
func (r *Resolver) LookupCAA(ctx context.Context, name string) ([]CAARecord, error) {
	rrs, err := r.lookup(ctx, name, dns.TypeCAA)
	if err != nil {
		return nil, err
	}
	out := make([]CAARecord, 0, len(rrs))
	for _, rr := range rrs {
		c := rr.(*dns.CAA)
		out = append(out, CAARecord{Flag: c.Flag, Tag: c.Tag, Value: c.Value})
	}
	return out, nil
}

// lookup returns the qtype records at name, following CNAMEs (unless qtype
// is CNAME). A chain leaving one answer without data is continued by asking
// for its end, since an authoritative server only chases in-zone targets.
func (r *Resolver) lookup(ctx context.Context, name string, qtype uint16) ([]dns.RR, error) {
	qname, err := fqdn(name)
	if err != nil {
		return nil, err
	}
	typ := dns.TypeToString[qtype]
	cur, hops := qname, 0
	for {
		resp, err := r.exchange(ctx, cur, qtype)
		if err != nil {
			return nil, err
		}
		asked := cur
		for {
			if rrs := rrsAt(resp.Answer, cur, qtype); len(rrs) > 0 {
				return rrs, nil
			}
			target, ok := cnameAt(resp.Answer, cur)
			if !ok || qtype == dns.TypeCNAME {
				break
			}
			// A loop or overlong chain is what recursive resolvers SERVFAIL.
			if hops++; hops > maxCNAMEHops {
				return nil, fmt.Errorf("%w: %s %s: more than %d CNAMEs", ErrLookupFailed, typ, qname, maxCNAMEHops)
			}
			cur = target
		}
		if cur == asked || resp.Rcode == dns.RcodeNameError {
			how := "NODATA"
			if resp.Rcode == dns.RcodeNameError {
				how = "NXDOMAIN"
			}
			if cur != qname {
				return nil, fmt.Errorf("%w: %s at %s (via CNAME to %s: %s)", ErrNoRecords, typ, qname, cur, how)
			}
			return nil, fmt.Errorf("%w: %s at %s (%s)", ErrNoRecords, typ, qname, how)
		}
	}
}

// exchange asks the servers in order until one gives a definite answer
// (NOERROR or NXDOMAIN).
func (r *Resolver) exchange(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.SetEdns0(ednsSize, true) // DO: the resolver validates and says so
	m.AuthenticatedData = true
	m.CheckingDisabled = false

	var problems []string
	bogus := false
	for _, server := range r.servers {
		resp, err := r.exchangeServer(ctx, m, server)
		switch {
		case err != nil:
			problems = append(problems, err.Error())
		case resp.Rcode == dns.RcodeSuccess || resp.Rcode == dns.RcodeNameError:
			return resp, nil
		default:
			p := fmt.Sprintf("%s answered %s", server, dns.RcodeToString[resp.Rcode])
			if ede, ok := dnssecError(resp); ok {
				p += " (" + ede + ")"
				bogus = true
			}
			problems = append(problems, p)
		}
		if ctx.Err() != nil {
			break
		}
	}
	typ := dns.TypeToString[qtype]
	kind := ErrLookupFailed
	if bogus {
		kind = ErrDNSSECBogus
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%w: %s %s: %s: %w", kind, typ, name, strings.Join(problems, "; "), err)
	}
	return nil, fmt.Errorf("%w: %s %s: %s", kind, typ, name, strings.Join(problems, "; "))
}

// exchangeServer asks one server over UDP, repeating on error, and over TCP
// when the UDP answer is truncated or arrived but could not be read: a
// server that ignores our EDNS buffer size sends a datagram larger than the
// buffer, which arrives cut short and does not parse.
func (r *Resolver) exchangeServer(ctx context.Context, m *dns.Msg, server string) (*dns.Msg, error) {
	var err error
	for attempt := 0; attempt <= r.retries; attempt++ {
		var resp *dns.Msg
		resp, err = r.exchangeOnce(ctx, m, server, "udp")
		var netErr net.Error
		if err == nil && resp.Truncated || err != nil && ctx.Err() == nil && !errors.As(err, &netErr) {
			resp, err = r.exchangeOnce(ctx, m, server, "tcp")
		}
		if err == nil {
			return resp, nil
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("%s: %w", server, err)
}

func (r *Resolver) exchangeOnce(ctx context.Context, m *dns.Msg, server, network string) (*dns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	c := &dns.Client{Net: network, Timeout: r.timeout}
	conn, err := c.DialContext(ctx, server)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	// miekg/dns only honours the context's deadline; unblock on cancel too.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	resp, _, err := c.ExchangeWithConnContext(ctx, m, conn)
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return nil, fmt.Errorf("%s: %w", network, cerr)
		}
		return nil, fmt.Errorf("%s: %w", network, err)
	}
	q := m.Question[0]
	if len(resp.Question) != 1 || !strings.EqualFold(resp.Question[0].Name, q.Name) || resp.Question[0].Qtype != q.Qtype {
		return nil, fmt.Errorf("%s: answer is for another question", network)
	}
	return resp, nil
}

// dnssecError describes the DNSSEC Extended DNS Error (RFC 8914 codes 1-12:
// unsupported algorithm or digest, DNSSEC Bogus, signature expired or not
// yet valid, DNSKEY, RRSIG or NSEC missing, ...) in a failed answer.
func dnssecError(resp *dns.Msg) (string, bool) {
	opt := resp.IsEdns0()
	if opt == nil {
		return "", false
	}
	for _, o := range opt.Option {
		ede, ok := o.(*dns.EDNS0_EDE)
		if !ok || ede.InfoCode < dns.ExtendedErrorCodeUnsupportedDNSKEYAlgorithm || ede.InfoCode > dns.ExtendedErrorCodeNSECMissing {
			continue
		}
		s := "DNSSEC: " + dns.ExtendedErrorCodeToString[ede.InfoCode]
		if t := strings.TrimSpace(ede.ExtraText); t != "" {
			if len(t) > 200 {
				t = t[:200] + "..."
			}
			s += ": " + t
		}
		return s, true
	}
	return "", false
}

// fqdn validates name and returns it fully qualified and lower-case.
func fqdn(name string) (string, error) {
	name = strings.TrimSpace(name)
	if _, ok := dns.IsDomainName(name); !ok || name == "" || name == "." {
		return "", fmt.Errorf("dcv: invalid domain name %q", name)
	}
	return dns.CanonicalName(name), nil
}

func rrsAt(rrs []dns.RR, owner string, qtype uint16) []dns.RR {
	var out []dns.RR
	for _, rr := range rrs {
		h := rr.Header()
		if h.Rrtype == qtype && h.Class == dns.ClassINET && strings.EqualFold(h.Name, owner) {
			out = append(out, rr)
		}
	}
	return out
}

func cnameAt(rrs []dns.RR, owner string) (string, bool) {
	for _, rr := range rrs {
		if c, ok := rr.(*dns.CNAME); ok && c.Hdr.Class == dns.ClassINET && strings.EqualFold(c.Hdr.Name, owner) {
			return dns.CanonicalName(c.Target), true
		}
	}
	return "", false
}

// unescape turns a miekg/dns TXT character-string, which is in presentation
// format (\" \\ \DDD), back into its bytes.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 == len(s) {
			b = append(b, s[i])
			continue
		}
		i++
		if i+2 < len(s) && isDigit(s[i]) && isDigit(s[i+1]) && isDigit(s[i+2]) {
			b = append(b, (s[i]-'0')*100+(s[i+1]-'0')*10+(s[i+2]-'0'))
			i += 2
			continue
		}
		b = append(b, s[i])
	}
	return string(b)
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
