package mtls

import (
	"context"
	"net"

	"google.golang.org/grpc/credentials"
)

// ServerCredentials are gRPC server credentials for src.
func ServerCredentials(src Source) credentials.TransportCredentials {
	return credentials.NewTLS(ServerConfig(src))
}

// ClientCredentials are gRPC client credentials for calling peer. The CA
// bundle is read again at every handshake, so a rotated bundle is used on
// the next connection.
func ClientCredentials(src Source, peer string) credentials.TransportCredentials {
	return &clientCreds{src: src, peer: peer}
}

type clientCreds struct {
	src  Source
	peer string
}

func (c *clientCreds) ClientHandshake(ctx context.Context, authority string, conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	cfg, err := ClientConfig(c.src, c.peer)
	if err != nil {
		return nil, nil, err
	}
	return credentials.NewTLS(cfg).ClientHandshake(ctx, authority, conn)
}

func (c *clientCreds) ServerHandshake(net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return nil, nil, errClientOnly
}

func (c *clientCreds) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "tls", SecurityVersion: "1.3", ServerName: ServerName(c.peer)}
}

func (c *clientCreds) Clone() credentials.TransportCredentials {
	return &clientCreds{src: c.src, peer: c.peer}
}

// OverrideServerName is deprecated in gRPC; the peer's name is fixed.
func (c *clientCreds) OverrideServerName(string) error { return nil }

type constErr string

func (e constErr) Error() string { return string(e) }

const errClientOnly = constErr("mtls: client credentials cannot serve")
