package grpcapi

import (
	"context"
	"strings"

	"google.golang.org/protobuf/types/known/timestamppb"

	verificationv1 "github.com/certflow/certflow/gen/go/certflow/verification/v1"
	"github.com/certflow/certflow/pkg/apierr"
	"github.com/certflow/certflow/services/verification/internal/domain"
)

// ConfirmChallenge confirms an EMAIL challenge with the code from the email;
// only the challenge's account may (another account gets NotFound).
func (s *Server) ConfirmChallenge(ctx context.Context, req *verificationv1.ConfirmChallengeRequest) (*verificationv1.Challenge, error) {
	acct, id, err := target(ctx, req.GetName())
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(req.GetCode()) == "" {
		return nil, apierr.Invalid("code", "MISSING_FIELD", "code is required: enter the code from the verification email")
	}
	rec, err := s.App.Confirm(ctx, acct, id, req.GetCode())
	if err != nil {
		return nil, err
	}
	return ChallengePB(rec), nil
}

var methodsPB = map[domain.Method]verificationv1.ValidationMethod{
	domain.DNSTXT:   verificationv1.ValidationMethod_VALIDATION_METHOD_DNS_TXT,
	domain.DNSCNAME: verificationv1.ValidationMethod_VALIDATION_METHOD_DNS_CNAME,
	domain.HTTPFile: verificationv1.ValidationMethod_VALIDATION_METHOD_HTTP_FILE,
	domain.Email:    verificationv1.ValidationMethod_VALIDATION_METHOD_EMAIL,
}

// methodPB fills in the method, what to publish for it, and the validation
// record (rule version, reuse, warning).
//
// DNS_CNAME: dns_record_type is "CNAME", dns_record_name the owner
// (_certflow-challenge.<base name>) and dns_record_value the target, both
// without a trailing dot, as DNS consoles take them; the check ignores case
// and a trailing dot. EMAIL: email_address is where the code went; the code
// itself is never returned. A reused challenge has nothing to publish.
func methodPB(pb *verificationv1.Challenge, c domain.Challenge) {
	pb.Method = methodsPB[c.Method]
	pb.RuleVersion, pb.Reused, pb.Warning = c.RuleVersion, c.Reused, c.Warning
	pb.ValidationTime = ts(c.ValidationTime, timestamppb.New(c.ValidationTime))
	if c.Reused {
		pb.NextCheckTime = nil
		return
	}
	switch c.Method {
	case domain.DNSTXT:
		pb.DnsRecordName, pb.DnsRecordType, pb.DnsRecordValue = c.RecordName, "TXT", c.Token
	case domain.DNSCNAME:
		pb.DnsRecordName, pb.DnsRecordType, pb.DnsRecordValue = c.RecordName, "CNAME", c.CNAMETarget
	case domain.HTTPFile:
		pb.HttpUrl, pb.HttpContent = c.URL(), c.Token
	case domain.Email:
		pb.EmailAddress = c.EmailAddress
		pb.NextCheckTime = nil // nothing is polled
	}
}
