package webhook

import (
	"errors"
	"fmt"
	"net/netip"
	"syscall"
)

// ErrForbiddenAddress means a delivery would connect to an address it must
// not, such as our own network.
var ErrForbiddenAddress = errors.New("address not allowed")

// AddressPolicy decides which IPs deliveries may connect to. The zero value
// allows only global unicast addresses.
type AddressPolicy struct {
	// AllowPrivate lets loopback and private (RFC 1918, ULA) addresses
	// through: tests and development only.
	AllowPrivate bool
}

// special lists ranges that are not reachable global unicast although
// netip's predicates do not say so (IANA special-purpose registries).
var special = []struct {
	prefix netip.Prefix
	why    string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), `"this network"`},
	{netip.MustParsePrefix("100.64.0.0/10"), "carrier-grade NAT"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignments"},
	{netip.MustParsePrefix("192.0.2.0/24"), "documentation"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking"},
	{netip.MustParsePrefix("198.51.100.0/24"), "documentation"},
	{netip.MustParsePrefix("203.0.113.0/24"), "documentation"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved"},
	{netip.MustParsePrefix("64:ff9b::/96"), "NAT64, may embed an internal IPv4 address"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "local-use NAT64"},
	{netip.MustParsePrefix("100::/64"), "discard-only"},
	{netip.MustParsePrefix("2001:db8::/32"), "documentation"},
	{netip.MustParsePrefix("2002::/16"), "6to4, may embed an internal IPv4 address"},
}

// Allowed returns nil if ip may be reached, or an error wrapping
// ErrForbiddenAddress saying why not.
func (p AddressPolicy) Allowed(ip netip.Addr) error {
	if !ip.IsValid() {
		return fmt.Errorf("%w: invalid address", ErrForbiddenAddress)
	}
	// ::ffff:10.0.0.1 reaches 10.0.0.1, so judge the IPv4 address.
	ip = ip.Unmap().WithZone("")
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
		why = "private"
	case ip.IsLinkLocalUnicast():
		why = "link-local"
	case ip.IsMulticast():
		why = "multicast"
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
		return fmt.Errorf("%w: %s is %s", ErrForbiddenAddress, ip, why)
	}
	return nil
}

// control is a net.Dialer Control: it runs for every address the dialer
// tries, after name resolution, so a host name resolving to several
// addresses (or re-resolving to another one) is checked at each connect.
func (p AddressPolicy) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: cannot parse %q", ErrForbiddenAddress, address)
	}
	return p.Allowed(ap.Addr())
}
