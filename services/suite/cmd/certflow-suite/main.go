// Command certflow-suite runs the whole of certflow on the embedded default
// (make run): NATS, FerretDB, a development DNS responder, the five
// services and the gateway, with data in one folder.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/certflow/certflow/pkg/config"
	gateway "github.com/certflow/certflow/services/gateway/service"
	"github.com/certflow/certflow/services/suite/suite"
)

func main() {
	suite.TuneGC()
	var (
		o      suite.Options
		level  string
		dcvWeb int
	)
	s := config.New("certflow-suite")
	s.String(&o.DataDir, "data", "CERTFLOW_DATA", "./var", "data folder (JetStream, database, CA, secrets); kept across restarts")
	s.String(&o.GatewayAddr, "http-addr", "CERTFLOW_HTTP_ADDR", "127.0.0.1:8080", "gateway listen address")
	s.String(&o.DevDNSAddr, "dev-dns-addr", "CERTFLOW_DEV_DNS_ADDR", "127.0.0.1:8053", "development DNS responder (UDP/TCP) that domain validation queries")
	s.String(&o.DevDNSAdminAddr, "dev-dns-admin-addr", "CERTFLOW_DEV_DNS_ADMIN_ADDR", "127.0.0.1:8054", "its admin API, to publish TXT records with curl")
	s.Int(&dcvWeb, "dcv-http-port", "CERTFLOW_DCV_HTTP_PORT", 8088, "port HTTP proof files are fetched from (names resolve to 127.0.0.1)")
	s.String(&o.NATSAddr, "nats-addr", "CERTFLOW_NATS_ADDR", "127.0.0.1:4222", "embedded NATS JetStream listen address")
	s.String(&o.MongoAddr, "mongo-addr", "CERTFLOW_MONGO_ADDR", "127.0.0.1:27018", "embedded FerretDB (MongoDB wire protocol) listen address")
	s.String(&o.OrderAddr, "order-addr", "CERTFLOW_ORDER_ADDR", "127.0.0.1:9101", "order service gRPC address")
	s.String(&o.ApplicationAddr, "application-addr", "CERTFLOW_APPLICATION_ADDR", "127.0.0.1:9102", "application service gRPC address")
	s.String(&o.VerificationAddr, "verification-addr", "CERTFLOW_VERIFICATION_ADDR", "127.0.0.1:9103", "verification service gRPC address (its perspectives take free loopback ports)")
	s.String(&o.IssuanceAddr, "issuance-addr", "CERTFLOW_ISSUANCE_ADDR", "127.0.0.1:9104", "issuance service gRPC address")
	s.String(&o.NotificationAddr, "notification-addr", "CERTFLOW_NOTIFICATION_ADDR", "127.0.0.1:9105", "notification service gRPC address")
	s.String(&o.AuditAddr, "audit-addr", "CERTFLOW_AUDIT_ADDR", "127.0.0.1:9106", "audit service gRPC address")
	s.String(&o.IssuanceHTTPAddr, "issuance-http-addr", "CERTFLOW_ISSUANCE_HTTP_ADDR", "127.0.0.1:9180", "AIA and CRL listener; its URLs are written into certificates")
	s.String(&o.SMTPAddr, "smtp-addr", "CERTFLOW_SMTP_ADDR", "", "SMTP server for notification mail; empty logs mail instead")
	s.String(&o.DebianWeakKeysFile, "debian-weak-keys-file", "CERTFLOW_DEBIAN_WEAK_KEYS_FILE", "", "Debian openssl-blacklist file of weak RSA keys the CA refuses; empty = none")
	s.String(&o.BlockedKeysFile, "blocked-keys-file", "CERTFLOW_BLOCKED_KEYS_FILE", "", "keys the CA refuses as compromised, the hex SHA-256 of each DER SubjectPublicKeyInfo a line; empty = none")
	s.Float(&o.GatewayLimits.KeyRate, "rate-per-key", "CERTFLOW_RATE_PER_KEY", gateway.DefaultLimits.KeyRate, "requests per second each API key may make; beyond it 429 with Retry-After")
	s.Int(&o.GatewayLimits.KeyBurst, "rate-burst", "CERTFLOW_RATE_BURST", gateway.DefaultLimits.KeyBurst, "requests an API key may send at once above its rate")
	s.Int(&o.GatewayLimits.MaxInFlight, "max-in-flight", "CERTFLOW_MAX_IN_FLIGHT", gateway.DefaultLimits.MaxInFlight, "requests the gateway serves at once; beyond it 503 with Retry-After")
	s.String(&level, "log-level", "CERTFLOW_LOG_LEVEL", "info", "log level")
	if err := s.Parse(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	o.DCVHTTPPort = dcvWeb
	log, err := config.Logger(level, "text")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	o.Log = log
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	fmt.Fprintf(os.Stderr, "starting certflow in %s (first start creates the CA) ...\n", o.DataDir)
	st, err := suite.Start(ctx, o)
	if err != nil {
		log.Error("could not start", "err", err)
		fmt.Fprintln(os.Stderr, "hint: another certflow (or something else) may hold one of the ports; stop it or pass other addresses (-h lists them)")
		os.Exit(1)
	}
	root, _ := filepath.Abs(st.RootCAPath)
	creds, _ := filepath.Abs(st.CredentialsPath)
	// The keys are shown once, when they are made, on the terminal and
	// never in the log; the gateway keeps only their hashes.
	keys := fmt.Sprintf("  development API keys:  in %s (readable only by you)\n", creds)
	if st.NewCredentials {
		keys = fmt.Sprintf("  API key (account dev): %s\n  reviewer key:          %s\n  (shown this once; kept in %s, readable only by you)\n", st.APIKey, st.ReviewerKey, creds)
	}
	fmt.Printf(`
certflow is running.
  gateway (JSON API):   %s   (OpenAPI: %s/openapi.json)
%s  CA root certificate:   %s
  dev DNS admin API:     http://%s   (publish TXT records here, see README)
  NATS:                  %s   (read-only nkey seed for other teams: %s)
  operator gRPC access:  grpcurl -cacert %s -cert %s -key %s %s list
Press Ctrl-C to stop; data stays in %s.
`, st.GatewayURL, st.GatewayURL, keys, root, o.DevDNSAdminAddr, st.NATSURL,
		filepath.Join(st.NATSSeeds, "reader.nk"), filepath.Join(st.PKIDir, "ca.pem"), filepath.Join(st.PKIDir, "operator.pem"), filepath.Join(st.PKIDir, "operator-key.pem"), st.IssuanceAddr, o.DataDir)
	if err := st.Run(ctx); err != nil {
		log.Error("stopped with an error", "err", err)
		os.Exit(1)
	}
	slog.Info("stopped")
}
