// Package mtls is how certflow's components know each other: every internal
// gRPC connection is mutual TLS, each side presents a certificate whose URI
// SAN names its component (spiffe://certflow.internal/<name>), and each side
// checks the other's name. Certificates and the CA bundle come from a
// Source, read at every handshake, so that renewed or rotated files are used
// without a restart.
package mtls

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// TrustDomain is the SPIFFE trust domain of certflow's components.
const TrustDomain = "certflow.internal"

// ID is the URI SAN naming a component.
func ID(name string) *url.URL {
	return &url.URL{Scheme: "spiffe", Host: TrustDomain, Path: "/" + name}
}

// ServerName is the DNS name a component's server certificate carries and
// its clients ask for.
func ServerName(name string) string { return name + "." + TrustDomain }

// Source supplies this component's certificate and the CA bundle it trusts
// for its peers, current at the time of the call.
type Source interface {
	Certificate() (*tls.Certificate, error)
	Roots() (*x509.CertPool, error)
}

// NameOf returns the component a verified certificate names: the path of
// its one spiffe URI SAN in certflow's trust domain.
func NameOf(cert *x509.Certificate) (string, error) {
	var name string
	for _, u := range cert.URIs {
		if u.Scheme != "spiffe" {
			continue
		}
		if u.Host != TrustDomain {
			return "", fmt.Errorf("certificate names %s, outside trust domain %s", u, TrustDomain)
		}
		n := strings.TrimPrefix(u.Path, "/")
		if n == "" || strings.Contains(n, "/") || name != "" {
			return "", fmt.Errorf("certificate has an unusable SPIFFE ID %s", u)
		}
		name = n
	}
	if name == "" {
		return "", errors.New("certificate carries no spiffe://" + TrustDomain + "/ URI SAN")
	}
	return name, nil
}

// PeerName returns the component on the other end of a verified connection.
func PeerName(cs tls.ConnectionState) (string, error) {
	if len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return "", errors.New("peer presented no verified certificate")
	}
	return NameOf(cs.VerifiedChains[0][0])
}

// ServerConfig is the TLS configuration of a component's gRPC server: TLS
// 1.3, a client certificate required and verified against the current CA
// bundle.
func ServerConfig(src Source) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			cert, err := src.Certificate()
			if err != nil {
				return nil, err
			}
			roots, err := src.Roots()
			if err != nil {
				return nil, err
			}
			return &tls.Config{
				MinVersion:   tls.VersionTLS13,
				Certificates: []tls.Certificate{*cert},
				ClientAuth:   tls.RequireAndVerifyClientCert,
				ClientCAs:    roots,
				NextProtos:   []string{"h2"},
			}, nil
		},
	}
}

// ClientConfig is the TLS configuration for calling component peer: the
// server must present a certificate for ServerName(peer) that names peer.
func ClientConfig(src Source, peer string) (*tls.Config, error) {
	roots, err := src.Roots()
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		RootCAs:    roots,
		ServerName: ServerName(peer),
		NextProtos: []string{"h2"},
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return src.Certificate()
		},
		VerifyConnection: func(cs tls.ConnectionState) error {
			got, err := PeerName(cs)
			if err != nil {
				return err
			}
			if got != peer {
				return fmt.Errorf("server is %q, want %q", got, peer)
			}
			return nil
		},
	}, nil
}
