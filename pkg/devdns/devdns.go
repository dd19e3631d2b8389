// Package devdns is a small authoritative DNS server for development and
// tests. It answers from an in-memory record set that callers (or the admin
// HTTP API) change at run time, so domain-control validation can pass on a
// machine with no public DNS.
//
// The admin API (JSON; errors are {"error": "..."}):
//
//	curl -X PUT -d '{"values":["token"]}' $ADMIN/records/_pki-validation.example.test/TXT      # 204
//	curl -X PUT -d '{"values":["127.0.0.1"]}' $ADMIN/records/example.test/A                    # 204
//	curl -X PUT -d '{"values":["target.example."]}' $ADMIN/records/www.example.test/CNAME      # 204
//	curl -X PUT -d '{"records":[{"flag":0,"tag":"issue","value":"certflow.test"}]}' $ADMIN/records/example.test/CAA
//	curl -X DELETE $ADMIN/records/example.test                                                 # 204
//	curl $ADMIN/records                                                                        # 200, all records
package devdns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// CAA is one CAA record (RFC 8659).
type CAA struct {
	Flag  uint8  `json:"flag"`
	Tag   string `json:"tag"`
	Value string `json:"value"`
}

// Options configures Start.
type Options struct {
	// Addr is where DNS is served, UDP and TCP on the same port.
	// "127.0.0.1:0" picks a random port; "" means "127.0.0.1:0".
	Addr string
	// DefaultA, if set (e.g. "127.0.0.1"), answers A queries for names with
	// no A record, so HTTP challenges reach a local web server. Every name
	// then exists: AAAA and other types with no records answer NODATA, never
	// NXDOMAIN.
	DefaultA string
	// AdminAddr, if set, is where the admin HTTP API listens.
	AdminAddr string
	// Logger receives query and admin logs; nil discards them.
	Logger *slog.Logger
}

// Server is a running authoritative DNS server. Its methods are safe for
// concurrent use.
type Server struct {
	log      *slog.Logger
	defaultA netip.Addr // invalid when unset

	udp, tcp *dns.Server
	admin    *http.Server
	addr     string
	adminURL string
	wg       sync.WaitGroup

	mu    sync.RWMutex
	nodes map[string]*node // keyed by canonical (lower-case, fully qualified) name

	closeOnce sync.Once
	closeErr  error
}

// node holds everything known at one name.
type node struct {
	txt   []string
	addrs []netip.Addr // IPv4 served as A, IPv6 as AAAA
	cname string
	caa   []CAA
	fail  bool
	rcode int
}

func (n *node) empty() bool {
	return len(n.txt) == 0 && len(n.addrs) == 0 && n.cname == "" && len(n.caa) == 0 && !n.fail
}

func (n *node) hasRecords() bool {
	return len(n.txt) > 0 || len(n.addrs) > 0 || n.cname != "" || len(n.caa) > 0
}

const (
	// ttl is zero so nothing in front of us caches records tests change.
	ttl = 0
	// maxChain bounds CNAME chasing inside our own data.
	maxChain = 8
	// udpSize is the EDNS0 buffer we advertise and read with.
	udpSize = 1232
)

// Start listens on opts.Addr (UDP and TCP) and, if set, opts.AdminAddr, and
// serves until Close. ctx bounds only the start-up.
func Start(ctx context.Context, opts Options) (*Server, error) {
	s := &Server{
		log:   opts.Logger,
		nodes: make(map[string]*node),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if opts.DefaultA != "" {
		ip, err := netip.ParseAddr(opts.DefaultA)
		if err != nil || !ip.Is4() {
			return nil, fmt.Errorf("devdns: DefaultA %q is not an IPv4 address", opts.DefaultA)
		}
		s.defaultA = ip
	}
	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}

	pc, ln, err := listenDNS(ctx, addr)
	if err != nil {
		return nil, fmt.Errorf("devdns: listen on %s: %w", addr, err)
	}
	s.addr = pc.LocalAddr().String()

	h := dns.HandlerFunc(s.serveDNS)
	started := make(chan struct{}, 2)
	notify := func() { started <- struct{}{} }
	s.udp = &dns.Server{PacketConn: pc, Handler: h, UDPSize: udpSize, NotifyStartedFunc: notify}
	s.tcp = &dns.Server{Listener: ln, Handler: h, NotifyStartedFunc: notify}
	errc := make(chan error, 2)
	for _, srv := range []*dns.Server{s.udp, s.tcp} {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := srv.ActivateAndServe(); err != nil {
				errc <- err
			}
		}()
	}
	// Wait for both loops, so Close never races a server that has not started.
	for range 2 {
		select {
		case <-started:
		case err := <-errc:
			pc.Close()
			ln.Close()
			s.wg.Wait()
			return nil, fmt.Errorf("devdns: serve: %w", err)
		}
	}

	if opts.AdminAddr != "" {
		var lc net.ListenConfig
		aln, err := lc.Listen(ctx, "tcp", opts.AdminAddr)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("devdns: admin listen on %s: %w", opts.AdminAddr, err)
		}
		s.adminURL = "http://" + aln.Addr().String()
		s.admin = &http.Server{
			Handler:           s.adminHandler(),
			ReadHeaderTimeout: 5 * time.Second,
			ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := s.admin.Serve(aln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("devdns admin server stopped", "err", err)
			}
		}()
	}
	s.log.Info("devdns listening", "addr", s.addr, "admin", s.adminURL)
	return s, nil
}

// listenDNS binds UDP and TCP on the same port. With port 0 the random UDP
// port may be taken for TCP, so it tries a few ports.
func listenDNS(ctx context.Context, addr string) (net.PacketConn, net.Listener, error) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, err
	}
	var lc net.ListenConfig
	for attempt := 0; ; attempt++ {
		pc, err := lc.ListenPacket(ctx, "udp", addr)
		if err != nil {
			return nil, nil, err
		}
		ln, err := lc.Listen(ctx, "tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln, nil
		}
		pc.Close()
		if port != "0" || attempt == 9 {
			return nil, nil, err
		}
	}
}

// Addr returns the host:port of the DNS listener (UDP and TCP).
func (s *Server) Addr() string { return s.addr }

// AdminURL returns "http://host:port" of the admin API, or "" if disabled.
func (s *Server) AdminURL() string { return s.adminURL }

// Close stops all listeners and waits for them to finish.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var errs []error
		for _, srv := range []*dns.Server{s.udp, s.tcp} {
			if err := srv.ShutdownContext(ctx); err != nil {
				errs = append(errs, err)
			}
		}
		if s.admin != nil {
			if err := s.admin.Shutdown(ctx); err != nil {
				errs = append(errs, err)
			}
		}
		s.wg.Wait()
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// canonical returns name lower-case and fully qualified.
func canonical(name string) string {
	return dns.CanonicalName(strings.TrimSpace(name))
}

// update applies f to the node at name, creating it if needed and dropping
// it when nothing is left.
func (s *Server) update(name string, f func(n *node)) {
	name = canonical(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.nodes[name]
	if n == nil {
		n = &node{}
	}
	f(n)
	if n.empty() {
		delete(s.nodes, name)
		return
	}
	s.nodes[name] = n
}

// SetTXT replaces the TXT set at name. No values removes it.
func (s *Server) SetTXT(name string, values ...string) {
	s.update(name, func(n *node) {
		n.txt = append([]string(nil), values...)
		if len(values) > 0 {
			n.cname = "" // a CNAME cannot coexist with other data (RFC 1034 §3.6.2)
		}
	})
}

// SetA replaces the address set at name. IPv4 addresses are served as A
// records and IPv6 addresses as AAAA. It panics on an invalid address, since
// that is a bug in the caller's literal.
func (s *Server) SetA(name string, ips ...string) {
	addrs, err := parseAddrs(ips)
	if err != nil {
		panic(fmt.Sprintf("devdns: SetA(%q): %v", name, err))
	}
	s.setAddrs(name, addrs)
}

func parseAddrs(ips []string) ([]netip.Addr, error) {
	addrs := make([]netip.Addr, 0, len(ips))
	for _, v := range ips {
		ip, err := netip.ParseAddr(strings.TrimSpace(v))
		if err != nil || ip.Zone() != "" {
			return nil, fmt.Errorf("invalid IP address %q", v)
		}
		addrs = append(addrs, ip.Unmap())
	}
	return addrs, nil
}

func (s *Server) setAddrs(name string, addrs []netip.Addr) {
	s.update(name, func(n *node) {
		n.addrs = addrs
		if len(addrs) > 0 {
			n.cname = ""
		}
	})
}

// SetCNAME makes name an alias of target, replacing any other records at
// name. An empty target removes the CNAME.
func (s *Server) SetCNAME(name, target string) {
	s.update(name, func(n *node) {
		if target == "" {
			n.cname = ""
			return
		}
		*n = node{cname: canonical(target), fail: n.fail, rcode: n.rcode}
	})
}

// SetCAA replaces the CAA set at name.
func (s *Server) SetCAA(name string, records ...CAA) {
	s.update(name, func(n *node) {
		n.caa = append([]CAA(nil), records...)
		if len(records) > 0 {
			n.cname = ""
		}
	})
}

// Delete removes every record at name, and any FailWith.
func (s *Server) Delete(name string) {
	s.update(name, func(n *node) { *n = node{} })
}

// FailWith makes every query at name answer rcode (e.g.
// dns.RcodeServerFailure) with no records, until Delete.
func (s *Server) FailWith(name string, rcode int) {
	s.update(name, func(n *node) {
		n.fail = true
		n.rcode = rcode
	})
}

func (s *Server) serveDNS(w dns.ResponseWriter, req *dns.Msg) {
	resp := new(dns.Msg)
	resp.SetReply(req)
	resp.Authoritative = true
	resp.RecursionAvailable = false

	switch {
	case req.Opcode != dns.OpcodeQuery:
		resp.Rcode = dns.RcodeNotImplemented
	case len(req.Question) != 1:
		resp.Rcode = dns.RcodeFormatError
	case req.Question[0].Qclass != dns.ClassINET:
		resp.Rcode = dns.RcodeRefused
	default:
		s.answer(resp, req.Question[0])
	}

	opt := req.IsEdns0()
	if opt != nil {
		resp.SetEdns0(udpSize, false)
	}
	if _, isUDP := w.RemoteAddr().(*net.UDPAddr); isUDP {
		size := dns.MinMsgSize
		if opt != nil {
			size = max(int(opt.UDPSize()), dns.MinMsgSize)
		}
		resp.Truncate(size) // sets TC, so the client retries over TCP
	}
	if len(req.Question) == 1 {
		q := req.Question[0]
		s.log.Debug("dns query", "name", q.Name, "type", dns.TypeToString[q.Qtype],
			"rcode", dns.RcodeToString[resp.Rcode], "answers", len(resp.Answer), "tc", resp.Truncated)
	}
	if err := w.WriteMsg(resp); err != nil {
		s.log.Warn("dns write failed", "remote", w.RemoteAddr().String(), "err", err)
	}
}

// answer fills resp for q the way an authoritative server would.
func (s *Server) answer(resp *dns.Msg, q dns.Question) {
	s.mu.RLock()
	defer s.mu.RUnlock()

	name := canonical(q.Name)
	seen := map[string]bool{}
	for cur := name; len(seen) < maxChain; {
		seen[cur] = true
		n := s.nodes[cur]
		if n != nil && n.fail {
			// Only the asked name fails outright; a failing CNAME target is
			// left for the resolver to find when it asks for it.
			if cur == name {
				resp.Answer = nil
				resp.Rcode = n.rcode
			}
			return
		}
		if n != nil && n.cname != "" {
			resp.Answer = append(resp.Answer, &dns.CNAME{Hdr: hdr(q.Name, cur, dns.TypeCNAME), Target: n.cname})
			if q.Qtype == dns.TypeCNAME || seen[n.cname] {
				return
			}
			cur = n.cname
			continue
		}
		resp.Answer = append(resp.Answer, s.records(q.Name, cur, n, q.Qtype)...)
		// NXDOMAIN only for the asked name; an unknown CNAME target may live
		// elsewhere, so the chain stops with NOERROR.
		if cur == name && !s.exists(cur, n) {
			resp.Rcode = dns.RcodeNameError
		}
		return
	}
}

// hdr builds an RR header, keeping the asker's spelling for the asked name.
func hdr(qname, owner string, rrtype uint16) dns.RR_Header {
	if canonical(qname) == owner {
		owner = dns.Fqdn(qname)
	}
	return dns.RR_Header{Name: owner, Rrtype: rrtype, Class: dns.ClassINET, Ttl: ttl}
}

// records returns the RRs of qtype at owner (n may be nil).
func (s *Server) records(qname, owner string, n *node, qtype uint16) []dns.RR {
	if n == nil {
		n = &node{}
	}
	var rrs []dns.RR
	if qtype == dns.TypeTXT || qtype == dns.TypeANY {
		for _, v := range n.txt {
			rrs = append(rrs, &dns.TXT{Hdr: hdr(qname, owner, dns.TypeTXT), Txt: splitTXT(v)})
		}
	}
	if qtype == dns.TypeA || qtype == dns.TypeANY {
		var found bool
		for _, ip := range n.addrs {
			if ip.Is4() {
				rrs = append(rrs, &dns.A{Hdr: hdr(qname, owner, dns.TypeA), A: ip.AsSlice()})
				found = true
			}
		}
		if !found && s.defaultA.IsValid() {
			rrs = append(rrs, &dns.A{Hdr: hdr(qname, owner, dns.TypeA), A: s.defaultA.AsSlice()})
		}
	}
	if qtype == dns.TypeAAAA || qtype == dns.TypeANY {
		for _, ip := range n.addrs {
			if ip.Is6() {
				rrs = append(rrs, &dns.AAAA{Hdr: hdr(qname, owner, dns.TypeAAAA), AAAA: ip.AsSlice()})
			}
		}
	}
	if qtype == dns.TypeCAA || qtype == dns.TypeANY {
		for _, c := range n.caa {
			rrs = append(rrs, &dns.CAA{Hdr: hdr(qname, owner, dns.TypeCAA), Flag: c.Flag, Tag: c.Tag, Value: escape(c.Value)})
		}
	}
	return rrs
}

// exists reports whether name exists: it has records, DefaultA covers every
// name, or it is an empty non-terminal above a name with records.
func (s *Server) exists(name string, n *node) bool {
	if s.defaultA.IsValid() || (n != nil && n.hasRecords()) {
		return true
	}
	suffix := "." + name
	if name == "." {
		suffix = "."
	}
	for other, on := range s.nodes {
		if strings.HasSuffix(other, suffix) && on.hasRecords() {
			return true
		}
	}
	return false
}

// splitTXT splits v into the 255-byte character-strings one TXT record holds.
func splitTXT(v string) []string {
	var parts []string
	for len(v) > 255 {
		parts = append(parts, escape(v[:255]))
		v = v[255:]
	}
	return append(parts, escape(v))
}

// escape quotes backslashes, since miekg/dns packs TXT and CAA values from
// presentation format, where a backslash starts an escape.
func escape(v string) string {
	return strings.ReplaceAll(v, `\`, `\\`)
}
