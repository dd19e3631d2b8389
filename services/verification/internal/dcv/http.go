package dcv

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrBadRedirect means the server redirected in a way DCV must not follow:
// a status other than 301, 302, 307 or 308, too many hops, or a target
// outside http/https on the allowed ports.
var ErrBadRedirect = errors.New("redirect not allowed")

const (
	defaultHTTPPort     = 80
	httpsPort           = 443
	defaultHTTPTimeout  = 10 * time.Second
	defaultMaxRedirects = 3
	defaultMaxBodyBytes = 64 << 10
	userAgent           = "certflow-dcv/1"
)

// HTTPChecker proves control with a file served over HTTP. Hosts are
// resolved through Resolver, never the system resolver, and every address
// is checked against Policy when dialling, so DNS rebinding between check
// and connect is impossible.
type HTTPChecker struct {
	Resolver *Resolver
	Policy   AddressPolicy
	// Port is where http:// is fetched; default 80. Tests pass a loopback
	// server's port.
	Port int
	// Timeout bounds the whole check, redirects included; default 10s.
	Timeout time.Duration
	// MaxRedirects bounds followed redirects; default 3.
	MaxRedirects int
	// MaxBodyBytes bounds the file; default 64 KiB.
	MaxBodyBytes int64
}

// CheckFile fetches http://domain:Port/path and passes when the body, with
// surrounding whitespace trimmed, equals want exactly. It fails with
// ErrNotFound (non-2xx), ErrMismatch (other content, or more than
// MaxBodyBytes), ErrBadRedirect, ErrForbiddenAddress, or a network or DNS
// error that is temporary.
func (c HTTPChecker) CheckFile(ctx context.Context, domain, path, want string) error {
	if c.Resolver == nil {
		return errNoResolver
	}
	port := c.port()
	if port < 1 || port > 65535 {
		return fmt.Errorf("dcv: invalid HTTP port %d", c.Port)
	}
	if !strings.HasPrefix(path, "/") {
		return fmt.Errorf("dcv: path %q must start with /", path)
	}
	host := strings.TrimSuffix(strings.TrimSpace(domain), ".")
	if !validHost(host) {
		return fmt.Errorf("dcv: invalid domain %q", domain)
	}
	u := &url.URL{Scheme: "http", Host: host, Path: path}
	if port != defaultHTTPPort {
		u.Host = net.JoinHostPort(host, strconv.Itoa(port))
	} else if ip, err := netip.ParseAddr(host); err == nil && ip.Is6() {
		u.Host = "[" + host + "]"
	}

	timeout := c.Timeout
	if timeout <= 0 {
		timeout = defaultHTTPTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	tr := &http.Transport{
		Proxy:       nil, // never send proof fetches through an environment proxy
		DialContext: c.dialContext,
		// The proof is the file's content, not the certificate; a redirect
		// to https must work with a self-signed or mismatched certificate.
		TLSClientConfig:        &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}, //nolint:gosec // see above
		DisableKeepAlives:      true,
		DisableCompression:     true,
		MaxResponseHeaderBytes: 16 << 10,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, CheckRedirect: c.checkRedirect}

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("dcv: building request for %s: %w", u, err)
	}
	req.Header.Set("User-Agent", userAgent)

	resp, err := client.Do(req)
	if err != nil {
		return fetchError(u.String(), err)
	}
	defer resp.Body.Close()
	final := resp.Request.URL.String()

	switch code := resp.StatusCode; {
	case code >= 300 && code < 400:
		return fmt.Errorf("%w: GET %s answered %s; only 301, 302, 307 and 308 redirects are followed",
			ErrBadRedirect, final, resp.Status)
	case code < 200 || code >= 300:
		return fmt.Errorf("%w: GET %s answered %s; serve the file at that URL with status 200",
			ErrNotFound, final, resp.Status)
	}

	limit := c.MaxBodyBytes
	if limit <= 0 {
		limit = defaultMaxBodyBytes
	}
	tooLarge := fmt.Errorf("%w: file too large: GET %s returned more than %d bytes; the file must contain only the proof",
		ErrMismatch, final, limit)
	if resp.ContentLength > limit {
		return tooLarge
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return fmt.Errorf("reading GET %s (temporary, will retry): %w", final, err)
	}
	if int64(len(body)) > limit {
		return tooLarge
	}
	got := strings.TrimSpace(string(body))
	if got != want {
		shown := got
		if len(shown) > 100 {
			shown = shown[:100] + "..."
		}
		return fmt.Errorf("%w: GET %s returned %q; the file must contain exactly %q",
			ErrMismatch, final, shown, want)
	}
	return nil
}

func (c HTTPChecker) port() int {
	if c.Port == 0 {
		return defaultHTTPPort
	}
	return c.Port
}

// fetchError tells permanent failures from temporary ones in a client error.
func fetchError(start string, err error) error {
	rawURL := start
	var ue *url.Error
	if errors.As(err, &ue) {
		rawURL, err = ue.URL, ue.Err
	}
	// ue.URL is then the raw Location; the message names the hop instead.
	if errors.Is(err, ErrBadRedirect) {
		return fmt.Errorf("following redirects from %s: %w", start, err)
	}
	if errors.Is(err, ErrForbiddenAddress) || errors.Is(err, ErrNoRecords) {
		return fmt.Errorf("GET %s: %w", rawURL, err)
	}
	return fmt.Errorf("GET %s (temporary, will retry): %w", rawURL, err)
}

func (c HTTPChecker) checkRedirect(req *http.Request, via []*http.Request) error {
	limit := c.MaxRedirects
	if limit <= 0 {
		limit = defaultMaxRedirects
	}
	if len(via) > limit {
		return fmt.Errorf("%w: more than %d redirects", ErrBadRedirect, limit)
	}
	if resp := req.Response; resp != nil {
		switch resp.StatusCode {
		case http.StatusMovedPermanently, http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		default:
			return fmt.Errorf("%w: %s answered %s; only 301, 302, 307 and 308 redirects are followed",
				ErrBadRedirect, via[len(via)-1].URL, resp.Status)
		}
	}
	u := req.URL
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%w: %s is not http or https", ErrBadRedirect, u)
	}
	if !validHost(u.Hostname()) {
		return fmt.Errorf("%w: %s has an invalid host", ErrBadRedirect, u)
	}
	want := c.port()
	if u.Scheme == "https" {
		want = httpsPort
	}
	port := want
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil {
			return fmt.Errorf("%w: %s has an invalid port", ErrBadRedirect, u)
		}
		port = n
	}
	// With AllowPrivate, the dialer lets other ports through to loopback
	// only, so test servers on random ports work.
	if port != want && !c.Policy.AllowPrivate {
		return fmt.Errorf("%w: %s uses port %d; %s redirects must use port %d", ErrBadRedirect, u, port, u.Scheme, want)
	}
	return nil
}

// dialContext resolves addr's host through the Resolver, refuses the dial if
// any candidate address or the port is not allowed, then dials the
// addresses in order. Dialling IP literals leaves no second resolution for
// an attacker to rebind.
func (c HTTPChecker) dialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("invalid port in %q", addr)
	}
	var ips []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		ips = []netip.Addr{ip}
	} else {
		ips, err = c.Resolver.LookupIP(ctx, host)
		if err != nil {
			return nil, fmt.Errorf("resolving %s: %w", host, err)
		}
	}
	for _, ip := range ips {
		if err := c.Policy.Allowed(ip); err != nil {
			return nil, fmt.Errorf("connecting to %s: %w", host, err)
		}
		if err := c.portAllowed(ip, int(port)); err != nil {
			return nil, err
		}
	}

	d := net.Dialer{Control: c.control}
	var errs []error
	for _, ip := range ips {
		conn, err := d.DialContext(ctx, network, netip.AddrPortFrom(ip.Unmap(), uint16(port)).String())
		if err == nil {
			return conn, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

// portAllowed permits the HTTP port and 443; with AllowPrivate, any port on
// loopback.
func (c HTTPChecker) portAllowed(ip netip.Addr, port int) error {
	if port == c.port() || port == httpsPort || (c.Policy.AllowPrivate && ip.Unmap().IsLoopback()) {
		return nil
	}
	return fmt.Errorf("%w: %s port %d; only %d and %d may be reached", ErrForbiddenAddress, ip, port, c.port(), httpsPort)
}

// control re-checks the address the socket actually connects to, as a last
// line of defence should any path reach the dialer with a host name.
func (c HTTPChecker) control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: cannot parse %q", ErrForbiddenAddress, address)
	}
	if err := c.Policy.Allowed(ap.Addr()); err != nil {
		return err
	}
	return c.portAllowed(ap.Addr(), int(ap.Port()))
}

// validHost reports whether h is an IP literal or a plausible DNS name.
func validHost(h string) bool {
	if h == "" {
		return false
	}
	if ip, err := netip.ParseAddr(h); err == nil {
		return ip.Zone() == ""
	}
	if len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
	}
	return true
}
