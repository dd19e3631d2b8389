package service_test

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	applicationv1 "github.com/certflow/certflow/gen/go/certflow/application/v1"
	eventsv1 "github.com/certflow/certflow/gen/go/certflow/events/v1"
	verificationv1 "github.com/certflow/certflow/gen/go/certflow/verification/v1"
	"github.com/certflow/certflow/pkg/auth"
	"github.com/certflow/certflow/pkg/events"
	"github.com/certflow/certflow/pkg/service"
	"github.com/certflow/certflow/pkg/testenv"
	verification "github.com/certflow/certflow/services/verification/service"
)

// orgEnv is a verification service for organization validation tests:
// no DCV traffic, so no DNS or web servers.
type orgEnv struct {
	docs    verificationv1.VerificationServiceClient
	reviews verificationv1.ReviewServiceClient
	conn    *events.Conn
	clock   *clock
	apps    *fakeApplications
}

func startOrg(t *testing.T) *orgEnv {
	t.Helper()
	e := &orgEnv{clock: &clock{t: time.Date(2026, time.November, 2, 9, 0, 0, 0, time.UTC)}, apps: startApplications(t)}
	natsURL := testenv.NATS(t)
	_, db := testenv.Database(t)
	svc, err := newVerification(t, verification.Config{
		Config:            service.Config{GRPCAddr: "127.0.0.1:0", MongoURI: testenv.MongoURI(t), Database: db, NATSURL: natsURL, NATSSeedFile: testenv.NATSSeed(t, natsURL, "verification"), PKI: testenv.PKI(t), Log: testenv.Logger(t), RelayInterval: 100 * time.Millisecond},
		DNSServers:        "127.0.0.1:1", // never asked: no challenges here
		NotificationAddr:  "127.0.0.1:1", // never called: no EMAIL challenges
		ApplicationAddr:   e.apps.addr,
		HTTPPort:          80,
		ChallengeLifetime: time.Hour,
		RetryInitial:      time.Second,
		RetryMax:          time.Second,
		SweepInterval:     time.Second,
		Now:               e.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Run(t, svc.Run)
	cc := testenv.Dial(t, svc.GRPC.Addr())
	e.docs = verificationv1.NewVerificationServiceClient(cc)
	e.reviews = verificationv1.NewReviewServiceClient(cc)
	e.conn = testenv.Conn(t, natsURL)
	return e
}

var (
	alice    = testenv.As(context.Background(), "alice", auth.Customer)
	bob      = testenv.As(context.Background(), "bob", auth.Customer)
	staff    = testenv.As(context.Background(), "staff", auth.Reviewer)
	aliceSys = testenv.As(context.Background(), "alice", auth.System)
	bobSys   = testenv.As(context.Background(), "bob", auth.System)
)

// reason returns the ErrorInfo reason of a gRPC error.
func reason(err error) string {
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.Reason
		}
	}
	return ""
}

func encode(t *testing.T, enc func(*bytes.Buffer, image.Image) error, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for x := 0; x < w; x++ {
		img.Set(x, x%h, color.RGBA{G: 128, A: 255})
	}
	var b bytes.Buffer
	if err := enc(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func pngBytes(t *testing.T, w, h int) []byte {
	return encode(t, func(b *bytes.Buffer, img image.Image) error { return png.Encode(b, img) }, w, h)
}

func jpegBytes(t *testing.T, w, h int) []byte {
	return encode(t, func(b *bytes.Buffer, img image.Image) error { return jpeg.Encode(b, img, nil) }, w, h)
}

func gifBytes(t *testing.T) []byte {
	return encode(t, func(b *bytes.Buffer, img image.Image) error { return gif.Encode(b, img, nil) }, 2, 2)
}

func (e *orgEnv) upload(t *testing.T, ctx context.Context, app, name string, content []byte) *verificationv1.Document {
	t.Helper()
	d, err := e.docs.UploadDocument(ctx, &verificationv1.UploadDocumentRequest{
		Parent: app, Document: &verificationv1.Document{DisplayName: name, Content: content},
	})
	if err != nil {
		t.Fatalf("UploadDocument(%s, %q) = %v", app, name, err)
	}
	return d
}

func TestDocuments(t *testing.T) {
	e := startOrg(t)
	png1 := pngBytes(t, 3, 2)
	doc := e.upload(t, alice, "applications/a1", "business-license.png", png1)
	if !strings.HasPrefix(doc.Name, "applications/a1/documents/") || doc.ContentType != "image/png" || doc.Width != 3 || doc.Height != 2 ||
		doc.SizeBytes != int64(len(png1)) || len(doc.Sha256) != 64 || doc.DisplayName != "business-license.png" || doc.Content != nil {
		t.Fatalf("UploadDocument(png) = %v; want a 3x2 image/png under applications/a1 without content", doc)
	}
	jpg := e.upload(t, alice, "applications/a1", "", jpegBytes(t, 4, 4))
	if jpg.ContentType != "image/jpeg" || jpg.DisplayName != "document.jpg" {
		t.Fatalf("UploadDocument(jpeg, no name) = %v; want image/jpeg named document.jpg", jpg)
	}
	if again := e.upload(t, alice, "applications/a1", "retry.png", png1); again.Name != doc.Name {
		t.Fatalf("UploadDocument(same content again) = %s; want the first document %s", again.Name, doc.Name)
	}

	padded := append(pngBytes(t, 3, 2), make([]byte, 600*1024)...)
	e.apps.mu.Lock()
	e.apps.absent["applications/none"] = true
	e.apps.owner["applications/bobs"] = "bob"
	e.apps.state["applications/done"] = applicationv1.Application_ISSUED
	e.apps.state["applications/gone"] = applicationv1.Application_WITHDRAWN
	e.apps.mu.Unlock()
	for _, tt := range []struct {
		name       string
		ctx        context.Context
		parent     string
		display    string
		content    []byte
		wantCode   codes.Code
		wantReason string
	}{
		{"gif named .png", alice, "applications/a1", "license.png", gifBytes(t), codes.InvalidArgument, "UNSUPPORTED_FILE_TYPE"},
		{"text named .png", alice, "applications/a1", "license.png", []byte("this is not an image"), codes.InvalidArgument, "UNSUPPORTED_FILE_TYPE"},
		{"600 KB", alice, "applications/a1", "big.png", padded, codes.InvalidArgument, "FILE_TOO_LARGE"},
		{"empty", alice, "applications/a1", "empty.png", nil, codes.InvalidArgument, "EMPTY_FILE"},
		{"path in name", alice, "applications/a1", "../../x.png", pngBytes(t, 1, 1), codes.InvalidArgument, "INVALID_DISPLAY_NAME"},
		{"bad parent", alice, "orders/a1", "x.png", png1, codes.InvalidArgument, "INVALID_NAME"},
		{"reviewer", staff, "applications/a1", "x.png", png1, codes.PermissionDenied, "ROLE_REQUIRED"},
		// Only an existing, open application of the caller's account takes
		// documents: nothing else grows the stored data.
		{"no such application", alice, "applications/none", "x.png", png1, codes.NotFound, ""},
		{"another account's application", alice, "applications/bobs", "x.png", png1, codes.NotFound, ""},
		{"issued application", alice, "applications/done", "x.png", png1, codes.FailedPrecondition, "APPLICATION_CLOSED"},
		{"withdrawn application", alice, "applications/gone", "x.png", png1, codes.FailedPrecondition, "APPLICATION_CLOSED"},
	} {
		_, err := e.docs.UploadDocument(tt.ctx, &verificationv1.UploadDocumentRequest{
			Parent: tt.parent, Document: &verificationv1.Document{DisplayName: tt.display, Content: tt.content},
		})
		if testenv.Code(err) != tt.wantCode || reason(err) != tt.wantReason {
			t.Errorf("UploadDocument(%s) = %v (%s); want %v %s", tt.name, testenv.Code(err), reason(err), tt.wantCode, tt.wantReason)
		}
	}
	// Nothing was stored; a name that is not the caller's application is
	// NotFound, as everywhere else, not an empty list.
	for _, tt := range []struct {
		parent string
		want   codes.Code
	}{
		{"applications/none", codes.NotFound}, {"applications/bobs", codes.NotFound},
		{"applications/done", codes.OK}, {"applications/gone", codes.OK},
	} {
		got, err := e.docs.ListDocuments(alice, &verificationv1.ListDocumentsRequest{Parent: tt.parent})
		if testenv.Code(err) != tt.want || len(got.GetDocuments()) != 0 {
			t.Errorf("ListDocuments(%s) after refused uploads = %v, %v; want %v and nothing stored", tt.parent, got, err, tt.want)
		}
	}

	list, err := e.docs.ListDocuments(alice, &verificationv1.ListDocumentsRequest{Parent: "applications/a1"})
	if err != nil || len(list.Documents) != 2 || list.Documents[0].Name != doc.Name || list.Documents[1].Name != jpg.Name {
		t.Fatalf("ListDocuments(a1) = %v, %v; want the PNG then the JPEG", list, err)
	}
	for _, d := range list.Documents {
		if d.Content != nil {
			t.Errorf("ListDocuments returned the content of %s; want metadata only", d.Name)
		}
	}
	first, err := e.docs.ListDocuments(alice, &verificationv1.ListDocumentsRequest{Parent: "applications/a1", PageSize: 1})
	if err != nil || len(first.Documents) != 1 || first.NextPageToken == "" {
		t.Fatalf("ListDocuments(page_size 1) = %v, %v; want one document and a next page", first, err)
	}
	second, err := e.docs.ListDocuments(alice, &verificationv1.ListDocumentsRequest{Parent: "applications/a1", PageSize: 1, PageToken: first.NextPageToken})
	if err != nil || len(second.Documents) != 1 || second.Documents[0].Name != jpg.Name || second.NextPageToken != "" {
		t.Fatalf("ListDocuments(second page) = %v, %v; want the JPEG and no further page", second, err)
	}

	got, err := e.docs.GetDocument(alice, &verificationv1.GetDocumentRequest{Name: doc.Name})
	if err != nil || !bytes.Equal(got.Content, png1) || got.Sha256 != doc.Sha256 {
		t.Fatalf("GetDocument(owner) = %v; want the uploaded content", err)
	}
	byStaff, err := e.docs.GetDocument(staff, &verificationv1.GetDocumentRequest{Name: doc.Name})
	if err != nil || !bytes.Equal(byStaff.Content, png1) {
		t.Fatalf("GetDocument(reviewer) = %v; want the uploaded content", err)
	}
	if _, err := e.docs.GetDocument(bob, &verificationv1.GetDocumentRequest{Name: doc.Name}); testenv.Code(err) != codes.NotFound {
		t.Fatalf("GetDocument(another customer) = %v; want NotFound", err)
	}
	if bobs, err := e.docs.ListDocuments(bob, &verificationv1.ListDocumentsRequest{Parent: "applications/a1"}); err != nil || len(bobs.Documents) != 0 {
		t.Fatalf("ListDocuments(another customer) = %v, %v; want none of alice's", bobs, err)
	}
	otherApp := strings.Replace(doc.Name, "applications/a1/", "applications/a2/", 1)
	if _, err := e.docs.GetDocument(alice, &verificationv1.GetDocumentRequest{Name: otherApp}); testenv.Code(err) != codes.NotFound {
		t.Fatalf("GetDocument(%s) = %v; want NotFound (the document is a1's)", otherApp, err)
	}
	if _, err := e.docs.GetDocument(alice, &verificationv1.GetDocumentRequest{Name: "applications/a1/x"}); testenv.Code(err) != codes.InvalidArgument {
		t.Fatalf("GetDocument(bad name) = %v; want InvalidArgument", err)
	}
	if _, err := e.docs.ListDocuments(staff, &verificationv1.ListDocumentsRequest{Parent: "applications/a1"}); testenv.Code(err) != codes.PermissionDenied {
		t.Fatalf("ListDocuments(reviewer) = %v; want PermissionDenied (reviewers list through GetReview)", err)
	}
}

func orgReview(app string, attempt int32, orgID string) *verificationv1.CreateReviewRequest {
	return &verificationv1.CreateReviewRequest{Review: &verificationv1.Review{
		Kind: verificationv1.Review_ORGANIZATION, Application: app, Attempt: attempt, ValidationLevel: "OV",
		Domains:      []string{"example.com", "www.example.com"},
		Applicant:    &verificationv1.Contact{Name: "Li Lei", Phone: "+86 571 1234 5678", Email: "li@example.com"},
		Organization: &verificationv1.Organization{Name: "Example Ltd", OrganizationId: orgID, Country: "CN", Province: "Zhejiang", City: "Hangzhou", Phone: "+86 571 8765 4321"},
	}}
}

func manualReview(app string) *verificationv1.CreateReviewRequest {
	return &verificationv1.CreateReviewRequest{Review: &verificationv1.Review{
		Kind: verificationv1.Review_MANUAL, Application: app, Attempt: 1, ValidationLevel: "DV",
		Domains: []string{"mybank.example"}, FlaggedWords: []string{"bank"},
	}}
}

func (e *orgEnv) create(t *testing.T, ctx context.Context, req *verificationv1.CreateReviewRequest) *verificationv1.Review {
	t.Helper()
	r, err := e.reviews.CreateReview(ctx, req)
	if err != nil {
		t.Fatalf("CreateReview(%s %s) = %v", req.Review.Kind, req.Review.Application, err)
	}
	return r
}

// decided waits for the ReviewDecided event of review on subject.
func (e *orgEnv) decided(t *testing.T, subject, review string) *eventsv1.ReviewDecided {
	t.Helper()
	ctx := context.Background()
	stream, err := e.conn.JS.Stream(ctx, events.Stream)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := stream.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for seq := uint64(1); seq <= info.State.LastSeq; seq++ {
			m, err := stream.GetMsg(ctx, seq)
			if err != nil || m.Subject != subject {
				continue
			}
			var ev eventsv1.ReviewDecided
			if err := proto.Unmarshal(m.Data, &ev); err != nil {
				t.Fatal(err)
			}
			if ev.Review == review {
				return &ev
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s event for %s", subject, review)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// published waits until the stream holds a message on subject whose
// ce-subject is review.
func (e *orgEnv) published(t *testing.T, subject, review string) {
	t.Helper()
	ctx := context.Background()
	stream, err := e.conn.JS.Stream(ctx, events.Stream)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := stream.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for seq := uint64(1); seq <= info.State.LastSeq; seq++ {
			if m, err := stream.GetMsg(ctx, seq); err == nil && m.Subject == subject && m.Header.Get(events.HeaderSubject) == review {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s event for %s", subject, review)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestReviewFlow(t *testing.T) {
	e := startOrg(t)
	doc := e.upload(t, alice, "applications/a1", "license.png", pngBytes(t, 8, 8))
	org := e.create(t, aliceSys, orgReview("applications/a1", 1, "91330000MA27XF4T0K"))
	if org.State != verificationv1.Review_PENDING || org.Account != "alice" || org.Reused || !strings.HasPrefix(org.Name, "reviews/") {
		t.Fatalf("CreateReview(ORGANIZATION) = %v; want a PENDING review of alice", org)
	}
	if again := e.create(t, aliceSys, orgReview("applications/a1", 1, "91330000MA27XF4T0K")); again.Name != org.Name {
		t.Fatalf("CreateReview retry = %s; want the same review %s", again.Name, org.Name)
	}
	e.published(t, events.ReviewCreated, org.Name)
	e.clock.Advance(time.Minute)
	manual := e.create(t, alice, manualReview("applications/a2")) // forwarded with the customer's role
	if _, err := e.reviews.CreateReview(staff, manualReview("applications/a9")); testenv.Code(err) != codes.PermissionDenied {
		t.Fatalf("CreateReview(reviewer) = %v; want PermissionDenied", err)
	}

	// Customers never see reviews.
	if _, err := e.reviews.ListReviews(alice, &verificationv1.ListReviewsRequest{}); testenv.Code(err) != codes.PermissionDenied {
		t.Fatalf("ListReviews(customer) = %v; want PermissionDenied", err)
	}
	if _, err := e.reviews.GetReview(alice, &verificationv1.GetReviewRequest{Name: org.Name}); testenv.Code(err) != codes.PermissionDenied {
		t.Fatalf("GetReview(customer) = %v; want PermissionDenied", err)
	}
	if _, err := e.reviews.ApproveReview(alice, &verificationv1.ApproveReviewRequest{Name: org.Name}); testenv.Code(err) != codes.PermissionDenied {
		t.Fatalf("ApproveReview(customer) = %v; want PermissionDenied", err)
	}

	// The queue, oldest first.
	queue, err := e.reviews.ListReviews(staff, &verificationv1.ListReviewsRequest{Filter: "state = PENDING"})
	if err != nil || len(queue.Reviews) != 2 || queue.Reviews[0].Name != org.Name || queue.Reviews[1].Name != manual.Name {
		t.Fatalf("ListReviews(PENDING) = %v, %v; want the ORGANIZATION review then the MANUAL one", queue, err)
	}
	onlyOrg, err := e.reviews.ListReviews(staff, &verificationv1.ListReviewsRequest{Filter: `kind = ORGANIZATION AND application = "applications/a1"`})
	if err != nil || len(onlyOrg.Reviews) != 1 || onlyOrg.Reviews[0].Name != org.Name {
		t.Fatalf("ListReviews(ORGANIZATION of a1) = %v, %v; want one", onlyOrg, err)
	}
	if _, err := e.reviews.ListReviews(staff, &verificationv1.ListReviewsRequest{Filter: "state = DONE"}); testenv.Code(err) != codes.InvalidArgument {
		t.Fatalf("ListReviews(state = DONE) = %v; want InvalidArgument", err)
	}

	got, err := e.reviews.GetReview(staff, &verificationv1.GetReviewRequest{Name: org.Name})
	if err != nil || len(got.Documents) != 1 || got.Documents[0].Name != doc.Name || got.Documents[0].Content != nil || got.Organization.GetName() != "Example Ltd" {
		t.Fatalf("GetReview = %v, %v; want the organization and its one document without content", got, err)
	}

	if _, err := e.reviews.RecordPhoneCall(staff, &verificationv1.RecordPhoneCallRequest{Name: org.Name, Outcome: verificationv1.PhoneCall_OUTCOME_CONFIRMED}); testenv.Code(err) != codes.InvalidArgument {
		t.Fatalf("RecordPhoneCall(no phone) = %v; want InvalidArgument", err)
	}
	if _, err := e.reviews.RecordPhoneCall(staff, &verificationv1.RecordPhoneCallRequest{Name: org.Name, Phone: "+86 571 8765 4321"}); testenv.Code(err) != codes.InvalidArgument {
		t.Fatalf("RecordPhoneCall(no outcome) = %v; want InvalidArgument", err)
	}
	called, err := e.reviews.RecordPhoneCall(staff, &verificationv1.RecordPhoneCallRequest{
		Name: org.Name, Phone: "+86 571 8765 4321", Outcome: verificationv1.PhoneCall_OUTCOME_CONFIRMED, Notes: "spoke to the office manager",
	})
	if err != nil || len(called.PhoneCalls) != 1 || called.PhoneCalls[0].Reviewer != "staff" || called.PhoneCalls[0].Outcome != verificationv1.PhoneCall_OUTCOME_CONFIRMED {
		t.Fatalf("RecordPhoneCall = %v, %v; want one CONFIRMED call by staff", called, err)
	}
	e.published(t, events.PhoneCallRecorded, org.Name)

	approved, err := e.reviews.ApproveReview(staff, &verificationv1.ApproveReviewRequest{Name: org.Name, Note: "licence matches the registry"})
	if err != nil || approved.State != verificationv1.Review_APPROVED || approved.Reviewer != "staff" || approved.DecideTime == nil {
		t.Fatalf("ApproveReview = %v, %v; want APPROVED by staff with a decide time", approved, err)
	}
	ev := e.decided(t, events.ReviewApproved, org.Name)
	if ev.State != "APPROVED" || ev.Account != "alice" || ev.Reviewer != "staff" || ev.Kind != "ORGANIZATION" || ev.Application != "applications/a1" || ev.Attempt != 1 || ev.Reused {
		t.Fatalf("ReviewApproved event = %v; want APPROVED for alice's a1 by staff", ev)
	}
	if _, err := e.reviews.ApproveReview(staff, &verificationv1.ApproveReviewRequest{Name: org.Name}); testenv.Code(err) != codes.FailedPrecondition {
		t.Fatalf("ApproveReview twice = %v; want FailedPrecondition", err)
	}
	if _, err := e.reviews.RecordPhoneCall(staff, &verificationv1.RecordPhoneCallRequest{Name: org.Name, Phone: "1", Outcome: verificationv1.PhoneCall_OUTCOME_CONFIRMED}); testenv.Code(err) != codes.FailedPrecondition {
		t.Fatalf("RecordPhoneCall(approved) = %v; want FailedPrecondition", err)
	}

	// Rejection with a cause.
	if _, err := e.reviews.RejectReview(staff, &verificationv1.RejectReviewRequest{Name: manual.Name}); testenv.Code(err) != codes.InvalidArgument {
		t.Fatalf("RejectReview(no cause) = %v; want InvalidArgument", err)
	}
	if _, err := e.reviews.RejectReview(staff, &verificationv1.RejectReviewRequest{Name: manual.Name, Cause: strings.Repeat("c", 1001)}); testenv.Code(err) != codes.InvalidArgument {
		t.Fatalf("RejectReview(1001-character cause) = %v; want InvalidArgument", err)
	}
	const cause = "mybank.example imitates a bank's brand; apply for a name you hold the rights to"
	rejected, err := e.reviews.RejectReview(staff, &verificationv1.RejectReviewRequest{Name: manual.Name, Cause: cause})
	if err != nil || rejected.State != verificationv1.Review_REJECTED || rejected.Cause != cause {
		t.Fatalf("RejectReview = %v, %v; want REJECTED with the cause", rejected, err)
	}
	if ev := e.decided(t, events.ReviewRejected, manual.Name); ev.State != "REJECTED" || ev.Cause != cause || ev.Kind != "MANUAL" {
		t.Fatalf("ReviewRejected event = %v; want REJECTED with the cause", ev)
	}

	// A denial on the phone blocks approval; no documents block it too.
	e.upload(t, alice, "applications/a3", "license.jpg", jpegBytes(t, 8, 8))
	denied := e.create(t, aliceSys, orgReview("applications/a3", 1, ""))
	if _, err := e.reviews.RecordPhoneCall(staff, &verificationv1.RecordPhoneCallRequest{Name: denied.Name, Phone: "+86 571 8765 4321", Outcome: verificationv1.PhoneCall_OUTCOME_DENIED}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.reviews.ApproveReview(staff, &verificationv1.ApproveReviewRequest{Name: denied.Name}); testenv.Code(err) != codes.FailedPrecondition || reason(err) != "CONTACT_DENIED" {
		t.Fatalf("ApproveReview(after a DENIED call) = %v; want FailedPrecondition CONTACT_DENIED", err)
	}
	nodocs := e.create(t, aliceSys, orgReview("applications/a4", 1, ""))
	if _, err := e.reviews.ApproveReview(staff, &verificationv1.ApproveReviewRequest{Name: nodocs.Name}); testenv.Code(err) != codes.FailedPrecondition || reason(err) != "DOCUMENTS_REQUIRED" {
		t.Fatalf("ApproveReview(no documents) = %v; want FailedPrecondition DOCUMENTS_REQUIRED", err)
	}

	// A reviewer does not decide on their own account.
	own := e.create(t, testenv.As(context.Background(), "staff", auth.System), manualReview("applications/s1"))
	if _, err := e.reviews.ApproveReview(staff, &verificationv1.ApproveReviewRequest{Name: own.Name}); testenv.Code(err) != codes.PermissionDenied || reason(err) != "SELF_REVIEW" {
		t.Fatalf("ApproveReview(own account) = %v; want PermissionDenied SELF_REVIEW", err)
	}
	if _, err := e.reviews.GetReview(staff, &verificationv1.GetReviewRequest{Name: "reviews/nope"}); testenv.Code(err) != codes.NotFound {
		t.Fatalf("GetReview(unknown) = %v; want NotFound", err)
	}
}

func TestOrganizationApprovalReuse(t *testing.T) {
	e := startOrg(t)
	const orgID = "91330000MA27XF4T0K"
	e.upload(t, alice, "applications/a1", "license.png", pngBytes(t, 8, 8))
	first := e.create(t, aliceSys, orgReview("applications/a1", 1, orgID))
	if _, err := e.reviews.ApproveReview(staff, &verificationv1.ApproveReviewRequest{Name: first.Name}); err != nil {
		t.Fatal(err)
	}

	e.clock.Advance(30 * 24 * time.Hour)
	second := e.create(t, aliceSys, orgReview("applications/a2", 1, orgID))
	if second.State != verificationv1.Review_APPROVED || !second.Reused || second.Reviewer != "system" || second.DecideTime == nil {
		t.Fatalf("CreateReview(same organization, 30 days later) = %v; want APPROVED, reused, by system", second)
	}
	if ev := e.decided(t, events.ReviewApproved, second.Name); ev.State != "APPROVED" || !ev.Reused || ev.Account != "alice" {
		t.Fatalf("ReviewApproved event of the reuse = %v; want APPROVED, reused", ev)
	}
	e.published(t, events.ReviewCreated, second.Name)

	if other := e.create(t, bobSys, orgReview("applications/b1", 1, orgID)); other.State != verificationv1.Review_PENDING || other.Reused {
		t.Fatalf("CreateReview(another account, same organization id) = %v; want PENDING: approvals are per account", other)
	}
	renamed := orgReview("applications/a3", 1, orgID)
	renamed.Review.Organization.Name = "Example Holdings Ltd"
	if r := e.create(t, aliceSys, renamed); r.State != verificationv1.Review_PENDING {
		t.Fatalf("CreateReview(same id, new name) = %v; want PENDING: the new name was never validated", r)
	}
	if r := e.create(t, aliceSys, manualReview("applications/a4")); r.State != verificationv1.Review_PENDING {
		t.Fatalf("CreateReview(MANUAL) = %v; want PENDING: only organization data is reused", r)
	}

	// 398 days run from the reviewer's approval; the reuse did not extend them.
	e.clock.Advance(368*24*time.Hour + time.Second)
	if late := e.create(t, aliceSys, orgReview("applications/a5", 1, orgID)); late.State != verificationv1.Review_PENDING || late.Reused {
		t.Fatalf("CreateReview(398 days after the approval) = %v; want PENDING", late)
	}
}

func TestCancelReviews(t *testing.T) {
	e := startOrg(t)
	e.upload(t, alice, "applications/a1", "license.png", pngBytes(t, 8, 8))
	org := e.create(t, aliceSys, orgReview("applications/a1", 1, ""))
	manual := e.create(t, aliceSys, manualReview("applications/a1"))
	other := e.create(t, aliceSys, manualReview("applications/a2"))
	if _, err := e.reviews.ApproveReview(staff, &verificationv1.ApproveReviewRequest{Name: org.Name}); err != nil {
		t.Fatal(err)
	}

	if resp, err := e.reviews.CancelReviews(bobSys, &verificationv1.CancelReviewsRequest{Application: "applications/a1"}); err != nil || len(resp.Reviews) != 0 {
		t.Fatalf("CancelReviews(another account) = %v, %v; want nothing touched", resp, err)
	}
	resp, err := e.reviews.CancelReviews(aliceSys, &verificationv1.CancelReviewsRequest{Application: "applications/a1"})
	if err != nil || len(resp.Reviews) != 2 {
		t.Fatalf("CancelReviews(a1) = %v, %v; want its two reviews", resp, err)
	}
	states := map[string]verificationv1.Review_State{}
	for _, r := range resp.Reviews {
		states[r.Name] = r.State
	}
	if states[org.Name] != verificationv1.Review_APPROVED || states[manual.Name] != verificationv1.Review_CANCELLED {
		t.Fatalf("CancelReviews(a1) states = %v; want the approved one kept and the pending one CANCELLED", states)
	}
	if ev := e.decided(t, events.ReviewCancelled, manual.Name); ev.State != "CANCELLED" || ev.Account != "alice" {
		t.Fatalf("ReviewCancelled event = %v; want CANCELLED for alice", ev)
	}
	if again, err := e.reviews.CancelReviews(aliceSys, &verificationv1.CancelReviewsRequest{Application: "applications/a1"}); err != nil || len(again.Reviews) != 2 {
		t.Fatalf("CancelReviews(a1) again = %v, %v; want the same two reviews, unchanged", again, err)
	}
	if got, err := e.reviews.GetReview(staff, &verificationv1.GetReviewRequest{Name: other.Name}); err != nil || got.State != verificationv1.Review_PENDING {
		t.Fatalf("review of a2 after cancelling a1 = %v, %v; want PENDING", got, err)
	}
	if _, err := e.reviews.ApproveReview(staff, &verificationv1.ApproveReviewRequest{Name: manual.Name}); testenv.Code(err) != codes.FailedPrecondition {
		t.Fatalf("ApproveReview(cancelled) = %v; want FailedPrecondition", err)
	}
	if _, err := e.reviews.CancelReviews(staff, &verificationv1.CancelReviewsRequest{Application: "applications/a1"}); testenv.Code(err) != codes.PermissionDenied {
		t.Fatalf("CancelReviews(reviewer) = %v; want PermissionDenied", err)
	}
}

// Concurrent uploads of one file store it once; an application holds at
// most 20 documents.
func TestDocumentLimits(t *testing.T) {
	e := startOrg(t)
	same := pngBytes(t, 5, 5)
	names := make(chan string, 8)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			d, err := e.docs.UploadDocument(alice, &verificationv1.UploadDocumentRequest{
				Parent: "applications/a1", Document: &verificationv1.Document{Content: same},
			})
			if err != nil {
				t.Error(err)
				return
			}
			names <- d.Name
		})
	}
	wg.Wait()
	close(names)
	seen := map[string]bool{}
	for n := range names {
		seen[n] = true
	}
	list, err := e.docs.ListDocuments(alice, &verificationv1.ListDocumentsRequest{Parent: "applications/a1"})
	if err != nil || len(list.Documents) != 1 || len(seen) != 1 || !seen[list.Documents[0].Name] {
		t.Fatalf("8 concurrent uploads of one file gave %d names and list %v, %v; want one document", len(seen), list, err)
	}

	for i := 2; i <= 20; i++ {
		e.upload(t, alice, "applications/a1", "", pngBytes(t, i+5, 1))
	}
	_, err = e.docs.UploadDocument(alice, &verificationv1.UploadDocumentRequest{
		Parent: "applications/a1", Document: &verificationv1.Document{Content: pngBytes(t, 40, 1)},
	})
	if testenv.Code(err) != codes.FailedPrecondition || reason(err) != "TOO_MANY_DOCUMENTS" {
		t.Fatalf("21st UploadDocument = %v (%s); want FailedPrecondition TOO_MANY_DOCUMENTS", err, reason(err))
	}
	if list, err := e.docs.ListDocuments(alice, &verificationv1.ListDocumentsRequest{Parent: "applications/a1"}); err != nil || len(list.Documents) != 20 {
		t.Fatalf("ListDocuments after the refusal = %d, %v; want 20", len(list.GetDocuments()), err)
	}
}
