package service

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"time"

	verificationv1 "github.com/certflow/certflow/gen/go/certflow/verification/v1"
	"github.com/certflow/certflow/pkg/callpolicy"
	"github.com/certflow/certflow/pkg/certpolicy"
	"github.com/certflow/certflow/pkg/grpcserver"
	"github.com/certflow/certflow/pkg/internalpki"
	"github.com/certflow/certflow/services/verification/internal/dcv"
	"github.com/certflow/certflow/services/verification/internal/grpcapi"
	"github.com/certflow/certflow/services/verification/internal/mpic"
)

// Roles of the verification binary (-role).
const (
	RolePrimary     = "primary"
	RolePerspective = "perspective"
)

// PerspectivePort is a perspective's gRPC port in deploy/k8s.
const PerspectivePort = 9106

// Perspective is a running remote perspective (BR 3.2.2.9): the
// verification service in its perspective role, serving only
// PerspectiveService, with its own resolver and no database or NATS.
type Perspective struct {
	GRPC *grpcserver.Server
	// Name is its configured region, which names it to the primary.
	Name, RIR string
}

var regionName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// NewPerspective listens as a perspective of cfg.Region and cfg.RIR, with
// cfg's resolvers, HTTP port, address policy and CAA settings; call Run
// to serve.
func NewPerspective(_ context.Context, cfg Config) (*Perspective, error) {
	region, rir := strings.TrimSpace(cfg.Region), strings.ToUpper(strings.TrimSpace(cfg.RIR))
	if !regionName.MatchString(region) {
		return nil, fmt.Errorf("perspective region %q is not a lower-case name such as us-east (-region)", cfg.Region)
	}
	if !slices.Contains(certpolicy.RIRs, rir) {
		return nil, fmt.Errorf("perspective RIR %q is not one of %s (-rir)", cfg.RIR, strings.Join(certpolicy.RIRs, ", "))
	}
	resolver, err := newResolver(cfg)
	if err != nil {
		return nil, err
	}
	dcvCfg, err := domainValidation(cfg, resolver)
	if err != nil {
		return nil, err
	}
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	log = log.With("service", "perspective", "region", region, "rir", rir)
	id, err := internalpki.Identity(callpolicy.Perspective, cfg.TLS, cfg.PKI)
	if err != nil {
		return nil, err
	}
	srv, err := grpcserver.New(log, cfg.GRPCAddr, id)
	if err != nil {
		return nil, err
	}
	srv.Register(&verificationv1.PerspectiveService_ServiceDesc, &grpcapi.PerspectiveServer{
		Name: region, Region: region, RIR: rir, Prover: newProver(cfg, resolver), CAA: dcvCfg.caa,
	})
	return &Perspective{GRPC: srv, Name: region, RIR: rir}, nil
}

// Run serves until ctx is done.
func (p *Perspective) Run(ctx context.Context) error { return p.GRPC.Serve(ctx) }

// newResolver is the DCV resolver of cfg.DNSServers.
func newResolver(cfg Config) (*dcv.Resolver, error) {
	var servers []string
	for _, s := range strings.Split(cfg.DNSServers, ",") {
		if s = strings.TrimSpace(s); s != "" {
			servers = append(servers, s)
		}
	}
	resolver, err := dcv.NewResolver(dcv.ResolverOptions{Servers: servers})
	if err != nil {
		return nil, fmt.Errorf("dns servers %q: %w", cfg.DNSServers, err)
	}
	return resolver, nil
}

func newProver(cfg Config, resolver *dcv.Resolver) prover {
	return prover{
		dns:  dcv.DNSChecker{Resolver: resolver},
		http: dcv.HTTPChecker{Resolver: resolver, Policy: dcv.AddressPolicy{AllowPrivate: cfg.AllowPrivateAddresses, Allow: cfg.AllowAddresses}, Port: cfg.HTTPPort},
	}
}

// perspectiveAddrs parses -perspectives: comma-separated name=host:port,
// each name a perspective's region, once.
func perspectiveAddrs(s string) ([][2]string, error) {
	var out [][2]string
	seen := map[string]bool{}
	for _, e := range strings.Split(s, ",") {
		if e = strings.TrimSpace(e); e == "" {
			continue
		}
		name, addr, ok := strings.Cut(e, "=")
		name, addr = strings.TrimSpace(name), strings.TrimSpace(addr)
		if !ok || !regionName.MatchString(name) || addr == "" {
			return nil, fmt.Errorf("perspective %q is not region=host:port", e)
		}
		if seen[name] {
			return nil, fmt.Errorf("perspective %s is listed twice", name)
		}
		seen[name] = true
		out = append(out, [2]string{name, addr})
	}
	return out, nil
}

// checkPerspectives parses -perspectives; fewer than the quorum in force
// now is a configuration error: issuance would be refused anyway.
func checkPerspectives(cfg Config) ([][2]string, error) {
	addrs, err := perspectiveAddrs(cfg.Perspectives)
	if err != nil {
		return nil, err
	}
	if q := certpolicy.PerspectiveQuorum(cfg.Now()); len(addrs) < q.Remote {
		return nil, fmt.Errorf("%d remote perspective(s) configured (-perspectives), and the Baseline Requirements require %d from %s (BR 3.2.2.9)",
			len(addrs), q.Remote, q.From.Format(time.DateOnly))
	}
	return addrs, nil
}

// corroborator dials the configured perspectives.
func corroborator(cfg Config, dial func(peer, addr string) (verificationv1.PerspectiveServiceClient, error)) (*mpic.Corroborator, error) {
	addrs, err := checkPerspectives(cfg)
	if err != nil {
		return nil, err
	}
	m := &mpic.Corroborator{Now: cfg.Now, Timeout: cfg.PerspectiveTimeout, Log: cfg.Log}
	for _, a := range addrs {
		c, err := dial(callpolicy.Perspective, a[1])
		if err != nil {
			return nil, err
		}
		m.Perspectives = append(m.Perspectives, mpic.Perspective{Name: a[0], Client: c})
	}
	return m, nil
}

// defaultPerspectives are the regions and RIRs of the perspectives the
// embedded default runs on loopback (StartLocalPerspectives): five RIRs.
var defaultPerspectives = [][2]string{
	{"us-east", "ARIN"}, {"eu-west", "RIPE"}, {"ap-southeast", "APNIC"}, {"sa-east", "LACNIC"}, {"af-south", "AFRINIC"},
}

// LocalPerspectives makes n perspectives from base (its resolvers, HTTP
// port, address policy, PKI) on loopback ports, in the regions and RIRs of
// the embedded default, and returns them with the -perspectives value that
// names them. The caller runs them.
func LocalPerspectives(ctx context.Context, base Config, n int) ([]*Perspective, string, error) {
	var (
		out   []*Perspective
		names []string
	)
	for i := range n {
		d := defaultPerspectives[i%len(defaultPerspectives)]
		cfg := base
		cfg.GRPCAddr = "127.0.0.1:0"
		cfg.Region, cfg.RIR = d[0], d[1]
		if i >= len(defaultPerspectives) {
			cfg.Region = fmt.Sprintf("%s-%d", d[0], i/len(defaultPerspectives)+1)
		}
		p, err := NewPerspective(ctx, cfg)
		if err != nil {
			for _, q := range out {
				q.GRPC.GRPC.Stop()
			}
			return nil, "", err
		}
		out = append(out, p)
		names = append(names, p.Name+"="+p.GRPC.Addr())
	}
	return out, strings.Join(names, ","), nil
}

// RequiredPerspectives is how many remote perspectives the embedded
// default runs at t: the quorum then, or the next step's if it starts
// within 30 days, so a running suite does not fall short on the day.
func RequiredPerspectives(t time.Time) int {
	return max(certpolicy.PerspectiveQuorum(t).Remote, certpolicy.PerspectiveQuorum(t.Add(30*24*time.Hour)).Remote)
}

// StartLocal makes the perspectives the embedded default runs on
// loopback from cfg, and points cfg.Perspectives at them: as many as the
// most demanding phase of the BR table asks for, so that a suite running
// (or a clock moving) across a phase's start never falls short. The
// caller runs them (Perspective.Run).
func StartLocal(ctx context.Context, cfg *Config) ([]*Perspective, error) {
	ps, list, err := LocalPerspectives(ctx, *cfg, certpolicy.MaxRemotePerspectives())
	if err != nil {
		return nil, err
	}
	cfg.Perspectives = list
	return ps, nil
}
