package grpcserver_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/dynamicpb"

	_ "github.com/certflow/certflow/gen/go/certflow/application/v1"
	_ "github.com/certflow/certflow/gen/go/certflow/audit/v1"
	_ "github.com/certflow/certflow/gen/go/certflow/issuance/v1"
	_ "github.com/certflow/certflow/gen/go/certflow/notification/v1"
	_ "github.com/certflow/certflow/gen/go/certflow/order/v1"
	_ "github.com/certflow/certflow/gen/go/certflow/verification/v1"
	"github.com/certflow/certflow/pkg/apierr"
	"github.com/certflow/certflow/pkg/auth"
	"github.com/certflow/certflow/pkg/callpolicy"
	"github.com/certflow/certflow/pkg/grpcclient"
	"github.com/certflow/certflow/pkg/grpcserver"
	"github.com/certflow/certflow/pkg/internalpki"
	"github.com/certflow/certflow/pkg/testenv"
)

// certflowServices walks every service of every certflow proto file linked
// into this binary, so a service or method added later is covered here
// without editing the test.
func certflowServices(t *testing.T) []protoreflect.ServiceDescriptor {
	var out []protoreflect.ServiceDescriptor
	protoregistry.GlobalFiles.RangeFiles(func(f protoreflect.FileDescriptor) bool {
		if strings.HasPrefix(string(f.Package()), "certflow.") {
			for i := 0; i < f.Services().Len(); i++ {
				out = append(out, f.Services().Get(i))
			}
		}
		return true
	})
	if len(out) < 6 {
		t.Fatalf("found %d certflow services; the gen packages are not linked", len(out))
	}
	return out
}

func fullName(m protoreflect.MethodDescriptor) string {
	return fmt.Sprintf("/%s/%s", m.Parent().FullName(), m.Name())
}

func TestEveryMethodHasAPolicy(t *testing.T) {
	seen := map[string]bool{}
	for _, svc := range certflowServices(t) {
		for i := 0; i < svc.Methods().Len(); i++ {
			m := svc.Methods().Get(i)
			name := fullName(m)
			seen[name] = true
			callers, ok := callpolicy.Methods[name]
			if !ok {
				t.Errorf("%s has no entry in callpolicy.Methods", name)
				continue
			}
			// The gateway serves exactly the methods with an HTTP binding.
			http := proto.HasExtension(m.Options(), annotations.E_Http)
			if gw := slices.Contains(callers, callpolicy.Gateway); gw != http {
				t.Errorf("%s: gateway allowed %v, HTTP binding %v; they must agree", name, gw, http)
			}
			for _, c := range callers {
				if !slices.Contains(callpolicy.Components, c) {
					t.Errorf("%s lists unknown caller %q", name, c)
				}
			}
		}
	}
	for name := range callpolicy.Methods {
		if strings.HasPrefix(name, "/certflow.") && !seen[name] {
			t.Errorf("callpolicy lists %s, which no service has", name)
		}
	}
}

// start serves every certflow method with a handler that only says it was
// reached (Unimplemented), behind the real mutual TLS and interceptors.
func start(t *testing.T, pki *internalpki.Authority) string {
	srv, err := grpcserver.New(testenv.Logger(t), "127.0.0.1:0", pki.Source(callpolicy.Issuance))
	if err != nil {
		t.Fatal(err)
	}
	for _, svc := range certflowServices(t) {
		desc := &grpc.ServiceDesc{ServiceName: string(svc.FullName()), HandlerType: (*any)(nil)}
		for i := 0; i < svc.Methods().Len(); i++ {
			m := svc.Methods().Get(i)
			in := m.Input()
			desc.Methods = append(desc.Methods, grpc.MethodDesc{
				MethodName: string(m.Name()),
				Handler: func(_ any, ctx context.Context, dec func(any) error, ic grpc.UnaryServerInterceptor) (any, error) {
					req := dynamicpb.NewMessage(in)
					if err := dec(req); err != nil {
						return nil, err
					}
					reached := func(ctx context.Context, _ any) (any, error) {
						p, _ := auth.From(ctx)
						return nil, status.Errorf(codes.Unimplemented, "reached as %s/%s by %s from %s in %s", p.Account, p.Role, p.Actor, p.Source, p.RequestID)
					}
					return ic(ctx, req, &grpc.UnaryServerInfo{FullMethod: fullName(m)}, reached)
				},
			})
		}
		srv.Register(desc, struct{}{})
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return srv.Addr()
}

func call(ctx context.Context, cc grpc.ClientConnInterface, m protoreflect.MethodDescriptor) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return cc.Invoke(ctx, fullName(m), dynamicpb.NewMessage(m.Input()), dynamicpb.NewMessage(m.Output()))
}

// TestCallMatrix calls every method as every component, and as strangers,
// over real mutual TLS: exactly the callers the policy lists reach the
// handler; every other valid component gets PermissionDenied.
func TestCallMatrix(t *testing.T) {
	pki := testenv.PKI(t)
	addr := start(t, pki)
	callers := append(slices.Clone(callpolicy.Components), "mallory")
	conns := map[string]*grpc.ClientConn{}
	for _, c := range callers {
		conns[c] = testenv.DialAs(t, addr, c)
	}
	n := 0
	for _, svc := range certflowServices(t) {
		for i := 0; i < svc.Methods().Len(); i++ {
			m := svc.Methods().Get(i)
			for _, c := range callers {
				err := call(context.Background(), conns[c], m)
				want := codes.PermissionDenied
				if slices.Contains(callpolicy.Methods[fullName(m)], c) {
					want = codes.Unimplemented
				}
				if got := status.Code(err); got != want {
					t.Errorf("%s as %s = %v; want %v", fullName(m), c, err, want)
				}
				n++
			}
		}
	}
	t.Logf("%d method × caller pairs checked", n)
}

// TestMetadataBelievedOnlyFromThoseAllowed: account and role metadata are
// accepted only from a component allowed to assert that role.
func TestMetadataBelievedOnlyFromThoseAllowed(t *testing.T) {
	pki := testenv.PKI(t)
	addr := start(t, pki)
	method := func(name string) protoreflect.MethodDescriptor {
		d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(name))
		if err != nil {
			t.Fatal(err)
		}
		return d.(protoreflect.MethodDescriptor)
	}
	getOrder := method("certflow.order.v1.OrderService.GetOrder")
	issue := method("certflow.issuance.v1.IssuanceService.IssueCertificate")
	approve := method("certflow.verification.v1.ReviewService.ApproveReview")
	tests := []struct {
		caller string
		m      protoreflect.MethodDescriptor
		md     []string
		want   codes.Code
	}{
		{callpolicy.Gateway, getOrder, []string{"alice", "customer"}, codes.Unimplemented},
		{callpolicy.Gateway, approve, []string{"ca-staff", "reviewer"}, codes.Unimplemented},
		{callpolicy.Gateway, getOrder, []string{"alice", "system"}, codes.PermissionDenied},
		{callpolicy.Gateway, getOrder, []string{"alice", "admin"}, codes.PermissionDenied},
		{callpolicy.Gateway, getOrder, []string{"alice", ""}, codes.PermissionDenied},
		{callpolicy.Gateway, getOrder, []string{"", "customer"}, codes.PermissionDenied},
		{callpolicy.Application, issue, []string{"alice", "system"}, codes.Unimplemented},
		{callpolicy.Application, issue, []string{"alice", "customer"}, codes.PermissionDenied},
		{callpolicy.Application, issue, []string{"ca-staff", "reviewer"}, codes.PermissionDenied},
		{callpolicy.Application, issue, nil, codes.Unimplemented},
		{callpolicy.Gateway, issue, []string{"alice", "customer"}, codes.PermissionDenied},
		{callpolicy.Verification, issue, []string{"alice", "system"}, codes.PermissionDenied},
		{callpolicy.Operator, method("grpc.health.v1.Health.Check"), []string{"alice", "customer"}, codes.PermissionDenied},
	}
	for _, tt := range tests {
		ctx := context.Background()
		if tt.md != nil {
			ctx = metadata.AppendToOutgoingContext(ctx, auth.MetadataAccount, tt.md[0], auth.MetadataRole, tt.md[1])
		}
		// Actor, source and request id ride along and are believed with
		// the principal only.
		ctx = metadata.AppendToOutgoingContext(ctx, auth.MetadataActor, "sha256:0123", auth.MetadataSource, "192.0.2.7", auth.MetadataRequestID, "req-1")
		err := call(ctx, testenv.DialAs(t, addr, tt.caller), tt.m)
		if got := status.Code(err); got != tt.want {
			t.Errorf("%s as %s with %q = %v; want %v", fullName(tt.m), tt.caller, tt.md, err, tt.want)
		}
		if tt.want == codes.Unimplemented && tt.md != nil && !strings.Contains(status.Convert(err).Message(), tt.md[0]+"/"+tt.md[1]) {
			t.Errorf("%s as %s: handler saw %q; want the principal %q", fullName(tt.m), tt.caller, status.Convert(err).Message(), tt.md)
		}
		if msg := status.Convert(err).Message(); tt.want == codes.Unimplemented && tt.md != nil && !strings.HasSuffix(msg, "by sha256:0123 from 192.0.2.7 in req-1") {
			t.Errorf("%s as %s: handler saw %q; want actor, source and request id", fullName(tt.m), tt.caller, msg)
		}
		if msg := status.Convert(err).Message(); tt.md == nil && strings.Contains(msg, "sha256:0123") {
			t.Errorf("%s as %s without a principal: handler saw %q; want no actor", fullName(tt.m), tt.caller, msg)
		}
	}
}

// TestStrangersCannotConnect: no client certificate, or one from another
// CA, fails the handshake; health and reflection follow the policy too.
func TestStrangersCannotConnect(t *testing.T) {
	pki := testenv.PKI(t)
	addr := start(t, pki)
	roots, _ := pki.Source("x").Roots()
	foreign, err := internalpki.New()
	if err != nil {
		t.Fatal(err)
	}
	foreignCert, _ := foreign.Source(callpolicy.Application).Certificate()
	for name, cfg := range map[string]*tls.Config{
		"no client certificate":         {MinVersion: tls.VersionTLS13, RootCAs: roots, ServerName: "localhost"},
		"certificate from another root": {MinVersion: tls.VersionTLS13, RootCAs: roots, ServerName: "localhost", Certificates: []tls.Certificate{*foreignCert}},
	} {
		cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
		if err != nil {
			t.Fatal(err)
		}
		_, err = healthpb.NewHealthClient(cc).Check(context.Background(), &healthpb.HealthCheckRequest{})
		_ = cc.Close()
		if status.Code(err) != codes.Unavailable {
			t.Errorf("%s: health check = %v; want the handshake refused (Unavailable)", name, err)
		}
	}
	// A server of another root is not trusted by a client either.
	other, err := grpcserver.New(testenv.Logger(t), "127.0.0.1:0", foreign.Source(callpolicy.Issuance))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- other.Serve(ctx) }()
	defer func() { cancel(); <-done }()
	if _, err := healthpb.NewHealthClient(testenv.DialAs(t, other.Addr(), callpolicy.Application)).Check(context.Background(), &healthpb.HealthCheckRequest{}); status.Code(err) != codes.Unavailable {
		t.Errorf("client against a server of another root = %v; want Unavailable", err)
	}
	// Health for every component, reflection for the operator only.
	for _, c := range callpolicy.Components {
		if _, err := healthpb.NewHealthClient(testenv.DialAs(t, addr, c)).Check(context.Background(), &healthpb.HealthCheckRequest{}); err != nil {
			t.Errorf("health as %s = %v; want SERVING", c, err)
		}
	}
}

// TestReflectionForTheOperatorOnly: grpcurl with the operator's
// certificate lists the services; no other component may.
func TestReflectionForTheOperatorOnly(t *testing.T) {
	addr := start(t, testenv.PKI(t))
	list := func(caller string) ([]string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		st, err := reflectionpb.NewServerReflectionClient(testenv.DialAs(t, addr, caller)).ServerReflectionInfo(ctx)
		if err != nil {
			return nil, err
		}
		// A refused stream may end the Send with io.EOF; its status comes
		// with Recv.
		if err := st.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		resp, err := st.Recv()
		if err != nil {
			return nil, err
		}
		var names []string
		for _, s := range resp.GetListServicesResponse().GetService() {
			names = append(names, s.Name)
		}
		return names, nil
	}
	names, err := list(callpolicy.Operator)
	if err != nil || !slices.Contains(names, "certflow.issuance.v1.IssuanceService") {
		t.Fatalf("reflection as operator = %v, %v; want the services listed", names, err)
	}
	for _, c := range []string{callpolicy.Gateway, callpolicy.Application} {
		if _, err := list(c); status.Code(err) != codes.PermissionDenied {
			t.Errorf("reflection as %s = %v; want PermissionDenied", c, err)
		}
	}
}

// TestClientPassesTheRequestOn: a service calling another for a request
// speaks as the system for the account, and passes on who made the
// request, from where and its id.
func TestClientPassesTheRequestOn(t *testing.T) {
	pki := testenv.PKI(t)
	addr := start(t, pki)
	cc, err := grpcclient.Dial(addr, callpolicy.Issuance, pki.Source(callpolicy.Application))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx := auth.With(context.Background(), auth.Principal{Account: "acme", Role: auth.Customer, Actor: "sha256:0123", Source: "192.0.2.7", RequestID: "req-1"})
	d, err := protoregistry.GlobalFiles.FindDescriptorByName("certflow.issuance.v1.IssuanceService.IssueCertificate")
	if err != nil {
		t.Fatal(err)
	}
	err = call(ctx, cc, d.(protoreflect.MethodDescriptor))
	var ae *apierr.Error
	if !errors.As(err, &ae) || status.Convert(ae.Err).Message() != "reached as acme/system by sha256:0123 from 192.0.2.7 in req-1" {
		t.Fatalf("IssueCertificate through grpcclient = %v; want it reached as acme/system with the request's actor, source and id", err)
	}
}
