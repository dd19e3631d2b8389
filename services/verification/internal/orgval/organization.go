package orgval

import (
	"strings"
	"time"

	"github.com/certflow/certflow/pkg/certpolicy"
)

// OrganizationApproval is the latest approval of one account's
// organization, kept to reuse it (BR 4.2.1: validated organization data
// may be reused for 398 days).
type OrganizationApproval struct {
	// OrganizationID is the normalized id (see OrganizationKey).
	OrganizationID string
	// Organization is the organization as approved.
	Organization Organization
	// Review names the approved review: reviews/{review}.
	Review string
	// ApproveTime is when a reviewer approved it. Approvals by reuse never
	// move it: the 398 days run from the real validation.
	ApproveTime time.Time
}

// OrganizationKey normalizes an organization id for comparison: case and
// spacing do not matter. It is "" when there is no id.
func OrganizationKey(id string) string {
	return strings.ToUpper(strings.Join(strings.Fields(id), ""))
}

// ReusableFor reports whether the approval may stand for a new review of o
// at now: same organization id, same name and location (the fields that go
// into the certificate's subject), and younger than 398 days.
func (a OrganizationApproval) ReusableFor(o Organization, now time.Time) bool {
	if a.OrganizationID == "" || OrganizationKey(o.OrganizationID) != a.OrganizationID {
		return false
	}
	same := func(x, y string) bool { return fold(x) == fold(y) }
	if !same(o.Name, a.Organization.Name) || !same(o.Country, a.Organization.Country) ||
		!same(o.Province, a.Organization.Province) || !same(o.City, a.Organization.City) {
		return false
	}
	return now.Sub(a.ApproveTime) < certpolicy.OrganizationValidationReuse
}

// Approval is what an approved ORGANIZATION review leaves for reuse; ok is
// false when there is nothing to keep (another kind, no organization id,
// or an approval that was itself a reuse).
func (r *Review) Approval(name string) (OrganizationApproval, bool) {
	id := OrganizationKey(r.Organization.OrganizationID)
	if r.Kind != KindOrganization || r.State != Approved || r.Reused || id == "" {
		return OrganizationApproval{}, false
	}
	return OrganizationApproval{OrganizationID: id, Organization: r.Organization, Review: name, ApproveTime: r.DecideTime}, true
}

// Merge keeps the newer of two approvals.
func (a *OrganizationApproval) Merge(b OrganizationApproval) bool {
	if !b.ApproveTime.After(a.ApproveTime) {
		return false
	}
	*a = b
	return true
}

func fold(s string) string { return strings.ToLower(strings.Join(strings.Fields(s), " ")) }
