// Package csr builds and checks PKCS#10 certificate signing requests.
//
// Every refusal is an *Error whose Reason clients can switch on and whose
// Detail tells a person what is wrong and how to fix it. The key is judged
// by a key policy (pkg/goodkey); its refusals keep their KEY_* reasons.
package csr

import (
	"context"
	"crypto"
	"crypto/dsa" //nolint:staticcheck // only to recognise and refuse DSA keys
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/certflow/certflow/pkg/apierr"
	"github.com/certflow/certflow/pkg/goodkey"
)

// KeyAlgorithm names a key type and size that certflow accepts.
type KeyAlgorithm string

// The key algorithms GenerateKey can make. Algorithm may also return
// "RSA-<bits>" for other RSA sizes the key policy accepts in CSRs (3072).
const (
	ECDSAP256 KeyAlgorithm = "ECDSA-P256"
	ECDSAP384 KeyAlgorithm = "ECDSA-P384"
	RSA2048   KeyAlgorithm = "RSA-2048"
	RSA4096   KeyAlgorithm = "RSA-4096"
)

const (
	// maxCNLength is ub-common-name from RFC 5280: longer DNS names can
	// only be SANs.
	maxCNLength = 64
)

// GenerateKey makes a new private key of the given algorithm.
func GenerateKey(alg KeyAlgorithm) (crypto.Signer, error) {
	switch alg {
	case ECDSAP256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case ECDSAP384:
		return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case RSA2048:
		return rsa.GenerateKey(rand.Reader, 2048)
	case RSA4096:
		return rsa.GenerateKey(rand.Reader, 4096)
	default:
		return nil, fmt.Errorf("csr: unknown key algorithm %q", alg)
	}
}

// Build makes a DER-encoded CSR signed by key, with the subject common name
// domains[0] and the DNS subject alternative names domains. The domains must
// already be normalized (lowercase A-labels, no trailing dot).
//
// A first domain longer than 64 characters cannot be a common name (RFC 5280
// ub-common-name), so the CSR then has no common name, only SANs.
func Build(key crypto.Signer, domains []string) ([]byte, error) {
	if key == nil {
		return nil, errors.New("csr: no key to sign with")
	}
	if len(domains) == 0 {
		return nil, errors.New("csr: no domains")
	}
	if slices.Contains(domains, "") {
		return nil, errors.New("csr: empty domain name")
	}
	if _, err := Algorithm(key.Public()); err != nil {
		return nil, fmt.Errorf("csr: building request: %w", err)
	}
	tmpl := &x509.CertificateRequest{DNSNames: domains}
	if len(domains[0]) <= maxCNLength {
		tmpl.Subject = pkix.Name{CommonName: domains[0]}
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		return nil, fmt.Errorf("csr: signing request: %w", err)
	}
	return der, nil
}

// Algorithm names the algorithm of a public key, or returns an *Error
// (ReasonUnsupportedKey, or the reason of the default key policy) for a key
// certflow does not accept. It applies the checks of goodkey.Default, which
// need no lists; see Checker for a policy with lists.
func Algorithm(pub crypto.PublicKey) (KeyAlgorithm, error) {
	alg, err := checkKey(context.Background(), defaultPolicy, pub)
	if err != nil {
		return "", err
	}
	return alg, nil
}

// KeyPolicy judges a public key; *goodkey.Policy is one. A refusal is an
// InvalidArgument *apierr.Error whose reason becomes the *Error's Reason;
// any other error (a blocklist that could not be read) is returned as is.
type KeyPolicy interface {
	Check(ctx context.Context, pub crypto.PublicKey) error
}

// defaultPolicy is the policy of Parse, Check and Algorithm: the checks of
// goodkey.Default, which need no lists (no Debian weak keys, no blocklist,
// no CA keys). The issuance service checks again with its full policy.
var defaultPolicy KeyPolicy = goodkey.Default()

// Checker parses and checks CSRs under a key policy. The zero Checker uses
// the default one, like Parse and Check.
type Checker struct {
	Keys KeyPolicy
}

func (c Checker) keys() KeyPolicy {
	if c.Keys == nil {
		return defaultPolicy
	}
	return c.Keys
}

// Reason says why a CSR was refused; clients switch on it.
type Reason string

// Reasons for refusing a CSR.
const (
	// ReasonNotPEM: no PEM block, text around the block that is not
	// whitespace, or more than one block.
	ReasonNotPEM Reason = "CSR_NOT_PEM"
	// ReasonNotCSR: the PEM type is not "CERTIFICATE REQUEST" or "NEW
	// CERTIFICATE REQUEST", or the DER does not parse.
	ReasonNotCSR Reason = "CSR_NOT_A_CSR"
	// ReasonBadSignature: the CSR's self-signature does not verify.
	ReasonBadSignature Reason = "CSR_BAD_SIGNATURE"
	// ReasonUnsupportedKey: DSA, Ed25519, X25519, or an unknown algorithm.
	// An RSA or ECDSA key the key policy refuses has the policy's reason
	// instead (goodkey.Reasons: KEY_SIZE, KEY_EXPONENT, KEY_CURVE, ...).
	ReasonUnsupportedKey Reason = "CSR_UNSUPPORTED_KEY"
	// ReasonNameMismatch: the CSR's names are not exactly the bound domains.
	ReasonNameMismatch Reason = "CSR_NAME_MISMATCH"
	// ReasonForbiddenContent: IP address, email or URI SANs.
	ReasonForbiddenContent Reason = "CSR_FORBIDDEN_CONTENT"
)

// Error is a refused CSR.
type Error struct {
	Reason Reason
	// Detail says what is wrong and what to do about it, for a person.
	Detail string
}

func (e *Error) Error() string {
	return "csr: " + string(e.Reason) + ": " + e.Detail
}

func refuse(r Reason, format string, args ...any) *Error {
	return &Error{Reason: r, Detail: fmt.Sprintf(format, args...)}
}

const pemHint = "send exactly one PEM block from -----BEGIN CERTIFICATE REQUEST----- to -----END CERTIFICATE REQUEST-----, as written by openssl req -new -out request.csr"

// Parse decodes one PEM CSR and checks its format, key (under the default
// key policy), signature and that it asks for nothing but DNS names. It
// does not check which names; see CheckNames. Every error is an *Error.
func Parse(pemText string) (*x509.CertificateRequest, error) {
	return Checker{}.Parse(context.Background(), pemText)
}

// Parse is the package's Parse under c's key policy. Every error is an
// *Error except one of the key policy's that is not a refusal.
func (c Checker) Parse(ctx context.Context, pemText string) (*x509.CertificateRequest, error) {
	req, err := c.parse(ctx, pemText)
	if err != nil {
		return nil, err
	}
	return req, nil
}

// Check is the package's Check under c's key policy.
func (c Checker) Check(ctx context.Context, pemText string, domains []string) (*x509.CertificateRequest, error) {
	req, err := c.Parse(ctx, pemText)
	if err != nil {
		return nil, err
	}
	if err := CheckNames(req, domains); err != nil {
		return nil, err
	}
	return req, nil
}

func (c Checker) parse(ctx context.Context, pemText string) (*x509.CertificateRequest, error) {
	text := strings.TrimSpace(pemText)
	// pem.Decode silently skips text before a block and would leave a
	// second block in rest; both make it ambiguous what the client meant to
	// send, so insist on one block and nothing else.
	switch n := strings.Count(text, "-----BEGIN "); {
	case n == 0:
		return nil, refuse(ReasonNotPEM, "no PEM block found; %s", pemHint)
	case n > 1:
		return nil, refuse(ReasonNotPEM, "found %d PEM blocks; %s", n, pemHint)
	}
	if !strings.HasPrefix(text, "-----BEGIN ") {
		return nil, refuse(ReasonNotPEM, "there is text before the -----BEGIN line; %s", pemHint)
	}
	block, rest := pem.Decode([]byte(text))
	if block == nil {
		return nil, refuse(ReasonNotPEM, "the PEM block is malformed (missing or mismatched -----END line, or bad base64); %s", pemHint)
	}
	if len(rest) != 0 {
		return nil, refuse(ReasonNotPEM, "there is text after the -----END line; %s", pemHint)
	}
	if block.Type != "CERTIFICATE REQUEST" && block.Type != "NEW CERTIFICATE REQUEST" {
		return nil, refuse(ReasonNotCSR, "the PEM block is a %q, not a CERTIFICATE REQUEST; send the certificate signing request, not a certificate or key", block.Type)
	}

	req, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		// x509 refuses to parse EC keys on curves it does not know (such
		// as secp256k1); that is a key problem the client can fix, not
		// a garbled request.
		if curve, ok := unknownCurve(block.Bytes); ok {
			return nil, refuse(Reason(goodkey.ReasonCurve), "the ECDSA key uses the curve %s; make a P-256 or P-384 key (openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 ...)", curve)
		}
		return nil, refuse(ReasonNotCSR, "the CERTIFICATE REQUEST block does not hold a valid PKCS#10 request (%v); make a new CSR", err)
	}
	// Check the key before the signature: verifying with a weak or
	// unsupported key either fails for the wrong reason or costs too much.
	if _, err := checkKey(ctx, c.keys(), req.PublicKey); err != nil {
		return nil, err
	}
	if err := req.CheckSignature(); err != nil {
		return nil, refuse(ReasonBadSignature, "the CSR's signature does not verify (%v); the request was altered after signing or uses an insecure signature algorithm: make it again (openssl req -new ...) and send it unchanged", err)
	}
	if e := checkContent(req); e != nil {
		return nil, e
	}
	return req, nil
}

// checkKey names pub's algorithm, or says why it is refused: CSR
// ReasonUnsupportedKey for a kind of key certflow never certifies, else the
// reason of the key policy.
func checkKey(ctx context.Context, keys KeyPolicy, pub crypto.PublicKey) (KeyAlgorithm, error) {
	var alg KeyAlgorithm
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k == nil || k.N == nil {
			return "", refuse(ReasonUnsupportedKey, "the RSA key is empty; make a new key")
		}
		switch bits := k.N.BitLen(); bits {
		case 2048:
			alg = RSA2048
		case 4096:
			alg = RSA4096
		default:
			alg = KeyAlgorithm(fmt.Sprintf("RSA-%d", bits))
		}
	case *ecdsa.PublicKey:
		if k == nil || k.Curve == nil {
			return "", refuse(ReasonUnsupportedKey, "the ECDSA key is empty; make a new key")
		}
		switch k.Curve {
		case elliptic.P256():
			alg = ECDSAP256
		case elliptic.P384():
			alg = ECDSAP384
		default:
			// The policy names the curve and refuses it.
			alg = KeyAlgorithm("ECDSA-" + k.Curve.Params().Name)
		}
	case ed25519.PublicKey:
		return "", refuse(ReasonUnsupportedKey, "Ed25519 keys are not allowed in publicly-trusted TLS certificates; make an ECDSA P-256 key (openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 ...) or an RSA key of at least 2048 bits")
	case *dsa.PublicKey:
		return "", refuse(ReasonUnsupportedKey, "DSA keys are not allowed; make an ECDSA P-256 key (openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 ...) or an RSA key of at least 2048 bits")
	case *ecdh.PublicKey:
		return "", refuse(ReasonUnsupportedKey, "%v keys cannot sign; make an ECDSA P-256 key or an RSA key of at least 2048 bits", k.Curve())
	case nil:
		return "", refuse(ReasonUnsupportedKey, "the public key algorithm is unknown; make an ECDSA P-256 key or an RSA key of at least 2048 bits")
	default:
		return "", refuse(ReasonUnsupportedKey, "%T keys are not supported; make an ECDSA P-256 key or an RSA key of at least 2048 bits", pub)
	}
	if err := keys.Check(ctx, pub); err != nil {
		var e *apierr.Error
		if errors.As(err, &e) && e.Kind == apierr.InvalidArgument {
			return "", &Error{Reason: Reason(e.Reason), Detail: e.Message}
		}
		return "", fmt.Errorf("csr: checking the key: %w", err)
	}
	return alg, nil
}

// checkContent refuses SANs other than DNS names: certflow validates only
// domains, and the CA never copies anything else from a CSR.
func checkContent(req *x509.CertificateRequest) *Error {
	const fix = "certflow issues certificates for DNS names only; make a CSR without IP address, email or URI subject alternative names"
	if len(req.IPAddresses) > 0 {
		return refuse(ReasonForbiddenContent, "the CSR asks for the IP address %v; %s", req.IPAddresses[0], fix)
	}
	if len(req.EmailAddresses) > 0 {
		return refuse(ReasonForbiddenContent, "the CSR asks for the email address %q; %s", req.EmailAddresses[0], fix)
	}
	if len(req.URIs) > 0 {
		return refuse(ReasonForbiddenContent, "the CSR asks for the URI %q; %s", req.URIs[0].String(), fix)
	}
	return nil
}

var (
	oidPublicKeyECDSA = asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}
	oidCommonName     = asn1.ObjectIdentifier{2, 5, 4, 3}
)

// unknownCurve reports the curve OID of an EC key in a CSR that x509 could
// not parse, by walking only as far into the DER as the key's algorithm.
func unknownCurve(der []byte) (string, bool) {
	var outer, tbs, version, subject, spki asn1.RawValue
	if _, err := asn1.Unmarshal(der, &outer); err != nil {
		return "", false
	}
	if _, err := asn1.Unmarshal(outer.Bytes, &tbs); err != nil {
		return "", false
	}
	rest, err := asn1.Unmarshal(tbs.Bytes, &version)
	if err != nil {
		return "", false
	}
	if rest, err = asn1.Unmarshal(rest, &subject); err != nil {
		return "", false
	}
	if _, err = asn1.Unmarshal(rest, &spki); err != nil {
		return "", false
	}
	var algo pkix.AlgorithmIdentifier
	if _, err := asn1.Unmarshal(spki.Bytes, &algo); err != nil {
		return "", false
	}
	if !algo.Algorithm.Equal(oidPublicKeyECDSA) {
		return "", false
	}
	var curve asn1.ObjectIdentifier
	if _, err := asn1.Unmarshal(algo.Parameters.FullBytes, &curve); err != nil {
		return "", false
	}
	switch curve.String() {
	case "1.2.840.10045.3.1.7", "1.3.132.0.34":
		// P-256 and P-384 parse; the failure was something else.
		return "", false
	case "1.3.132.0.10":
		return "secp256k1 (" + curve.String() + ")", true
	}
	return curve.String(), true
}

// CheckNames reports a ReasonNameMismatch *Error unless the CSR names exactly
// the given domains: its DNS SANs, plus its subject common name, compared
// case-insensitively as sets. A common name must be one of the SANs, unless
// the CSR has no SANs, in which case the common name is its only name.
// The Detail lists names missing from the CSR and names that should not be
// there. It also refuses (ReasonForbiddenContent) IP, email and URI SANs, in
// case req did not come from Parse.
func CheckNames(req *x509.CertificateRequest, domains []string) error {
	if req == nil {
		return errors.New("csr: no request to check")
	}
	if len(domains) == 0 {
		return errors.New("csr: no domains to check the request against")
	}
	if e := checkContent(req); e != nil {
		return e
	}
	// Subject.CommonName keeps only the last CN; a CSR may carry several.
	var cns []string
	for _, atv := range req.Subject.Names {
		if atv.Type.Equal(oidCommonName) {
			s, _ := atv.Value.(string)
			cns = append(cns, s)
		}
	}

	have := map[string]bool{}
	for _, n := range req.DNSNames {
		have[strings.ToLower(n)] = true
	}
	if len(req.DNSNames) == 0 {
		for _, cn := range cns {
			have[strings.ToLower(cn)] = true
		}
	} else {
		for _, cn := range cns {
			if !have[strings.ToLower(cn)] {
				return refuse(ReasonNameMismatch, "the subject common name %q is not one of the CSR's DNS names; make a CSR whose common name is one of: %s (or that has no common name)", cn, strings.Join(domains, ", "))
			}
		}
	}

	want := map[string]bool{}
	for _, d := range domains {
		want[strings.ToLower(d)] = true
	}
	var missing, extra []string
	for d := range want {
		if !have[d] {
			missing = append(missing, d)
		}
	}
	for n := range have {
		if !want[n] {
			extra = append(extra, n)
		}
	}
	if len(missing) == 0 && len(extra) == 0 {
		return nil
	}
	slices.Sort(missing)
	slices.Sort(extra)
	var parts []string
	if len(missing) > 0 {
		parts = append(parts, "the CSR is missing "+strings.Join(missing, ", "))
	}
	if len(extra) > 0 {
		parts = append(parts, "the CSR names "+strings.Join(extra, ", ")+", which the order does not")
	}
	wantList := make([]string, 0, len(want))
	for d := range want {
		wantList = append(wantList, d)
	}
	slices.Sort(wantList)
	return refuse(ReasonNameMismatch, "%s; make a CSR whose DNS names are exactly: %s", strings.Join(parts, "; "), strings.Join(wantList, ", "))
}

// Check parses pemText (see Parse) and checks that it names exactly domains
// (see CheckNames).
func Check(pemText string, domains []string) (*x509.CertificateRequest, error) {
	return Checker{}.Check(context.Background(), pemText, domains)
}
