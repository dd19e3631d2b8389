package app_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	applicationv1 "github.com/certflow/certflow/gen/go/certflow/application/v1"
	orderv1 "github.com/certflow/certflow/gen/go/certflow/order/v1"
	verificationv1 "github.com/certflow/certflow/gen/go/certflow/verification/v1"
	"github.com/certflow/certflow/pkg/auth"
	"github.com/certflow/certflow/pkg/testenv"
	"github.com/certflow/certflow/services/application/internal/app"
)

// TestRetryAfterAbandonedSubmit: a submit whose last write fails after its
// challenges were made undoes them (cancels the challenges, releases the
// instance); the retry, which uses the same attempt number, must get
// challenges that can be proven, and the application must reach ISSUED.
// (TestChaosCrashEachService found an application left for ever in
// PENDING_DOMAIN_VERIFICATION with the cancelled challenge of the abandoned
// try: verification handed back, for the same attempt, what it had made.)
func TestRetryAfterAbandonedSubmit(t *testing.T) {
	s := startStack(t)
	ctx, cancel := context.WithTimeout(testenv.As(context.Background(), "alice", auth.Customer), time.Minute)
	defer cancel()
	o, err := s.orders.CreateOrder(ctx, &orderv1.CreateOrderRequest{Order: &orderv1.Order{Product: "products/dv-single-1y", Quantity: 1}})
	if err != nil {
		t.Fatal(err)
	}
	created, err := s.apps.CreateApplication(ctx, &applicationv1.CreateApplicationRequest{Application: &applicationv1.Application{
		Instance: o.Instances[0], Domains: []string{"www.abandoned.test"}, ValidationMethod: verificationv1.ValidationMethod_VALIDATION_METHOD_DNS_TXT,
		Applicant: &applicationv1.Applicant{Name: "Han Meimei", Phone: "+86 10 1234 5678", Email: "han@example.test"},
	}})
	if err != nil {
		t.Fatal(err)
	}

	// The first submit's request is cancelled once its challenges exist,
	// so its final write fails and it abandons what it did.
	sctx, scancel := context.WithCancel(ctx)
	var armed atomic.Bool
	armed.Store(true)
	app.SetTestHook(func(point string) {
		if point == "submit:challenged" && armed.CompareAndSwap(true, false) {
			scancel()
			time.Sleep(100 * time.Millisecond) // the server sees the cancel
		}
	})
	t.Cleanup(func() { app.SetTestHook(nil) })
	if _, err := s.apps.SubmitApplication(sctx, &applicationv1.SubmitApplicationRequest{Name: created.Name}); err == nil {
		t.Fatal("the cancelled submit succeeded")
	}
	if armed.Load() {
		t.Fatal("the submit never reached its challenges")
	}

	// Retried as a client would while the abandoned try still holds it.
	var rec *applicationv1.Application
	deadline := time.Now().Add(30 * time.Second)
	for {
		rec, err = s.apps.SubmitApplication(ctx, &applicationv1.SubmitApplicationRequest{Name: created.Name})
		if testenv.Code(err) != codes.Aborted || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("retried submit = %v", err)
	}
	if rec.Attempt != 1 || len(rec.Challenges) != 1 {
		t.Fatalf("retried submit: attempt %d, %d challenges; want attempt 1 with 1 challenge", rec.Attempt, len(rec.Challenges))
	}
	c, err := s.checks.GetChallenge(ctx, &verificationv1.GetChallengeRequest{Name: rec.Challenges[0].Name})
	if err != nil {
		t.Fatal(err)
	}
	if c.State != verificationv1.Challenge_PENDING {
		t.Fatalf("the retried submit's challenge is %v; want PENDING", c.State)
	}
	s.proveAndIssue(t, ctx, rec)
}
