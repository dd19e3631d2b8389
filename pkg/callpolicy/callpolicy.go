// Package callpolicy is the one table of who may call what inside certflow:
// for every gRPC method, the components allowed to call it, and for every
// component, the roles it may assert on behalf of an account. The gRPC
// server consults it for every call (pkg/grpcserver); a method that is not
// listed is refused, and a service that registers one does not start.
package callpolicy

import (
	"fmt"
	"slices"

	"github.com/certflow/certflow/pkg/auth"
)

// Components: the names in their certificates' spiffe://certflow.internal/
// URI SANs.
const (
	Gateway      = "gateway"
	Order        = "order"
	Application  = "application"
	Verification = "verification"
	Issuance     = "issuance"
	Notification = "notification"
	// Audit keeps the audit trail; it calls nobody.
	Audit = "audit"
	// Perspective is the verification service in its perspective role
	// (BR 3.2.2.9): every remote perspective has this one identity; the
	// primary tells them apart by address and configured name.
	Perspective = "perspective"
	// Operator is a person with grpcurl: health and reflection, nothing
	// that reads or changes an account's data.
	Operator = "operator"
)

// Components lists every known component.
var Components = []string{Gateway, Order, Application, Verification, Issuance, Notification, Audit, Perspective, Operator}

// Asserts lists the roles each component may claim in x-certflow-role
// metadata. The gateway authenticates API keys, so it speaks for customers
// and reviewers; a service speaks only as the system acting on an
// account's behalf. Anyone else sending account metadata is refused.
var Asserts = map[string][]auth.Role{
	Gateway:      {auth.Customer, auth.Reviewer},
	Order:        {auth.System},
	Application:  {auth.System},
	Verification: {auth.System},
	Issuance:     {auth.System},
	Notification: {auth.System},
}

var (
	public   = []string{Gateway}
	everyone = Components
	operator = []string{Operator}
)

// Methods maps every full gRPC method name to the components that may call
// it.
var Methods = map[string][]string{
	// Infrastructure.
	"/grpc.health.v1.Health/Check":                                   everyone,
	"/grpc.health.v1.Health/Watch":                                   everyone,
	"/grpc.health.v1.Health/List":                                    everyone,
	"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo":      operator,
	"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": operator,

	// Order service.
	"/certflow.order.v1.OrderService/ListProducts":       public,
	"/certflow.order.v1.OrderService/GetProduct":         public,
	"/certflow.order.v1.OrderService/CreateOrder":        public,
	"/certflow.order.v1.OrderService/GetOrder":           public,
	"/certflow.order.v1.OrderService/ListOrders":         public,
	"/certflow.order.v1.OrderService/GetInstance":        {Gateway, Application},
	"/certflow.order.v1.OrderService/ListInstances":      public,
	"/certflow.order.v1.OrderService/BindInstance":       {Application},
	"/certflow.order.v1.OrderService/ReleaseInstance":    {Application},
	"/certflow.order.v1.OrderService/MarkInstanceIssued": {Application},
	// The application service follows certificate.revoked and marks the
	// instance (the saga's orchestrator calls; others never call back).
	"/certflow.order.v1.OrderService/MarkInstanceRevoked": {Application},

	// Application service.
	"/certflow.application.v1.ApplicationService/CreateApplication":   public,
	"/certflow.application.v1.ApplicationService/GetApplication":      {Gateway, Verification},
	"/certflow.application.v1.ApplicationService/ListApplications":    public,
	"/certflow.application.v1.ApplicationService/UpdateApplication":   public,
	"/certflow.application.v1.ApplicationService/SubmitApplication":   public,
	"/certflow.application.v1.ApplicationService/WithdrawApplication": public,
	"/certflow.application.v1.ApplicationService/ReissueApplication":  public,
	"/certflow.application.v1.ApplicationService/CreateTemplate":      public,
	"/certflow.application.v1.ApplicationService/GetTemplate":         public,
	"/certflow.application.v1.ApplicationService/ListTemplates":       public,
	"/certflow.application.v1.ApplicationService/DeleteTemplate":      public,

	// Verification service: domain control and documents.
	"/certflow.verification.v1.VerificationService/GetChallenge":     public,
	"/certflow.verification.v1.VerificationService/ListChallenges":   public,
	"/certflow.verification.v1.VerificationService/CheckChallenge":   public,
	"/certflow.verification.v1.VerificationService/ConfirmChallenge": public,
	"/certflow.verification.v1.VerificationService/CreateChallenges": {Application},
	"/certflow.verification.v1.VerificationService/CancelChallenges": {Application},
	"/certflow.verification.v1.VerificationService/CheckCaa":         {Application},
	// The CA asks, at the moment of signing, whether every name is
	// validated for the account (pkg/certpolicy rules on that date).
	"/certflow.verification.v1.VerificationService/AuthorizeIssuance": {Issuance},
	"/certflow.verification.v1.VerificationService/UploadDocument":    public,
	"/certflow.verification.v1.VerificationService/ListDocuments":     {Gateway, Application},
	"/certflow.verification.v1.VerificationService/GetDocument":       public,
	"/certflow.verification.v1.ReviewService/ListReviews":             public,
	"/certflow.verification.v1.ReviewService/GetReview":               public,
	"/certflow.verification.v1.ReviewService/RecordPhoneCall":         public,
	"/certflow.verification.v1.ReviewService/ApproveReview":           public,
	"/certflow.verification.v1.ReviewService/RejectReview":            public,
	"/certflow.verification.v1.ReviewService/CreateReview":            {Application},
	"/certflow.verification.v1.ReviewService/CancelReviews":           {Application},
	// Remote perspectives (BR 3.2.2.9) answer only the primary
	// verification service; they need no account metadata.
	"/certflow.verification.v1.PerspectiveService/CorroborateChallenge": {Verification},
	"/certflow.verification.v1.PerspectiveService/CorroborateCaa":       {Verification},

	// Issuance service: only the application service gets a certificate
	// signed.
	"/certflow.issuance.v1.IssuanceService/IssueCertificate":    {Application},
	"/certflow.issuance.v1.IssuanceService/GetCertificate":      public,
	"/certflow.issuance.v1.IssuanceService/ListCertificates":    public,
	"/certflow.issuance.v1.IssuanceService/DownloadCertificate": public,
	"/certflow.issuance.v1.IssuanceService/ExportCertificate":   public,
	"/certflow.issuance.v1.IssuanceService/GetCaCertificates":   public,
	// Customers revoke their own certificates, reviewers any (the role
	// decides inside the method).
	"/certflow.issuance.v1.IssuanceService/RevokeCertificate": public,

	// Notification service.
	"/certflow.notification.v1.NotificationService/ListNotifications":     public,
	"/certflow.notification.v1.NotificationService/GetNotification":       public,
	"/certflow.notification.v1.NotificationService/CreateWebhook":         public,
	"/certflow.notification.v1.NotificationService/GetWebhook":            public,
	"/certflow.notification.v1.NotificationService/ListWebhooks":          public,
	"/certflow.notification.v1.NotificationService/DeleteWebhook":         public,
	"/certflow.notification.v1.NotificationService/ListWebhookDeliveries": public,
	// The email DCV code goes to the notification service by this call
	// alone, never through the stream.
	"/certflow.notification.v1.NotificationService/SendDomainValidationEmail": {Verification},

	// Audit service: customers read their account's trail, reviewers any.
	"/certflow.audit.v1.AuditService/ListAuditEvents": public,
}

// Error is a refusal; Unlisted says the method has no policy at all.
type Error struct {
	Method, Caller string
	Unlisted       bool
}

func (e *Error) Error() string {
	if e.Unlisted {
		return fmt.Sprintf("%s has no call policy; it is refused to everyone", e.Method)
	}
	return fmt.Sprintf("%s may not call %s", e.Caller, e.Method)
}

// Allow reports whether caller may call method.
func Allow(method, caller string) error {
	callers, ok := Methods[method]
	if !ok {
		return &Error{Method: method, Caller: caller, Unlisted: true}
	}
	if !slices.Contains(callers, caller) {
		return &Error{Method: method, Caller: caller}
	}
	return nil
}

// MayAssert reports whether caller may speak for an account in role.
func MayAssert(caller string, role auth.Role) bool {
	return slices.Contains(Asserts[caller], role)
}

// Listed reports whether method has a policy.
func Listed(method string) bool {
	_, ok := Methods[method]
	return ok
}
