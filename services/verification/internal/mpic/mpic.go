// Package mpic is multi-perspective issuance corroboration (BR 3.2.2.9),
// as Boulder's VA does with its remote VAs: when a domain validation or a
// CAA check passes here, the primary asks every configured remote
// perspective (the verification service in its perspective role, over
// mutual TLS) to repeat it, and applies the quorum in force that day
// (certpolicy.PerspectiveQuorum): enough perspectives, at most so many
// disagreeing (one that does not answer disagrees), and the corroborating
// ones in enough RIRs.
package mpic

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/status"

	verificationv1 "github.com/certflow/certflow/gen/go/certflow/verification/v1"
	"github.com/certflow/certflow/pkg/certpolicy"
	"github.com/certflow/certflow/services/verification/internal/caa"
	"github.com/certflow/certflow/services/verification/internal/domain"
)

// ErrNotCorroborated means the remote perspectives did not corroborate a
// check; the message names the ones that disagree.
var ErrNotCorroborated = errors.New("not corroborated by the remote perspectives (BR 3.2.2.9)")

// Perspective is one configured remote perspective.
type Perspective struct {
	// Name is the perspective's configured name, its region: it must
	// answer with the same name.
	Name   string
	Client verificationv1.PerspectiveServiceClient
}

// Corroborator asks the remote perspectives.
type Corroborator struct {
	Perspectives []Perspective
	Now          func() time.Time
	// Timeout bounds each perspective's answer; default 15s.
	Timeout time.Duration
	// Log, if set, gets why a perspective did not answer.
	Log *slog.Logger
}

// methodsPB maps methods to the perspective API.
var methodsPB = map[domain.Method]verificationv1.ValidationMethod{
	domain.DNSTXT:   verificationv1.ValidationMethod_VALIDATION_METHOD_DNS_TXT,
	domain.DNSCNAME: verificationv1.ValidationMethod_VALIDATION_METHOD_DNS_CNAME,
	domain.HTTPFile: verificationv1.ValidationMethod_VALIDATION_METHOD_HTTP_FILE,
}

// Challenge asks every perspective to look for c's proof. The results are
// returned whatever the decision; the error wraps ErrNotCorroborated.
func (m *Corroborator) Challenge(ctx context.Context, c *domain.Challenge) ([]domain.PerspectiveResult, error) {
	method, ok := methodsPB[c.Method]
	if !ok {
		return nil, fmt.Errorf("mpic: %s challenges are not corroborated", c.Method)
	}
	req := &verificationv1.CorroborateChallengeRequest{
		Method: method, Domain: c.Domain, RecordName: c.RecordName, Token: c.Token,
		CnameTarget: c.CNAMETarget, FilePath: c.FilePath,
	}
	results := m.ask(ctx, func(ctx context.Context, p Perspective) (*verificationv1.PerspectiveResult, error) {
		resp, err := p.Client.CorroborateChallenge(ctx, req)
		return resp.GetResult(), err
	})
	return results, Decide(certpolicy.PerspectiveQuorum(m.Now()), results, "domain control of "+c.Domain)
}

// CAA asks every perspective to decide CAA for q as the primary did.
func (m *Corroborator) CAA(ctx context.Context, q caa.Query) ([]domain.PerspectiveResult, error) {
	req := &verificationv1.CorroborateCaaRequest{Account: q.Account}
	for _, n := range q.Names {
		cn := &verificationv1.CaaName{Domain: n}
		if q.Methods != nil {
			cn.MethodLabels, cn.MethodsKnown = q.Methods(n), true
		}
		req.Names = append(req.Names, cn)
	}
	results := m.ask(ctx, func(ctx context.Context, p Perspective) (*verificationv1.PerspectiveResult, error) {
		resp, err := p.Client.CorroborateCaa(ctx, req)
		return resp.GetResult(), err
	})
	return results, Decide(certpolicy.PerspectiveQuorum(m.Now()), results, "CAA of "+strings.Join(q.Names, ", "))
}

// ask calls every perspective at once; one that fails to answer, or
// answers under another name or with an unknown RIR, disagrees.
func (m *Corroborator) ask(ctx context.Context, call func(context.Context, Perspective) (*verificationv1.PerspectiveResult, error)) []domain.PerspectiveResult {
	timeout := m.Timeout
	if timeout <= 0 {
		timeout = 15 * time.Second
	}
	out := make([]domain.PerspectiveResult, len(m.Perspectives))
	var wg sync.WaitGroup
	for i, p := range m.Perspectives {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			r, err := call(cctx, p)
			switch {
			case err != nil:
				// The customer sees the detail: the code only, not the
				// perspective's address; the log has the rest.
				if m.Log != nil {
					m.Log.Warn("remote perspective did not answer", "perspective", p.Name, "err", err)
				}
				out[i] = domain.PerspectiveResult{Perspective: p.Name, Detail: "unreachable: " + status.Code(err).String()}
			case r.GetPerspective() != p.Name:
				out[i] = domain.PerspectiveResult{Perspective: p.Name, Detail: fmt.Sprintf("answered as %q, not as the configured %q", r.GetPerspective(), p.Name)}
			case !slices.Contains(certpolicy.RIRs, r.GetRir()):
				out[i] = domain.PerspectiveResult{Perspective: p.Name, Region: r.GetRegion(), Detail: fmt.Sprintf("reports RIR %q, not one of %s", r.GetRir(), strings.Join(certpolicy.RIRs, ", "))}
			default:
				out[i] = domain.PerspectiveResult{Perspective: p.Name, Region: r.GetRegion(), RIR: r.GetRir(), Corroborates: r.GetCorroborates(), Detail: r.GetDetail()}
			}
		}()
	}
	wg.Wait()
	return out
}

// Decide applies q to one result per configured perspective: nil when
// what is corroborated, otherwise an error wrapping ErrNotCorroborated
// that names the disagreeing perspectives and says why.
func Decide(q certpolicy.Quorum, results []domain.PerspectiveResult, what string) error {
	if q.Remote == 0 {
		return nil
	}
	if len(results) < q.Remote {
		return fmt.Errorf("%w: %s: %d remote perspective(s) configured, the Baseline Requirements require %d from %s",
			ErrNotCorroborated, what, len(results), q.Remote, q.From.Format(time.DateOnly))
	}
	var bad []string
	rirs := map[string]bool{}
	for _, r := range results {
		if !r.Corroborates {
			bad = append(bad, fmt.Sprintf("%s (%s)", r.Perspective, r.Detail))
			continue
		}
		rirs[r.RIR] = true
	}
	if len(bad) > q.MaxNonCorroborating {
		return fmt.Errorf("%w: %s: %d of %d remote perspectives disagree, at most %d may: %s",
			ErrNotCorroborated, what, len(bad), len(results), q.MaxNonCorroborating, strings.Join(bad, "; "))
	}
	if len(rirs) < q.MinRIRs {
		names := make([]string, 0, len(rirs))
		for r := range rirs {
			names = append(names, r)
		}
		sort.Strings(names)
		return fmt.Errorf("%w: %s: the corroborating perspectives are in %d RIR(s) (%s), at least %d are required",
			ErrNotCorroborated, what, len(rirs), strings.Join(names, ", "), q.MinRIRs)
	}
	return nil
}
