package orgval

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/certflow/certflow/pkg/apierr"
)

// Kind is what a review checks.
type Kind string

// Kinds.
const (
	// KindOrganization is organization verification of an OV or EV application.
	KindOrganization Kind = "ORGANIZATION"
	// KindManual is the manual review of names holding a word on the review list.
	KindManual Kind = "MANUAL"
)

// State is where a review is.
type State string

// States.
const (
	Pending   State = "PENDING"
	Approved  State = "APPROVED"
	Rejected  State = "REJECTED"
	Cancelled State = "CANCELLED"
)

// Outcome is what came of a phone call.
type Outcome string

// Outcomes.
const (
	Confirmed Outcome = "CONFIRMED"
	Denied    Outcome = "DENIED"
	NoAnswer  Outcome = "NO_ANSWER"
)

// SystemReviewer is recorded as the reviewer of an approval by reuse.
const SystemReviewer = "system"

// Limits on what a review holds.
const (
	// MaxCauseLength bounds a rejection cause, in characters.
	MaxCauseLength = 1000
	// MaxNotesLength bounds a phone call's notes and an approval note.
	MaxNotesLength = 2000
	// MaxPhoneCalls bounds the calls recorded on one review.
	MaxPhoneCalls = 50
	// MaxTextLength bounds each declared detail (names, addresses, …).
	MaxTextLength = 500
	// MaxDomains bounds the names of a review.
	MaxDomains = 500
)

// Contact is the applicant as declared.
type Contact struct {
	Name, Phone, Email, IDNumber string
}

// Organization is the organization as declared.
type Organization struct {
	Name, Type, Phone, OrganizationID, Country, Province, City, Address, ZipCode string
}

// PhoneCall is one call made by a reviewer.
type PhoneCall struct {
	Time time.Time
	// Reviewer is the reviewer's account.
	Reviewer string
	Phone    string
	Outcome  Outcome
	Notes    string
}

// Review is one application attempt in the CA staff's queue; the
// customer's account is the record's.
type Review struct {
	Kind            Kind
	State           State
	Application     string
	Attempt         int
	ValidationLevel string
	Domains         []string
	// FlaggedWords are the review-list words found in the names (MANUAL).
	FlaggedWords []string
	Applicant    Contact
	Organization Organization
	PhoneCalls   []PhoneCall
	// Reviewer is the account of the reviewer who decided, or
	// SystemReviewer for an approval by reuse.
	Reviewer string
	// Cause is why it was rejected (shown to the customer).
	Cause string
	// Note is the reviewer's note on approval (staff only).
	Note string
	// Reused is set when an earlier approval of the organization was reused;
	// ReusedReview names it and ReusedApprovalTime is when it was decided.
	Reused             bool
	ReusedReview       string
	ReusedApprovalTime time.Time
	CreateTime         time.Time
	DecideTime         time.Time
}

// NewReview checks a review as the application service opens it and
// returns it PENDING.
func NewReview(r Review, now time.Time) (Review, error) {
	switch r.Kind {
	case KindOrganization, KindManual:
	default:
		return Review{}, apierr.Invalid("review.kind", "INVALID_KIND", "kind %q is not supported; use ORGANIZATION or MANUAL", r.Kind)
	}
	if r.Attempt < 1 {
		return Review{}, apierr.Invalid("review.attempt", "INVALID_ATTEMPT", "attempt must be 1 or more")
	}
	r.ValidationLevel = strings.ToUpper(strings.TrimSpace(r.ValidationLevel))
	switch r.ValidationLevel {
	case "DV", "OV", "EV":
	default:
		return Review{}, apierr.Invalid("review.validation_level", "INVALID_VALIDATION_LEVEL", "validation_level %q is not DV, OV or EV", r.ValidationLevel)
	}
	if len(r.Domains) == 0 || len(r.Domains) > MaxDomains {
		return Review{}, apierr.Invalid("review.domains", "INVALID_DOMAINS", "a review needs 1 to %d domains, got %d", MaxDomains, len(r.Domains))
	}
	if r.Kind == KindOrganization {
		if r.ValidationLevel == "DV" {
			return Review{}, apierr.Invalid("review.validation_level", "INVALID_VALIDATION_LEVEL",
				"organization verification is for OV and EV certificates; a DV application needs no ORGANIZATION review")
		}
		if strings.TrimSpace(r.Organization.Name) == "" {
			return Review{}, apierr.Invalid("review.organization.name", "MISSING_FIELD", "an ORGANIZATION review needs the organization's name")
		}
	}
	texts := [][2]string{
		{"review.applicant.name", r.Applicant.Name}, {"review.applicant.phone", r.Applicant.Phone},
		{"review.applicant.email", r.Applicant.Email}, {"review.applicant.id_number", r.Applicant.IDNumber},
		{"review.organization.name", r.Organization.Name}, {"review.organization.type", r.Organization.Type},
		{"review.organization.phone", r.Organization.Phone}, {"review.organization.organization_id", r.Organization.OrganizationID},
		{"review.organization.country", r.Organization.Country}, {"review.organization.province", r.Organization.Province},
		{"review.organization.city", r.Organization.City}, {"review.organization.address", r.Organization.Address},
		{"review.organization.zip_code", r.Organization.ZipCode},
	}
	for i, d := range r.Domains {
		texts = append(texts, [2]string{"review.domains[" + strconv.Itoa(i) + "]", d})
	}
	for i, w := range r.FlaggedWords {
		texts = append(texts, [2]string{"review.flagged_words[" + strconv.Itoa(i) + "]", w})
	}
	for _, t := range texts {
		if !utf8.ValidString(t[1]) || utf8.RuneCountInString(t[1]) > MaxTextLength {
			return Review{}, apierr.Invalid(t[0], "INVALID_TEXT", "%s must be valid UTF-8 of at most %d characters", t[0], MaxTextLength)
		}
	}
	r.State = Pending
	r.PhoneCalls, r.Reviewer, r.Cause, r.Note = nil, "", "", ""
	r.Reused, r.ReusedReview, r.ReusedApprovalTime = false, "", time.Time{}
	r.CreateTime, r.DecideTime = now.UTC(), time.Time{}
	return r, nil
}

func (r *Review) checkPending(action string) error {
	if r.State != Pending {
		return apierr.New(apierr.FailedPrecondition, "REVIEW_NOT_PENDING",
			"the review is %s and can no longer be %s; only PENDING reviews can", r.State, action)
	}
	return nil
}

// RecordCall appends a phone call to a pending review.
func (r *Review) RecordCall(c PhoneCall) error {
	if err := r.checkPending("given phone calls"); err != nil {
		return err
	}
	c.Phone = strings.TrimSpace(c.Phone)
	switch {
	case c.Phone == "":
		return apierr.Invalid("phone", "MISSING_FIELD", "phone is required: give the number that was called")
	case utf8.RuneCountInString(c.Phone) > 64:
		return apierr.Invalid("phone", "INVALID_PHONE", "phone is longer than 64 characters; give the number that was called")
	case utf8.RuneCountInString(c.Notes) > MaxNotesLength:
		return apierr.Invalid("notes", "NOTES_TOO_LONG", "notes are %d characters; keep them to %d", utf8.RuneCountInString(c.Notes), MaxNotesLength)
	case len(r.PhoneCalls) >= MaxPhoneCalls:
		return apierr.New(apierr.FailedPrecondition, "TOO_MANY_PHONE_CALLS",
			"the review already records %d phone calls; decide it (approve or reject)", MaxPhoneCalls)
	}
	switch c.Outcome {
	case Confirmed, Denied, NoAnswer:
	default:
		return apierr.Invalid("outcome", "INVALID_OUTCOME", "outcome is required: CONFIRMED, DENIED or NO_ANSWER")
	}
	c.Time = c.Time.UTC()
	r.PhoneCalls = append(r.PhoneCalls, c)
	return nil
}

// Approve decides a pending review in favour. documents is how many
// qualification documents the application has. An ORGANIZATION review needs
// at least one; a phone call is optional (the seeds: the CA "may" call), but
// any call in which the contact denied the request blocks approval.
func (r *Review) Approve(reviewer, note string, documents int, now time.Time) error {
	if err := r.checkPending("approved"); err != nil {
		return err
	}
	if utf8.RuneCountInString(note) > MaxNotesLength {
		return apierr.Invalid("note", "NOTES_TOO_LONG", "the note is %d characters; keep it to %d", utf8.RuneCountInString(note), MaxNotesLength)
	}
	for _, c := range r.PhoneCalls {
		if c.Outcome == Denied {
			return apierr.New(apierr.FailedPrecondition, "CONTACT_DENIED",
				"the contact denied the request on the call to %s at %s; reject instead", c.Phone, c.Time.Format(time.RFC3339))
		}
	}
	if r.Kind == KindOrganization && documents == 0 {
		return apierr.New(apierr.FailedPrecondition, "DOCUMENTS_REQUIRED",
			"organization verification needs at least one qualification document and %s has none; ask the customer to upload one, or reject with a cause", r.Application)
	}
	r.State, r.Reviewer, r.Note, r.DecideTime = Approved, reviewer, note, now.UTC()
	return nil
}

// Reject decides a pending review against, with a cause for the customer.
func (r *Review) Reject(reviewer, cause string, now time.Time) error {
	if err := r.checkPending("rejected"); err != nil {
		return err
	}
	cause = strings.TrimSpace(cause)
	switch n := utf8.RuneCountInString(cause); {
	case n == 0:
		return apierr.Invalid("cause", "MISSING_FIELD", "cause is required: tell the customer what was wrong and what to change")
	case n > MaxCauseLength:
		return apierr.Invalid("cause", "CAUSE_TOO_LONG", "cause is %d characters; keep it to %d", n, MaxCauseLength)
	}
	r.State, r.Reviewer, r.Cause, r.DecideTime = Rejected, reviewer, cause, now.UTC()
	return nil
}

// Cancel cancels a pending review (its application was withdrawn); it
// reports false for a review already decided.
func (r *Review) Cancel(now time.Time) bool {
	if r.State != Pending {
		return false
	}
	r.State, r.DecideTime = Cancelled, now.UTC()
	return true
}

// ApproveByReuse approves a new ORGANIZATION review from an earlier
// approval of the same organization that still covers it.
func (r *Review) ApproveByReuse(a OrganizationApproval, now time.Time) {
	r.State, r.Reviewer, r.DecideTime = Approved, SystemReviewer, now.UTC()
	r.Reused, r.ReusedReview, r.ReusedApprovalTime = true, a.Review, a.ApproveTime
}
