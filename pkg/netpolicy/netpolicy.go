// Package netpolicy decides which addresses certflow may connect to when a
// customer names the host: domain validation fetches and webhook
// deliveries. Without it, a customer could point a name at our own network.
package netpolicy

import (
	"errors"
	"fmt"
	"net/netip"
	"syscall"
)

// ErrForbidden means a connection would reach an address it must
// not, such as our own internal network.
var ErrForbidden = errors.New("address not allowed")

// Policy decides which IPs outbound connections to customers' hosts may reach (domain validation, webhooks). The
// zero value allows only global unicast addresses.
type Policy struct {
	// AllowPrivate lets loopback and private (RFC 1918, ULA) addresses
	// through. Test and development configurations only.
	AllowPrivate bool
	// Allow lets exactly these ranges through whatever they are (tests
	// that must reach one loopback server and nothing else beside it:
	// 127.0.0.1/32 while 127.0.0.2, 10/8 and ::1 stay refused).
	Allow []netip.Prefix
}

// special lists ranges that are not reachable global unicast even though
// netip's predicates do not say so (IANA special-purpose registries).
var special = []struct {
	prefix netip.Prefix
	why    string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), `"this network" (RFC 791)`},
	{netip.MustParsePrefix("100.64.0.0/10"), "carrier-grade NAT (RFC 6598)"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignments (RFC 6890)"},
	{netip.MustParsePrefix("192.0.2.0/24"), "documentation (RFC 5737)"},
	{netip.MustParsePrefix("192.88.99.0/24"), "6to4 relay anycast (RFC 7526)"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking (RFC 2544)"},
	{netip.MustParsePrefix("198.51.100.0/24"), "documentation (RFC 5737)"},
	{netip.MustParsePrefix("203.0.113.0/24"), "documentation (RFC 5737)"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved (RFC 1112)"},
	{netip.MustParsePrefix("64:ff9b::/96"), "NAT64 (RFC 6052), may embed an internal IPv4 address"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "local-use NAT64 (RFC 8215)"},
	{netip.MustParsePrefix("100::/64"), "discard-only (RFC 6666)"},
	{netip.MustParsePrefix("2001::/23"), "IETF protocol assignments (RFC 2928)"},
	{netip.MustParsePrefix("2001:db8::/32"), "documentation (RFC 3849)"},
	{netip.MustParsePrefix("2002::/16"), "6to4 (RFC 3056), may embed an internal IPv4 address"},
	{netip.MustParsePrefix("3fff::/20"), "documentation (RFC 9637)"},
	{netip.MustParsePrefix("5f00::/16"), "SRv6 SIDs (RFC 9602)"},
}

// Allowed returns nil if ip may be reached, or an error wrapping
// ErrForbidden that names the address and why.
func (p Policy) Allowed(ip netip.Addr) error {
	if !ip.IsValid() {
		return fmt.Errorf("%w: invalid address", ErrForbidden)
	}
	// ::ffff:10.0.0.1 reaches 10.0.0.1, so judge the IPv4 address.
	ip = ip.Unmap().WithZone("")
	for _, pfx := range p.Allow {
		if pfx.Contains(ip) {
			return nil
		}
	}
	why := ""
	switch {
	case ip.IsUnspecified():
		why = "unspecified"
	case ip.IsLoopback():
		if p.AllowPrivate {
			return nil
		}
		why = "loopback"
	case ip.IsPrivate():
		if p.AllowPrivate {
			return nil
		}
		why = "private (RFC 1918 / ULA)"
	case ip.IsLinkLocalUnicast():
		why = "link-local"
	case ip.IsMulticast():
		why = "multicast"
	case ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		why = "broadcast"
	case !ip.IsGlobalUnicast():
		why = "not global unicast"
	}
	if why == "" {
		for _, s := range special {
			if s.prefix.Contains(ip) {
				why = s.why
				break
			}
		}
	}
	if why != "" {
		return fmt.Errorf("%w: %s is %s", ErrForbidden, ip, why)
	}
	return nil
}

// Control is a net.Dialer Control function: it runs for every address the
// dialer tries, after name resolution, so a name that resolves (or
// re-resolves) to a forbidden address is refused at connect time.
func (p Policy) Control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: cannot parse %q", ErrForbidden, address)
	}
	return p.Allowed(ap.Addr())
}
