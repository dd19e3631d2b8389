package netpolicy

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// These addresses are only parsed, never contacted.
func TestPolicy(t *testing.T) {
	tests := []struct {
		ip           string
		allowed      bool // with the default policy
		allowPrivate bool // with AllowPrivate
	}{
		{"10.0.0.1", false, true},
		{"172.16.0.1", false, true},
		{"172.31.255.255", false, true},
		{"192.168.1.1", false, true},
		{"127.0.0.1", false, true},
		{"127.1.2.3", false, true},
		{"::1", false, true},
		{"fc00::1", false, true},
		{"fd12:3456::1", false, true},
		{"::ffff:10.0.0.1", false, true},
		{"::ffff:127.0.0.1", false, true},
		{"fe80::1", false, false},
		{"169.254.1.1", false, false},
		{"169.254.169.254", false, false},
		{"100.64.0.1", false, false},
		{"100.127.255.255", false, false},
		{"0.0.0.0", false, false},
		{"0.1.2.3", false, false},
		{"::", false, false},
		{"224.0.0.1", false, false},
		{"239.255.255.250", false, false},
		{"ff02::1", false, false},
		{"255.255.255.255", false, false},
		{"240.0.0.1", false, false},
		{"192.0.2.1", false, false},
		{"198.18.0.1", false, false},
		{"2001:db8::1", false, false},
		{"64:ff9b::a00:1", false, false},
		{"2002:a00:1::", false, false},
		{"8.8.8.8", true, true},
		{"1.1.1.1", true, true},
		{"172.32.0.1", true, true},
		{"100.128.0.1", true, true},
		{"::ffff:8.8.8.8", true, true},
		{"2001:4860::1", true, true},
		{"2606:4700::1111", true, true},
	}
	for _, tt := range tests {
		ip := netip.MustParseAddr(tt.ip)
		for _, p := range []Policy{{}, {AllowPrivate: true}} {
			want := tt.allowed
			if p.AllowPrivate {
				want = tt.allowPrivate
			}
			err := p.Allowed(ip)
			if got := err == nil; got != want {
				t.Errorf("%+v.Allowed(%s) = %v; want allowed %v", p, tt.ip, err, want)
				continue
			}
			if err != nil && !errors.Is(err, ErrForbidden) {
				t.Errorf("%+v.Allowed(%s) = %v; want ErrForbidden", p, tt.ip, err)
			}
			if err != nil && !strings.Contains(err.Error(), ip.Unmap().String()) {
				t.Errorf("%+v.Allowed(%s) = %q; want it to name the address", p, tt.ip, err)
			}
		}
	}
}

func TestPolicyInvalid(t *testing.T) {
	if err := (Policy{AllowPrivate: true}).Allowed(netip.Addr{}); !errors.Is(err, ErrForbidden) {
		t.Errorf("Allowed(zero Addr) = %v; want ErrForbidden", err)
	}
}

// TestAllowOnly: an allow-list lets its own range through and nothing
// else beside it, even on loopback.
func TestAllowOnly(t *testing.T) {
	p := Policy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}
	for _, tt := range []struct {
		ip      string
		allowed bool
	}{
		{"127.0.0.1", true},
		{"::ffff:127.0.0.1", true},
		{"127.0.0.2", false},
		{"::1", false},
		{"10.0.0.1", false},
		{"169.254.169.254", false},
		{"8.8.8.8", true},
	} {
		err := p.Allowed(netip.MustParseAddr(tt.ip))
		if (err == nil) != tt.allowed || (err != nil && !errors.Is(err, ErrForbidden)) {
			t.Errorf("Allowed(%s) = %v; want allowed %v", tt.ip, err, tt.allowed)
		}
	}
}
