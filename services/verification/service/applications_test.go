package service_test

import (
	"context"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	applicationv1 "github.com/certflow/certflow/gen/go/certflow/application/v1"
	"github.com/certflow/certflow/pkg/auth"
	"github.com/certflow/certflow/pkg/callpolicy"
	"github.com/certflow/certflow/pkg/grpcserver"
	"github.com/certflow/certflow/pkg/testenv"
)

// fakeApplications stands in for the application service's GetApplication
// (the real one is in its own module; end to end in the suite): every
// application exists as a DRAFT of the asking account unless set otherwise.
// It serves behind the real gRPC server (mutual TLS as "application", the
// call policy), so the call verification makes is the real one.
type fakeApplications struct {
	applicationv1.UnimplementedApplicationServiceServer
	addr string

	mu     sync.Mutex
	owner  map[string]string // application -> the only account that has it
	state  map[string]applicationv1.Application_State
	absent map[string]bool
}

func startApplications(t *testing.T) *fakeApplications {
	t.Helper()
	srv, err := grpcserver.New(testenv.Logger(t), "127.0.0.1:0", testenv.PKI(t).Source(callpolicy.Application))
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeApplications{addr: srv.Addr(), owner: map[string]string{}, state: map[string]applicationv1.Application_State{}, absent: map[string]bool{}}
	srv.Register(&applicationv1.ApplicationService_ServiceDesc, f)
	testenv.Run(t, srv.Serve)
	return f
}

func (f *fakeApplications) GetApplication(ctx context.Context, req *applicationv1.GetApplicationRequest) (*applicationv1.Application, error) {
	p, _ := auth.From(ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	if owner, ok := f.owner[req.GetName()]; f.absent[req.GetName()] || ok && owner != p.Account {
		return nil, status.Errorf(codes.NotFound, "%s not found", req.GetName())
	}
	st, ok := f.state[req.GetName()]
	if !ok {
		st = applicationv1.Application_DRAFT
	}
	return &applicationv1.Application{Name: req.GetName(), State: st}, nil
}
