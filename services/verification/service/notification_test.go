package service_test

import (
	"context"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	notificationv1 "github.com/certflow/certflow/gen/go/certflow/notification/v1"
	"github.com/certflow/certflow/pkg/auth"
	"github.com/certflow/certflow/pkg/callpolicy"
	"github.com/certflow/certflow/pkg/grpcserver"
	"github.com/certflow/certflow/pkg/testenv"
)

// fakeNotification stands in for the notification service's one method
// verification calls, so that tests can make it fail on purpose: it records
// each SendDomainValidationEmail with the caller's principal, and fails the
// first `fail` calls with Unavailable. It serves behind the real gRPC
// server (mutual TLS as "notification", the call policy); the real
// notification service's side is tested in its own module and end to end.
type fakeNotification struct {
	notificationv1.UnimplementedNotificationServiceServer
	addr string

	mu    sync.Mutex
	fail  int
	sent  []*notificationv1.SendDomainValidationEmailRequest
	calls []auth.Principal
}

func startNotification(t *testing.T) *fakeNotification {
	t.Helper()
	srv, err := grpcserver.New(testenv.Logger(t), "127.0.0.1:0", testenv.PKI(t).Source(callpolicy.Notification))
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeNotification{addr: srv.Addr()}
	srv.Register(&notificationv1.NotificationService_ServiceDesc, f)
	testenv.Run(t, srv.Serve)
	return f
}

func (f *fakeNotification) SendDomainValidationEmail(ctx context.Context, req *notificationv1.SendDomainValidationEmailRequest) (*notificationv1.SendDomainValidationEmailResponse, error) {
	p, _ := auth.From(ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, p)
	if f.fail > 0 {
		f.fail--
		return nil, status.Error(codes.Unavailable, "mail server down")
	}
	f.sent = append(f.sent, req)
	return &notificationv1.SendDomainValidationEmailResponse{Notification: &notificationv1.Notification{Name: "notifications/n1", State: notificationv1.Notification_SENT}}, nil
}

// failNext makes the next n calls fail.
func (f *fakeNotification) failNext(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = n
}

// mails returns the accepted mails of a challenge.
func (f *fakeNotification) mails(challenge string) []*notificationv1.SendDomainValidationEmailRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*notificationv1.SendDomainValidationEmailRequest
	for _, r := range f.sent {
		if r.GetChallenge() == challenge {
			out = append(out, r)
		}
	}
	return out
}

// code returns the code of the last accepted mail of a challenge.
func (f *fakeNotification) code(t *testing.T, challenge string) string {
	t.Helper()
	m := f.mails(challenge)
	if len(m) == 0 {
		t.Fatalf("no validation email for %s reached the notification service", challenge)
	}
	return m[len(m)-1].GetCode()
}
