// Package service is the public JSON gateway: it authenticates API keys,
// scopes every request to the key's account, maps JSON/HTTP to the
// services' gRPC APIs with grpc-gateway, and serves the OpenAPI document.
package service

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protojson"

	applicationv1 "github.com/certflow/certflow/gen/go/certflow/application/v1"
	auditv1 "github.com/certflow/certflow/gen/go/certflow/audit/v1"
	issuancev1 "github.com/certflow/certflow/gen/go/certflow/issuance/v1"
	notificationv1 "github.com/certflow/certflow/gen/go/certflow/notification/v1"
	orderv1 "github.com/certflow/certflow/gen/go/certflow/order/v1"
	verificationv1 "github.com/certflow/certflow/gen/go/certflow/verification/v1"
	"github.com/certflow/certflow/gen/openapi"
	"github.com/certflow/certflow/pkg/auth"
	"github.com/certflow/certflow/pkg/callpolicy"
	"github.com/certflow/certflow/pkg/config"
	"github.com/certflow/certflow/pkg/internalpki"
	"github.com/certflow/certflow/pkg/mtls"
	"github.com/certflow/certflow/services/gateway/internal/apikey"
)

// DefaultAddr is the gateway's address in the default run.
const DefaultAddr = "127.0.0.1:8080"

// MaxBodyBytes bounds request bodies (uploads are at most 500 KB, base64).
const MaxBodyBytes = 2 << 20

// Config configures the gateway.
type Config struct {
	Addr             string
	OrderAddr        string
	ApplicationAddr  string
	VerificationAddr string
	IssuanceAddr     string
	NotificationAddr string
	AuditAddr        string
	// TrustedProxies are the addresses (IPs or CIDR prefixes) of proxies
	// in front of the gateway whose X-Forwarded-For is believed for the
	// client's address in audit records. Empty (the default): the TCP
	// peer is the client.
	TrustedProxies string
	// APIKeysFile lists key hashes, one per line:
	// `sha256:<hex> <account> [role]` (see HashAPIKey). It never holds a
	// key: a line with one is refused.
	APIKeysFile string
	// APIKeys is the same content inline (tests, the embedded suite).
	APIKeys string
	// TLS or PKI is the gateway's mutual-TLS identity toward the
	// services (see service.Config).
	TLS mtls.Files
	PKI *internalpki.Authority
	// HTTPSCert and HTTPSKey, if set, serve the public API over HTTPS
	// (reread when they change); otherwise plain HTTP, for the embedded
	// default on loopback only.
	HTTPSCert, HTTPSKey string
	// Limits are the per-key rate and the overload bound (zero fields take
	// DefaultLimits).
	Limits Limits
	Log    *slog.Logger
}

// Flags registers the gateway settings.
func (c *Config) Flags(s *config.Set) {
	s.String(&c.Addr, "http-addr", "CERTFLOW_HTTP_ADDR", DefaultAddr, "HTTP listen address")
	s.String(&c.OrderAddr, "order-addr", "CERTFLOW_ORDER_ADDR", "127.0.0.1:9101", "order service gRPC address")
	s.String(&c.ApplicationAddr, "application-addr", "CERTFLOW_APPLICATION_ADDR", "127.0.0.1:9102", "application service gRPC address")
	s.String(&c.VerificationAddr, "verification-addr", "CERTFLOW_VERIFICATION_ADDR", "127.0.0.1:9103", "verification service gRPC address")
	s.String(&c.IssuanceAddr, "issuance-addr", "CERTFLOW_ISSUANCE_ADDR", "127.0.0.1:9104", "issuance service gRPC address")
	s.String(&c.NotificationAddr, "notification-addr", "CERTFLOW_NOTIFICATION_ADDR", "127.0.0.1:9105", "notification service gRPC address")
	s.String(&c.AuditAddr, "audit-addr", "CERTFLOW_AUDIT_ADDR", "127.0.0.1:9106", "audit service gRPC address")
	s.String(&c.TrustedProxies, "trusted-proxies", "CERTFLOW_TRUSTED_PROXIES", "", "comma-separated IPs or CIDR prefixes of proxies whose X-Forwarded-For names the client; empty: the TCP peer is the client")
	mtls.Flags(s, &c.TLS)
	s.String(&c.HTTPSCert, "https-cert", "CERTFLOW_HTTPS_CERT", "", "public HTTPS certificate (PEM); empty serves plain HTTP")
	s.String(&c.HTTPSKey, "https-key", "CERTFLOW_HTTPS_KEY", "", "public HTTPS private key (PEM)")
	s.Float(&c.Limits.KeyRate, "rate-per-key", "CERTFLOW_RATE_PER_KEY", DefaultLimits.KeyRate, "requests per second each API key may make; beyond it 429 with Retry-After")
	s.Int(&c.Limits.KeyBurst, "rate-burst", "CERTFLOW_RATE_BURST", DefaultLimits.KeyBurst, "requests an API key may send at once above its rate")
	s.Int(&c.Limits.MaxInFlight, "max-in-flight", "CERTFLOW_MAX_IN_FLIGHT", DefaultLimits.MaxInFlight, "requests served at once; beyond it (after a short wait) 503 with Retry-After")
	s.String(&c.APIKeysFile, "api-keys-file", "CERTFLOW_API_KEYS_FILE", "", "file of API key hashes, one per line: sha256:<hex SHA-256 of the key> <account> [customer|reviewer]")
}

// HashAPIKey returns the keys-file form of an API key, `sha256:<hex>`, for
// the first field of a line of the API-keys file.
func HashAPIKey(key string) string { return apikey.Hash(key) }

// Gateway is a started gateway.
type Gateway struct {
	srv   *http.Server
	lis   net.Listener
	conns []*grpc.ClientConn
	log   *slog.Logger
	tls   *tls.Config
}

// New builds the gateway and listens; call Run to serve.
func New(ctx context.Context, cfg Config) (*Gateway, error) {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	id, err := internalpki.Identity(callpolicy.Gateway, cfg.TLS, cfg.PKI)
	if err != nil {
		return nil, err
	}
	keysText := cfg.APIKeys
	if cfg.APIKeysFile != "" {
		b, err := os.ReadFile(cfg.APIKeysFile)
		if err != nil {
			return nil, fmt.Errorf("read API keys: %w", err)
		}
		keysText = string(b)
	}
	keys, err := apikey.Parse(strings.NewReader(keysText))
	if err != nil {
		return nil, fmt.Errorf("API keys: %w (set -api-keys-file)", err)
	}
	proxies, err := parseProxies(cfg.TrustedProxies)
	if err != nil {
		return nil, err
	}
	mux := runtime.NewServeMux(
		// Only what the gateway itself vouches for reaches the services:
		// a client cannot send its own x-certflow-account or
		// x-certflow-actor (as a header or as Grpc-Metadata-*).
		runtime.WithIncomingHeaderMatcher(func(string) (string, bool) { return "", false }),
		runtime.WithOutgoingHeaderMatcher(func(string) (string, bool) { return "", false }),
		runtime.WithMetadata(func(ctx context.Context, r *http.Request) metadata.MD {
			p, _ := auth.From(r.Context())
			return metadata.Pairs(auth.MetadataAccount, p.Account, auth.MetadataRole, string(p.Role),
				auth.MetadataActor, p.Actor, auth.MetadataSource, p.Source, auth.MetadataRequestID, p.RequestID)
		}),
		runtime.WithMarshalerOption(runtime.MIMEWildcard, &runtime.JSONPb{
			MarshalOptions:   protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: false},
			UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
		}),
	)
	g := &Gateway{log: cfg.Log.With("service", "gateway")}
	for _, r := range []struct {
		addr, peer string
		register   func(context.Context, *runtime.ServeMux, *grpc.ClientConn) error
	}{
		{cfg.OrderAddr, callpolicy.Order, orderv1.RegisterOrderServiceHandler},
		{cfg.ApplicationAddr, callpolicy.Application, applicationv1.RegisterApplicationServiceHandler},
		{cfg.VerificationAddr, callpolicy.Verification, verificationv1.RegisterVerificationServiceHandler},
		{cfg.VerificationAddr, callpolicy.Verification, verificationv1.RegisterReviewServiceHandler},
		{cfg.IssuanceAddr, callpolicy.Issuance, issuancev1.RegisterIssuanceServiceHandler},
		{cfg.NotificationAddr, callpolicy.Notification, notificationv1.RegisterNotificationServiceHandler},
		{cfg.AuditAddr, callpolicy.Audit, auditv1.RegisterAuditServiceHandler},
	} {
		cc, err := grpc.NewClient(r.addr, grpc.WithTransportCredentials(mtls.ClientCredentials(id, r.peer)))
		if err != nil {
			g.close()
			return nil, fmt.Errorf("dial %s: %w", r.addr, err)
		}
		g.conns = append(g.conns, cc)
		if err := r.register(ctx, mux, cc); err != nil {
			g.close()
			return nil, err
		}
	}
	root := http.NewServeMux()
	root.HandleFunc("GET /openapi.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(openapi.JSON)
	})
	root.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	cfg.Limits.defaults()
	// Authentication and the rate check cost microseconds and come before
	// the in-flight bound: a key over its rate is told 429 even while the
	// gateway is overloaded, and does not take a slot from the others.
	// Bodies are read only for an authenticated key within its rate:
	// nobody else can make the gateway hold one.
	root.Handle("/", authenticate(keys, newKeyLimiter(cfg.Limits), proxies, overload(cfg.Limits, limitBody(mux))))
	g.lis, err = net.Listen("tcp", cfg.Addr)
	if err != nil {
		g.close()
		return nil, fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	if cfg.HTTPSCert != "" || cfg.HTTPSKey != "" {
		certs, err := mtls.NewKeyPairSource(cfg.HTTPSCert, cfg.HTTPSKey)
		if err != nil {
			g.close()
			return nil, err
		}
		g.tls = &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: certs.GetCertificate}
	}
	g.srv = &http.Server{
		Handler:           logRequests(g.log, root),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      120 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
	return g, nil
}

// URL is the gateway's base URL.
func (g *Gateway) URL() string {
	if g.tls != nil {
		return "https://" + g.lis.Addr().String()
	}
	return "http://" + g.lis.Addr().String()
}

// Run serves until ctx is done, then shuts down gracefully.
func (g *Gateway) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() {
		if g.tls != nil {
			g.srv.TLSConfig = g.tls
			errc <- g.srv.ServeTLS(g.lis, "", "")
			return
		}
		errc <- g.srv.Serve(g.lis)
	}()
	g.log.Info("HTTP gateway serving", "url", g.URL())
	select {
	case err := <-errc:
		g.close()
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := g.srv.Shutdown(sctx)
	g.close()
	if e := <-errc; e != nil && !errors.Is(e, http.ErrServerClosed) {
		return e
	}
	return err
}

func (g *Gateway) close() {
	for _, cc := range g.conns {
		_ = cc.Close()
	}
}

// authenticate requires a bearer API key and puts its principal in the
// request context, with the request's id (echoed in X-Request-Id) and the
// client's address. The key itself goes no further: grpc-gateway would
// pass the Authorization header on to the services.
func authenticate(keys *apikey.Keys, limits *keyLimiter, proxies []netip.Prefix, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reqID := requestID(r.Header.Get("X-Request-Id"))
		w.Header().Set("X-Request-Id", reqID)
		token := bearer(r)
		p, found := keys.Lookup(token)
		if token == "" || !found {
			w.Header().Set("WWW-Authenticate", `Bearer realm="certflow"`)
			writeError(w, http.StatusUnauthorized, 16, "UNAUTHENTICATED", "a valid API key is required: send `Authorization: Bearer <key>`")
			return
		}
		if ok, wait := limits.allow(token, time.Now()); !ok {
			rateLimited(w, wait)
			return
		}
		p.Source, p.RequestID = clientAddr(r, proxies), reqID
		r = r.WithContext(auth.With(r.Context(), p))
		r.Header = r.Header.Clone()
		r.Header.Del("Authorization")
		next.ServeHTTP(w, r)
	})
}

// writeError writes the same JSON shape grpc-gateway uses for gRPC errors.
func writeError(w http.ResponseWriter, status, code int, reason, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"code": code, "message": msg,
		"details": []any{map[string]any{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason, "domain": "certflow.dev"}},
	})
}

// limitBody refuses a body over MaxBodyBytes with 413. grpc-gateway reads
// the whole body before it calls a service anyway, so it is read here, where
// the overflow is still known as such: past this point it would become a 400
// "request body too large" that does not tell the client what the limit is.
func limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > MaxBodyBytes {
			bodyTooLarge(w)
			return
		}
		if r.Body == nil || r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
		var tooLarge *http.MaxBytesError
		switch {
		case errors.As(err, &tooLarge):
			bodyTooLarge(w)
			return
		case err != nil:
			writeError(w, http.StatusBadRequest, 3, "BODY_UNREADABLE", "the request body could not be read: "+err.Error()+"; send it again")
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, r)
	})
}

func bodyTooLarge(w http.ResponseWriter) {
	// The connection may still carry the rest of the body: do not reuse it.
	w.Header().Set("Connection", "close")
	writeError(w, http.StatusRequestEntityTooLarge, 3, "BODY_TOO_LARGE",
		fmt.Sprintf("the request body is over %d bytes, the gateway's limit; documents are at most 500 KB before base64", MaxBodyBytes))
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) { s.status = code; s.ResponseWriter.WriteHeader(code) }

func logRequests(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r)
		log.Debug("http", "method", r.Method, "path", r.URL.Path, "status", sw.status, "ms", time.Since(start).Milliseconds())
	})
}
