package app

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/certflow/certflow/pkg/apierr"
	"github.com/certflow/certflow/pkg/docstore"
	"github.com/certflow/certflow/pkg/domainname"
	"github.com/certflow/certflow/services/verification/internal/caa"
	"github.com/certflow/certflow/services/verification/internal/domain"
)

// The check the CA makes immediately before it signs (as Boulder's RA does
// at finalize): the names must be exactly those challenged for the
// application's attempt, each challenge VERIFIED, its evidence usable at
// the signing time under the rules in force then, and CAA must still
// permit every name. Reuse was decided when the challenges were made; an
// OV review that takes longer than the reuse period must not sign on the
// old evidence, so the age is judged again here.

// CAAChecker decides CAA for normalized names (caa.Checker).
type CAAChecker interface {
	Check(ctx context.Context, q caa.Query) (caa.Result, error)
}

// MaxIssuanceNames bounds the names of one certificate checked at once.
const MaxIssuanceNames = 500

// IssuanceRequest is what the CA is about to sign.
type IssuanceRequest struct {
	Application string
	Attempt     int
	Names       []string
	// SignTime is the certificate's notBefore as the CA will write it.
	SignTime time.Time
}

// NameEvidence is the evidence one name of the certificate rests on.
type NameEvidence struct {
	domain.Evidence
	// Challenge is the id of the application's challenge for the name.
	Challenge  string
	ExpireTime time.Time
}

// IssuanceAuthorization is the evidence for every name, in the request's
// order, judged at CheckTime.
type IssuanceAuthorization struct {
	Names     []NameEvidence
	CheckTime time.Time
	// CAAPerspectives are the remote perspectives' CAA results at
	// CheckTime.
	CAAPerspectives []domain.PerspectiveResult
}

// AuthorizeIssuance decides whether the account may have req signed now.
// The rules are applied at the later of req.SignTime and this service's
// clock, so an early signing time cannot make old evidence young. A refusal
// is a FailedPrecondition with one of the domain.Reason* reasons, naming the
// first domain (in the request's order) that fails; a CAA lookup failure is
// Unavailable.
func (a *App) AuthorizeIssuance(ctx context.Context, account string, req IssuanceRequest) (*IssuanceAuthorization, error) {
	names, err := domainname.NormalizeList(req.Names)
	if err != nil {
		return nil, apierr.Invalid("domains", "INVALID_DOMAIN", "%v", err)
	}
	if len(names) == 0 {
		return nil, apierr.Invalid("domains", "MISSING_FIELD", "at least one domain is required")
	}
	if len(names) > MaxIssuanceNames {
		return nil, apierr.Invalid("domains", "TOO_MANY_DOMAINS", "at most %d domains can be checked at once", MaxIssuanceNames)
	}
	at := a.now().UTC()
	if req.SignTime.After(at) {
		at = req.SignTime.UTC()
	}
	byName, err := a.attemptChallenges(ctx, account, req.Application, req.Attempt)
	if err != nil {
		return nil, err
	}
	what := fmt.Sprintf("%s (attempt %d)", req.Application, req.Attempt)
	if len(byName) == 0 {
		return nil, domain.Refusal(domain.ReasonValidationMissing, names[0],
			"no name of %s was challenged in this account, so %s has no validation to sign on; submit the application to validate its names",
			what, names[0])
	}
	if err := sameNames(names, byName, what); err != nil {
		return nil, err
	}
	out := &IssuanceAuthorization{CheckTime: at}
	for _, n := range names {
		ev, err := best(n, byName[n], at, what)
		if err != nil {
			return nil, err
		}
		out.Names = append(out.Names, ev)
	}
	if a.caa == nil {
		return nil, apierr.New(apierr.Unavailable, "CAA_NOT_CONFIGURED", "CAA checking is not configured on this server; retry against a configured one")
	}
	// RFC 8657: the account the CA signs for, and the method each name's
	// evidence was made by.
	methods := make(map[string][]string, len(out.Names))
	for i, n := range out.Names {
		methods[names[i]] = n.Method.CAALabels()
	}
	q := caa.Query{Names: names, Account: account, Methods: func(name string) []string { return methods[name] }}
	r, err := a.caa.Check(ctx, q)
	if err != nil {
		return nil, err
	}
	switch {
	case r.LookupFailed:
		return nil, apierr.New(apierr.Unavailable, domain.ReasonCAALookupFailed,
			"CAA of %s could not be checked: %s", r.Domain, r.Reason).
			WithMeta("domain", r.Domain)
	case !r.Allowed:
		return nil, domain.Refusal(domain.ReasonCAAForbids, r.Domain, "CAA forbids issuance for %s: %s", r.Domain, r.Reason)
	}
	// CAA permits here; the remote perspectives must agree (BR 3.2.2.9).
	out.CAAPerspectives, err = a.mpic.CAA(ctx, q)
	if err != nil {
		return nil, domain.Refusal(domain.ReasonNotCorroborated, names[0], "%v", err)
	}
	return out, nil
}

// maxAttemptChallenges bounds the challenges read for one attempt: one per
// name, and a name may have been asked twice with different spelling.
const maxAttemptChallenges = 2 * MaxIssuanceNames

// attemptChallenges returns the account's challenges of one attempt of an
// application by (normalized) name, read through the application's index
// (index.go): by _id only, and never another account's.
func (a *App) attemptChallenges(ctx context.Context, account, application string, attempt int) (map[string][]*docstore.Record[domain.Challenge], error) {
	recs, err := a.indexed(ctx, account, application, func(r domain.ChallengeRef) bool { return r.Attempt == attempt })
	if err != nil {
		return nil, err
	}
	if len(recs) > maxAttemptChallenges {
		return nil, fmt.Errorf("%s attempt %d has more than %d challenges", application, attempt, maxAttemptChallenges)
	}
	out := make(map[string][]*docstore.Record[domain.Challenge], len(recs))
	for _, r := range recs {
		if r.Doc.Attempt != attempt {
			continue
		}
		out[r.Doc.Domain] = append(out[r.Doc.Domain], r)
	}
	return out, nil
}

// sameNames refuses unless names are exactly the challenged names.
func sameNames(names []string, challenged map[string][]*docstore.Record[domain.Challenge], what string) error {
	validated := make([]string, 0, len(challenged))
	for n := range challenged {
		validated = append(validated, n)
	}
	slices.Sort(validated)
	list := strings.Join(validated, ", ")
	for _, n := range names {
		if _, ok := challenged[n]; !ok {
			return domain.Refusal(domain.ReasonNamesMismatch, n,
				"%s is not one of the names validated for %s (%s); a certificate holds exactly the application's validated names",
				n, what, list)
		}
	}
	asked := make(map[string]bool, len(names))
	for _, n := range names {
		asked[n] = true
	}
	for _, n := range validated {
		if !asked[n] {
			return domain.Refusal(domain.ReasonNamesMismatch, n,
				"the certificate leaves out %s, which was validated for %s (%s); a certificate holds exactly the application's validated names",
				n, what, list)
		}
	}
	return nil
}

// best is the youngest usable evidence among a name's challenges; without
// one, the refusal of a verified one, or VALIDATION_MISSING.
func best(name string, recs []*docstore.Record[domain.Challenge], at time.Time, what string) (NameEvidence, error) {
	var (
		found   *NameEvidence
		refused error
		states  []string
	)
	for _, r := range recs {
		ev, ok := r.Doc.Evidence()
		if !ok {
			states = append(states, string(r.Doc.State))
			continue
		}
		if err := ev.PermitsSigning(at); err != nil {
			if refused == nil {
				refused = err
			}
			continue
		}
		if found == nil || ev.ValidationTime.After(found.ValidationTime) {
			found = &NameEvidence{Evidence: ev, Challenge: r.ID, ExpireTime: ev.ExpireTime(at)}
		}
	}
	switch {
	case found != nil:
		return *found, nil
	case refused != nil:
		return NameEvidence{}, refused
	}
	return NameEvidence{}, domain.Refusal(domain.ReasonValidationMissing, name,
		"%s has no validation for %s: its challenge is %s; prove control of the name (or resubmit the application for a new challenge)",
		name, what, strings.Join(states, ", "))
}
