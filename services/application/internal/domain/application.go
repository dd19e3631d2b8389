// Package domain holds the application service's rules: the application
// state machine of DESIGN.md, progress and expected issue times, which
// names a product may bind, and which details each certificate type needs.
package domain

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/certflow/certflow/pkg/apierr"
)

// State is where an application is.
type State string

// States, with their progress (DESIGN.md, from the seeds).
const (
	Draft                           State = "DRAFT"
	PendingDomainVerification       State = "PENDING_DOMAIN_VERIFICATION"
	PendingOrganizationVerification State = "PENDING_ORGANIZATION_VERIFICATION"
	PendingManualReview             State = "PENDING_MANUAL_REVIEW"
	PendingIssuance                 State = "PENDING_ISSUANCE"
	Issued                          State = "ISSUED"
	ValidationFailed                State = "VALIDATION_FAILED"
	Withdrawn                       State = "WITHDRAWN"
)

var progress = map[State]int{
	Draft:                           0,
	PendingDomainVerification:       40,
	PendingOrganizationVerification: 70,
	PendingManualReview:             80,
	PendingIssuance:                 90,
	Issued:                          100,
}

// Progress is the percentage the console shows; failed and withdrawn
// applications have none (0).
func (s State) Progress() int { return progress[s] }

// Editable reports whether details may change: never while the CA works on
// the application (withdraw first, as the seeds say).
func (s State) Editable() bool { return s == Draft || s == ValidationFailed || s == Withdrawn }

// Level is the product's validation level.
type Level string

// Levels.
const (
	DV Level = "DV"
	OV Level = "OV"
	EV Level = "EV"
)

// DomainType is the product's kind of names.
type DomainType string

// Domain types.
const (
	Single   DomainType = "SINGLE"
	Multi    DomainType = "MULTI"
	Wildcard DomainType = "WILDCARD"
)

// Product is what the instance allows, copied from the order service when
// the application is created.
type Product struct {
	Level      Level
	Type       DomainType
	MaxDomains int
}

// Method is how domain control is proven.
type Method string

// Methods.
const (
	DNSTXT   Method = "DNS_TXT"
	DNSCNAME Method = "DNS_CNAME"
	HTTPFile Method = "HTTP_FILE"
	Email    Method = "EMAIL"
)

// Mailboxes are the constructed addresses email validation may use (BR
// 3.2.2.4.4).
var Mailboxes = []string{"admin", "administrator", "webmaster", "hostmaster", "postmaster"}

// CSRMode says who makes the key.
type CSRMode string

// CSR modes.
const (
	Automatic CSRMode = "AUTOMATIC"
	Manual    CSRMode = "MANUAL"
)

// Actors in the history.
const (
	ActorCustomer = "customer"
	ActorSystem   = "system"
	ActorReviewer = "reviewer"
)

// Applicant is the person applying.
type Applicant struct {
	Name     string
	Phone    string
	Email    string
	IDNumber string
}

// Company is the organization (OV/EV).
type Company struct {
	Name           string
	Type           string
	Phone          string
	OrganizationID string
	Country        string
	Province       string
	City           string
	Address        string
	ZipCode        string
}

// Details are what the customer fills in and may edit.
type Details struct {
	Domains      []string
	Method       Method
	Applicant    Applicant
	Company      Company
	CSRMode      CSRMode
	KeyAlgorithm string
	CSR          string
	// ApproverMailbox is the constructed mailbox for EMAIL validation.
	ApproverMailbox string
}

// Challenge is what the customer must publish for one name, as the
// verification service issued it, and whether it passed.
type Challenge struct {
	Name         string
	Domain       string
	Method       Method
	State        string
	RecordName   string
	RecordType   string
	RecordValue  string
	HTTPURL      string
	HTTPContent  string
	EmailAddress string
	RuleVersion  string
	Reused       bool
	ExpireTime   time.Time
	VerifyTime   time.Time
}

// HistoryEntry is one step of the timeline.
type HistoryEntry struct {
	State State
	Time  time.Time
	Actor string
	Cause string
}

// Application is a certificate application.
type Application struct {
	Instance     string
	Product      Product
	Details      Details
	State        State
	Attempt      int
	Challenges   []Challenge
	FailureCause string
	// FlaggedWords are review-list words in the names, found on submit.
	FlaggedWords []string
	// IssuanceRequested is the attempt the CA was asked to sign for.
	IssuanceRequested int
	Certificate       string
	History           []HistoryEntry
	CreateTime        time.Time
	SubmitTime        time.Time
	ExpectedIssueTime time.Time
	// Claim is set while one request calls other services for the
	// application (see Claim); nil otherwise.
	Claim *Claim `bson:",omitempty"`
	// ReissueOf is, while a reissue is in progress, the certificate it will
	// replace (see BeginReissue); Certificate keeps pointing at it until the
	// new one is issued. ReissueRequest is the request id of the latest
	// reissue, so a retry of it starts nothing new.
	ReissueOf      string `bson:",omitempty"`
	ReissueRequest string `bson:",omitempty"`
}

// Reissue is what a reissue changes: the names (nil keeps them) and the
// key (a customer CSR, or "" for a new key the service makes of
// KeyAlgorithm, "" keeping the current algorithm).
type Reissue struct {
	RequestID    string
	Domains      []string
	CSR          string
	KeyAlgorithm string
	// Renewal: the automatic renewal of the current certificate, started
	// by the CA, not the customer. It keeps the names, and a customer's CSR
	// (the key stays the customer's: the CA cannot make them a new one
	// they hold); a key the service made is made anew. NotAfter is the
	// renewed certificate's, for the customer to know how long they have.
	Renewal  bool
	NotAfter time.Time
}

// reissueDetails are the details of a reissue's attempt.
func (a *Application) reissueDetails(r Reissue) (Details, error) {
	d := a.Details
	if r.Domains != nil {
		d.Domains = r.Domains
	}
	switch {
	case r.CSR != "":
		d.CSRMode, d.CSR, d.KeyAlgorithm = Manual, r.CSR, ""
	case r.Renewal && d.CSRMode == Manual:
		// The customer's CSR again (see Reissue.Renewal).
	default:
		// A reissue always gets a new key: the service makes one (the
		// customer's old key is not reused, whoever made it).
		alg := r.KeyAlgorithm
		if alg == "" {
			alg = d.KeyAlgorithm
		}
		d.CSRMode, d.CSR, d.KeyAlgorithm = Automatic, "", alg
	}
	return d.Normalize(a.Product)
}

// BeginReissue claims an ISSUED application for a reissue by token (see
// Claim) and returns the attempt it will start with the new details. A
// retry of the request that started the reissue in progress (or the last
// one) returns ErrSameReissue: nothing new starts.
func (a *Application) BeginReissue(token string, r Reissue, now time.Time, ttl time.Duration) (int, Details, error) {
	if r.RequestID != "" && r.RequestID == a.ReissueRequest {
		return 0, Details{}, ErrSameReissue
	}
	if err := a.CheckFree(ClaimSubmit, now); err != nil {
		return 0, Details{}, err
	}
	if a.State != Issued || a.Certificate == "" {
		return 0, Details{}, apierr.New(apierr.FailedPrecondition, "APPLICATION_NOT_ISSUED",
			"only an issued application can be reissued; %s is %s: wait for its certificate, or submit it", "the application", a.State).WithMeta("state", string(a.State))
	}
	d, err := a.reissueDetails(r)
	if err != nil {
		return 0, Details{}, err
	}
	a.Claim = &Claim{Token: token, Op: ClaimSubmit, Until: now.UTC().Add(ttl)}
	return a.Attempt + 1, d, nil
}

// ErrSameReissue is a reissue request already applied.
var ErrSameReissue = fmt.Errorf("this reissue request was already made")

// FinishReissue starts attempt with the new details and their challenges
// and ends token's claim. The current certificate stays the application's
// (and valid) until the new one is issued.
func (a *Application) FinishReissue(token string, r Reissue, attempt int, d Details, challenges []Challenge, flagged []string, now time.Time) error {
	if !a.Holds(token, now) {
		return apierr.New(apierr.Aborted, "CONCURRENT_SUBMIT",
			"the reissue took too long and another request changed the application meanwhile; read it again and retry")
	}
	if a.State != Issued || attempt != a.Attempt+1 {
		return apierr.New(apierr.Aborted, "CONCURRENT_SUBMIT", "the application changed meanwhile; read it again")
	}
	if err := checkChallenged(d.Domains, challenges); err != nil {
		return err
	}
	a.ReissueOf, a.ReissueRequest = a.Certificate, r.RequestID
	a.Details = d
	a.Attempt, a.Challenges, a.FlaggedWords, a.FailureCause = attempt, challenges, flagged, ""
	a.IssuanceRequested = 0
	a.SubmitTime = now.UTC()
	a.ExpectedIssueTime = ExpectedIssueTime(a.Product.Level, now)
	actor, why := ActorCustomer, "reissue of "
	if r.Renewal {
		actor, why = ActorSystem, "renewal of "
	}
	a.move(PendingDomainVerification, actor, why+a.ReissueOf, now)
	a.Claim = nil
	return nil
}

// ClaimOp is what the holder of a claim is doing.
type ClaimOp string

// Claim operations.
const (
	// ClaimSubmit: binding the instance and getting challenges for the
	// names as they were when the claim was taken.
	ClaimSubmit ClaimOp = "SUBMIT"
	// ClaimRelease: a withdrawal cancelling challenges and reviews and
	// releasing the instance.
	ClaimRelease ClaimOp = "RELEASE"
	// ClaimReview: the saga opening a review in the CA staff's queue for
	// the current attempt, which a withdrawal must then cancel.
	ClaimReview ClaimOp = "REVIEW"
)

// Claim serializes the requests on one application that act outside it.
// A submit must bind the instance and get challenges before it can move
// the application, and a withdrawal must release the instance after it
// did: neither call can be in the same write as the state change. The
// claim is taken in a write guarded by the document's version, so one
// request holds it; while it is held, no other request submits, edits or
// withdraws the application (they are told to retry), so the holder's
// calls to other services cannot interleave with anyone else's, and the
// holder's final write finds the document as it left it. Until bounds
// the claim should its holder die; the holder stops calling other
// services before then.
type Claim struct {
	Token string
	Op    ClaimOp
	Until time.Time
}

// held reports whether a claim is in force at now.
func (a *Application) held(now time.Time) bool {
	return a.Claim != nil && now.Before(a.Claim.Until)
}

// Holds reports whether token holds the application's claim at now.
func (a *Application) Holds(token string, now time.Time) bool {
	return a.Claim != nil && a.Claim.Token == token && now.Before(a.Claim.Until)
}

// CheckFree returns an Aborted error while another request holds the
// application (see Claim), and nil otherwise; op is the claim the caller
// wants to take ("" for an edit, which takes none). A withdrawal whose
// holder died still blocks a submit until the withdrawn event's handler
// has released the instance (see TakeOverRelease).
func (a *Application) CheckFree(op ClaimOp, now time.Time) error {
	if a.Claim == nil {
		return nil
	}
	if a.held(now) || (op == ClaimSubmit && a.Claim.Op == ClaimRelease) {
		what := map[ClaimOp]string{ClaimSubmit: "submitting", ClaimRelease: "withdrawing", ClaimReview: "passing on for review"}[a.Claim.Op]
		return apierr.New(apierr.Aborted, "APPLICATION_BUSY",
			"another request is %s this application right now; read it again and retry in a moment", what).WithMeta("operation", string(a.Claim.Op))
	}
	return nil
}

// BeginSubmit claims a submittable application for a submit by token and
// returns the attempt it will start.
func (a *Application) BeginSubmit(token string, now time.Time, ttl time.Duration) (int, error) {
	if err := a.CheckFree(ClaimSubmit, now); err != nil {
		return 0, err
	}
	if err := a.CheckSubmittable(); err != nil {
		return 0, err
	}
	a.Claim = &Claim{Token: token, Op: ClaimSubmit, Until: now.UTC().Add(ttl)}
	return a.Attempt + 1, nil
}

// FinishSubmit applies the submit of token's claim (see Submit) and ends
// the claim. It fails if the claim was lost (it expired and another
// request took the application).
func (a *Application) FinishSubmit(token string, attempt int, challenges []Challenge, flagged []string, now time.Time) error {
	if !a.Holds(token, now) {
		return apierr.New(apierr.Aborted, "CONCURRENT_SUBMIT",
			"the submit took too long and another request changed the application meanwhile; read it again and resubmit")
	}
	if err := a.Submit(attempt, challenges, flagged, now); err != nil {
		return err
	}
	a.Claim = nil
	return nil
}

// BeginWithdraw withdraws the application (see Withdraw) and claims it
// for token to release what the application held.
func (a *Application) BeginWithdraw(token string, now time.Time, ttl time.Duration) error {
	if err := a.CheckFree(ClaimRelease, now); err != nil {
		return err
	}
	if err := a.Withdraw(now); err != nil {
		return err
	}
	a.Claim = &Claim{Token: token, Op: ClaimRelease, Until: now.UTC().Add(ttl)}
	return nil
}

// TakeOverRelease claims a withdrawn application whose release was not
// finished (its holder died or failed) for token. It returns ErrStale when
// there is nothing left to release, and an Aborted error while the
// withdrawal's own request still holds the claim.
func (a *Application) TakeOverRelease(attempt int, token string, now time.Time, ttl time.Duration) error {
	if a.State != Withdrawn || a.Attempt != attempt || a.Claim == nil || a.Claim.Op != ClaimRelease {
		return ErrStale
	}
	if a.held(now) {
		return a.CheckFree(ClaimRelease, now)
	}
	a.Claim = &Claim{Token: token, Op: ClaimRelease, Until: now.UTC().Add(ttl)}
	return nil
}

// BeginReview claims the application for the saga step that opens a
// review of attempt in state, so that a withdrawal waits for the review to
// exist and then cancels it. It returns ErrStale if the application has
// moved on.
func (a *Application) BeginReview(state State, attempt int, token string, now time.Time, ttl time.Duration) error {
	if a.State != state || a.Attempt != attempt {
		return ErrStale
	}
	if err := a.CheckFree(ClaimReview, now); err != nil {
		return err
	}
	a.Claim = &Claim{Token: token, Op: ClaimReview, Until: now.UTC().Add(ttl)}
	return nil
}

// EndClaim ends token's claim; it reports whether token held one.
func (a *Application) EndClaim(token string) bool {
	if a.Claim == nil || a.Claim.Token != token {
		return false
	}
	a.Claim = nil
	return true
}

// New makes a DRAFT after checking the details against the product.
func New(instance string, p Product, d Details, now time.Time) (Application, error) {
	d, err := d.Normalize(p)
	if err != nil {
		return Application{}, err
	}
	now = now.UTC()
	return Application{
		Instance: instance, Product: p, Details: d, State: Draft, CreateTime: now,
		History: []HistoryEntry{{State: Draft, Time: now, Actor: ActorCustomer}},
	}, nil
}

func (a *Application) move(to State, actor, cause string, now time.Time) {
	a.State = to
	a.History = append(a.History, HistoryEntry{State: to, Time: now.UTC(), Actor: actor, Cause: cause})
}

// Edit replaces the details of an editable application.
func (a *Application) Edit(d Details) error {
	if !a.State.Editable() {
		return apierr.New(apierr.FailedPrecondition, "APPLICATION_NOT_EDITABLE",
			"application is %s and cannot be edited; withdraw it first, then edit and resubmit", a.State).WithMeta("state", string(a.State))
	}
	d, err := d.Normalize(a.Product)
	if err != nil {
		return err
	}
	a.Details = d
	return nil
}

// CheckSubmittable returns nil if the application may be submitted now.
func (a *Application) CheckSubmittable() error {
	switch a.State {
	case Draft, ValidationFailed, Withdrawn:
		return nil
	case Issued:
		return apierr.New(apierr.FailedPrecondition, "APPLICATION_ALREADY_ISSUED", "application is already issued; download its certificate").WithMeta("state", string(a.State))
	}
	return apierr.New(apierr.FailedPrecondition, "APPLICATION_ALREADY_SUBMITTED",
		"application is already submitted and is %s; wait for it, or withdraw it to change it", a.State).WithMeta("state", string(a.State))
}

// Submit starts attempt with its challenges; flagged are the review-list
// words found in the names.
func (a *Application) Submit(attempt int, challenges []Challenge, flagged []string, now time.Time) error {
	if err := a.CheckSubmittable(); err != nil {
		return err
	}
	if attempt != a.Attempt+1 {
		return apierr.New(apierr.Aborted, "CONCURRENT_SUBMIT", "the application was submitted by another request; read it again")
	}
	if err := checkChallenged(a.Details.Domains, challenges); err != nil {
		return err
	}
	a.Attempt = attempt
	a.Challenges = challenges
	a.FlaggedWords = flagged
	a.FailureCause = ""
	if a.ReissueOf == "" {
		a.Certificate = ""
	}
	a.SubmitTime = now.UTC()
	a.ExpectedIssueTime = ExpectedIssueTime(a.Product.Level, now)
	a.move(PendingDomainVerification, ActorCustomer, "", now)
	return nil
}

// checkChallenged returns an error unless there is exactly one challenge
// per name and none for another name: a submit must never start on
// challenges made for other names than the application's.
func checkChallenged(names []string, challenges []Challenge) error {
	want := map[string]int{}
	for _, n := range names {
		want[canonical(n)]++
	}
	for _, c := range challenges {
		want[canonical(c.Domain)]--
	}
	for n, k := range want {
		if k != 0 {
			return apierr.New(apierr.Aborted, "CHALLENGES_MISMATCH",
				"the challenges do not match the application's names (%s); read the application again and resubmit", n)
		}
	}
	return nil
}

func canonical(name string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(name)), ".")
}

// Advance moves a just-submitted application on when every challenge came
// back already verified (a reused validation): their verified events may
// have arrived before the submit was written, and were then stale.
func (a *Application) Advance(now time.Time) State { return a.advanceIfVerified(now) }

// ErrStale is returned for an event about another attempt or a state the
// application has left: the event changes nothing.
var ErrStale = fmt.Errorf("event does not apply to the application's current attempt or state")

// DomainVerified records a passed challenge. When every name is verified
// the application moves on: OV/EV to organization verification, DV to
// issuance. It returns the new state if the state changed.
func (a *Application) DomainVerified(attempt int, challenge string, at, now time.Time) (State, error) {
	if attempt != a.Attempt || a.State != PendingDomainVerification {
		return "", ErrStale
	}
	i := slices.IndexFunc(a.Challenges, func(c Challenge) bool { return c.Name == challenge })
	if i < 0 {
		return "", ErrStale
	}
	if a.Challenges[i].State == "VERIFIED" {
		return "", ErrStale
	}
	a.Challenges[i].State, a.Challenges[i].VerifyTime = "VERIFIED", at.UTC()
	return a.advanceIfVerified(now), nil
}

// advanceIfVerified moves on once every name is verified: OV/EV to
// organization verification, DV to manual review or issuance. It returns
// the new state, or "" while names are pending.
func (a *Application) advanceIfVerified(now time.Time) State {
	if a.State != PendingDomainVerification {
		return ""
	}
	for _, c := range a.Challenges {
		if c.State != "VERIFIED" {
			return ""
		}
	}
	next := PendingOrganizationVerification
	if a.Product.Level == DV {
		next = a.afterOrganization()
	}
	a.move(next, ActorSystem, "", now)
	return next
}

// afterOrganization is the step after organization verification (or after
// domains for DV): a manual review if a name is flagged, else issuance.
func (a *Application) afterOrganization() State {
	if len(a.FlaggedWords) > 0 {
		return PendingManualReview
	}
	return PendingIssuance
}

// ReviewKind is what a reviewer decided on.
type ReviewKind string

// Review kinds.
const (
	OrganizationReview ReviewKind = "ORGANIZATION"
	ManualReview       ReviewKind = "MANUAL"
)

// ReviewDecided applies a reviewer's decision on the current attempt: an
// approval moves on, a rejection fails the application with the cause. It
// returns the new state.
func (a *Application) ReviewDecided(kind ReviewKind, attempt int, approved bool, cause string, now time.Time) (State, error) {
	want := PendingOrganizationVerification
	if kind == ManualReview {
		want = PendingManualReview
	}
	if attempt != a.Attempt || a.State != want {
		return "", ErrStale
	}
	if !approved {
		what := "organization verification"
		if kind == ManualReview {
			what = "manual review"
		}
		a.FailureCause = fmt.Sprintf("%s rejected: %s", what, cause)
		a.move(ValidationFailed, ActorReviewer, a.FailureCause, now)
		return ValidationFailed, nil
	}
	next := PendingIssuance
	if kind == OrganizationReview {
		next = a.afterOrganization()
	}
	a.move(next, ActorReviewer, "", now)
	return next, nil
}

// DomainFailed fails the application because a challenge failed.
func (a *Application) DomainFailed(attempt int, challenge, domain, cause string, now time.Time) error {
	if attempt != a.Attempt || a.State != PendingDomainVerification {
		return ErrStale
	}
	i := slices.IndexFunc(a.Challenges, func(c Challenge) bool { return c.Name == challenge })
	if i < 0 {
		return ErrStale
	}
	a.Challenges[i].State = "FAILED"
	return a.Fail(fmt.Sprintf("domain %s was not verified: %s", domain, cause), now)
}

// Fail moves a pending application to VALIDATION_FAILED with a cause.
func (a *Application) Fail(cause string, now time.Time) error {
	switch a.State {
	case PendingDomainVerification, PendingOrganizationVerification, PendingManualReview, PendingIssuance:
	default:
		return ErrStale
	}
	a.FailureCause = cause
	a.move(ValidationFailed, ActorSystem, cause, now)
	return nil
}

// MarkChallenge records the rule version and reuse of a verified challenge.
func (a *Application) MarkChallenge(challenge, ruleVersion string, reused bool) {
	for i := range a.Challenges {
		if a.Challenges[i].Name == challenge {
			a.Challenges[i].RuleVersion, a.Challenges[i].Reused = ruleVersion, reused
		}
	}
}

// FailIssuance fails an application waiting for the CA (CAA forbids).
func (a *Application) FailIssuance(cause string, now time.Time) error {
	if a.State != PendingIssuance {
		return ErrStale
	}
	return a.Fail(cause, now)
}

// Issued records the certificate of the current attempt.
func (a *Application) Issued(attempt int, certificate string, now time.Time) error {
	if attempt != a.Attempt || a.State != PendingIssuance {
		return ErrStale
	}
	a.Certificate, a.ReissueOf = certificate, ""
	a.move(Issued, ActorSystem, "", now)
	return nil
}

// RequestIssuance records that the CA is asked to sign for attempt; asking
// again for the same attempt changes nothing.
func (a *Application) RequestIssuance(attempt int) error {
	switch {
	case a.State != PendingIssuance || attempt != a.Attempt:
		return ErrStale
	case a.IssuanceRequested == attempt:
		return ErrStale
	}
	a.IssuanceRequested = attempt
	return nil
}

// Withdraw cancels the application before issuance.
func (a *Application) Withdraw(now time.Time) error {
	if a.State == PendingIssuance && a.IssuanceRequested == a.Attempt {
		return apierr.New(apierr.FailedPrecondition, "APPLICATION_BEING_ISSUED",
			"the CA is signing the certificate and the application can no longer be withdrawn; it will be ISSUED shortly").WithMeta("state", string(a.State))
	}
	if a.ReissueOf != "" && a.State != Issued {
		// The instance holds the current certificate: a withdrawal would
		// release it. A reissue ends issued, or failed (then edit and
		// submit again); the current certificate stays valid meanwhile.
		return apierr.New(apierr.FailedPrecondition, "REISSUE_IN_PROGRESS",
			"a reissue cannot be withdrawn: the current certificate %s stays valid; let the reissue finish, or fix and resubmit it if it fails", a.ReissueOf).WithMeta("state", string(a.State))
	}
	switch a.State {
	case Issued:
		return apierr.New(apierr.FailedPrecondition, "APPLICATION_ALREADY_ISSUED",
			"an issued application cannot be withdrawn (the seeds: \"you cannot withdraw the certificate request after the certificate is issued\")").WithMeta("state", string(a.State))
	case Withdrawn:
		return apierr.New(apierr.FailedPrecondition, "APPLICATION_ALREADY_WITHDRAWN", "application is already withdrawn; edit and submit it to apply again").WithMeta("state", string(a.State))
	}
	for i := range a.Challenges {
		if a.Challenges[i].State == "PENDING" {
			a.Challenges[i].State = "CANCELLED"
		}
	}
	a.move(Withdrawn, ActorCustomer, "withdrawn by the customer", now)
	return nil
}

// ExpectedIssueTime is when the certificate is expected after a submit at
// t: DV within 2 hours; OV/EV within 5 business days (the seeds say three to
// five; the later bound is what the customer is promised), weekends skipped.
func ExpectedIssueTime(l Level, t time.Time) time.Time {
	t = t.UTC()
	if l == DV {
		return t.Add(2 * time.Hour)
	}
	days := 0
	for days < 5 {
		t = t.AddDate(0, 0, 1)
		if wd := t.Weekday(); wd != time.Saturday && wd != time.Sunday {
			days++
		}
	}
	return t
}
