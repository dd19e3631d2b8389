package testenv

import (
	"net"
	"testing"
)

// ListenDNS listens on one loopback port for both UDP and TCP, as a DNS
// server answers on both. A port free on UDP may be taken on TCP (by
// another test's connection), so a few ports are tried.
func ListenDNS(t testing.TB) (net.PacketConn, net.Listener) {
	t.Helper()
	for attempt := 0; ; attempt++ {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln
		}
		_ = pc.Close()
		if attempt == 20 {
			t.Fatal(err)
		}
	}
}
