// Package domainname validates the DNS names a customer asks to put on a TLS
// certificate, following the CA/Browser Forum Baseline Requirements, and
// returns their canonical ASCII forms.
package domainname

import (
	"fmt"
	"net/netip"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
	"golang.org/x/net/publicsuffix"
)

// Reason says why a name was refused; clients switch on it.
type Reason string

// Reasons for refusing a name.
const (
	ReasonEmpty        Reason = "EMPTY"
	ReasonTooLong      Reason = "TOO_LONG"         // > 253 octets in A-label form, or a label > 63
	ReasonInvalidLabel Reason = "INVALID_LABEL"    // empty label, bad chars, misplaced hyphens, bad Punycode
	ReasonIPAddress    Reason = "IP_ADDRESS"       // IPv4 or IPv6 literal (also bracketed)
	ReasonPublicSuffix Reason = "PUBLIC_SUFFIX"    // the name (or the wildcard's base) is itself a public suffix
	ReasonWildcard     Reason = "INVALID_WILDCARD" // '*' anywhere other than a whole leftmost label "*."
	ReasonSingleLabel  Reason = "SINGLE_LABEL"     // not a fully qualified domain name
	ReasonIDNA         Reason = "INVALID_IDNA"     // Unicode that IDNA2008 refuses
	ReasonDuplicate    Reason = "DUPLICATE"        // NormalizeList only
)

// Error is returned for a refused name.
type Error struct {
	Name   string // as given
	Reason Reason
	Detail string // says what is wrong and what to do

	// problem and fix give Error a compact form; Detail is the sentence
	// built from them.
	problem string
	fix     string
}

func (e *Error) Error() string {
	if e.problem == "" {
		// Built outside this package: only Detail is known.
		return fmt.Sprintf("domain %q: %s", e.Name, e.Detail)
	}
	return fmt.Sprintf("domain %q: %s: %s", e.Name, e.problem, e.fix)
}

// refuse builds an *Error. problem is a short noun phrase ("empty label"),
// predicate completes a sentence about the name ("has an empty label") and
// fix says what the customer should do.
func refuse(name string, r Reason, problem, predicate, fix string) *Error {
	return &Error{
		Name:    name,
		Reason:  r,
		Detail:  fmt.Sprintf("%q %s; %s", name, predicate, fix),
		problem: problem,
		fix:     fix,
	}
}

const (
	maxNameLen  = 253 // RFC 1035 limit, without the trailing dot
	maxLabelLen = 63
	acePrefix   = "xn--"
)

// profile converts between U-labels and A-labels. It follows idna.Lookup
// (UTS #46 mapping, nontransitional, STD3 rules so '_' is refused), and adds
// the bidi rule so mixed-direction names that browsers refuse are refused here.
var profile = idna.New(
	idna.MapForLookup(),
	idna.BidiRule(),
	idna.ValidateLabels(true),
	idna.StrictDomainName(true),
	idna.Transitional(false),
)

// unicodeDots are the label separators UTS #46 maps to '.'. They must be
// split on before labels are converted one at a time.
var unicodeDots = strings.NewReplacer("\u3002", ".", "\uff0e", ".", "\uff61", ".")

// Normalize returns the canonical ASCII form of a certificate name: trimmed of
// surrounding spaces, one trailing dot removed, lower-case, Unicode converted
// to A-labels (xn--), with an optional leading "*." wildcard label kept. A
// refused name gives an *Error whose Reason says why.
func Normalize(name string) (string, error) {
	out, err := normalize(name)
	if err != nil {
		return "", err
	}
	return out, nil
}

// normalize returns *Error rather than error so callers cannot end up with a
// non-nil error interface holding a nil pointer.
func normalize(name string) (string, *Error) {
	s := strings.TrimSpace(name)
	if s == "" {
		return "", refuse(name, ReasonEmpty, "empty name", "is empty", "enter a domain name such as www.example.com")
	}
	if isIPLiteral(s) {
		return "", refuse(name, ReasonIPAddress, "IP address", "is an IP address, not a domain name", "enter a domain name instead")
	}
	if !utf8.ValidString(s) {
		return "", refuse(name, ReasonInvalidLabel, "invalid UTF-8", "is not valid UTF-8", "enter the name again as plain text")
	}
	s = unicodeDots.Replace(s)
	s = strings.TrimSuffix(s, ".")
	if s == "" {
		return "", refuse(name, ReasonEmpty, "empty name", "has no labels", "enter a domain name such as www.example.com")
	}

	base, wildcard := s, false
	if strings.Contains(s, "*") {
		b, ok := strings.CutPrefix(s, "*.")
		switch {
		case s == "*":
			return "", refuse(name, ReasonWildcard, "bare wildcard", "is only a wildcard", "add the domain it covers, e.g. *.example.com")
		case !ok || strings.Contains(b, "*"):
			return "", refuse(name, ReasonWildcard, "misplaced wildcard",
				"has '*' somewhere other than as the whole leftmost label",
				"use the form *.example.com, or list each name separately")
		case b == "":
			return "", refuse(name, ReasonWildcard, "bare wildcard", "has nothing after the wildcard", "add the domain it covers, e.g. *.example.com")
		}
		base, wildcard = b, true
	}

	labels := strings.Split(base, ".")
	for i, l := range labels {
		a, err := toALabel(name, l)
		if err != nil {
			return "", err
		}
		labels[i] = a
	}
	base = strings.Join(labels, ".")
	out := base
	if wildcard {
		out = "*." + base
	}
	if len(out) > maxNameLen {
		return "", refuse(name, ReasonTooLong, "name too long",
			fmt.Sprintf("is %d octets long in A-label form, more than the %d allowed", len(out), maxNameLen),
			"use a shorter name")
	}
	// Each label passed on its own; the bidi rule also constrains how
	// labels combine, so check the whole name once.
	if a, err := profile.ToASCII(base); err != nil || a != base {
		return "", refuse(name, ReasonIDNA, "invalid internationalized name",
			"is not a valid internationalized domain name as a whole (for example, it mixes right-to-left labels with labels that start with a digit)",
			"check the right-to-left labels or enter the name as shown by your registrar")
	}

	ps, icann := publicsuffix.PublicSuffix(base)
	if len(labels) == 1 {
		if icann {
			predicate := fmt.Sprintf("is the top-level domain %q, not a domain registered under it", base)
			if wildcard {
				predicate = fmt.Sprintf("covers the whole top-level domain %q", base)
			}
			return "", refuse(name, ReasonPublicSuffix, "public suffix", predicate,
				"enter a domain registered under it, e.g. example."+base)
		}
		return "", refuse(name, ReasonSingleLabel, "not fully qualified",
			"is a single label, not a fully qualified domain name",
			"enter the full name, e.g. "+base+".example.com")
	}
	if endsInNumber(labels[len(labels)-1]) {
		return "", refuse(name, ReasonIPAddress, "numeric top-level label",
			"ends in a numeric label, which browsers read as an IPv4 address",
			"enter a domain name instead")
	}
	// Whether ps came from the ICANN or the private section (github.io), a
	// name equal to it is shared by unrelated owners. Multi-label names
	// never match the default rule, so ps == base means a listed suffix.
	if ps == base {
		predicate := fmt.Sprintf("is the public suffix %q, under which anyone can register names", base)
		if wildcard {
			predicate = fmt.Sprintf("covers every name under the public suffix %q", base)
		}
		return "", refuse(name, ReasonPublicSuffix, "public suffix", predicate,
			"enter a domain registered under it, e.g. example."+base)
	}
	return out, nil
}

// isIPLiteral reports whether s is an IPv4 or IPv6 address, possibly in the
// brackets URLs use for IPv6.
func isIPLiteral(s string) bool {
	if inner, ok := strings.CutPrefix(s, "["); ok {
		if inner, ok = strings.CutSuffix(inner, "]"); ok {
			s = inner
		}
	}
	_, err := netip.ParseAddr(s)
	return err == nil
}

// endsInNumber follows the WHATWG URL standard: a host whose last label is
// decimal or 0x-hex is parsed as IPv4 (e.g. "1.2.3", "a.0x7f"), so it can
// never be used as a domain name.
func endsInNumber(label string) bool {
	digits := label
	hex := false
	if d, ok := strings.CutPrefix(label, "0x"); ok {
		digits, hex = d, true
	}
	if digits == "" {
		return hex
	}
	for _, c := range []byte(digits) {
		switch {
		case '0' <= c && c <= '9':
		case hex && 'a' <= c && c <= 'f':
		default:
			return false
		}
	}
	return true
}

// toALabel validates one label of name and returns its lower-case A-label
// form.
func toALabel(name, label string) (string, *Error) {
	if label == "" {
		return "", refuse(name, ReasonInvalidLabel, "empty label", "has an empty label", "remove the extra dot")
	}
	if err := checkASCIIChars(name, label); err != nil {
		return "", err
	}
	if isASCII(label) {
		return checkLDHLabel(name, strings.ToLower(label))
	}
	// Catch what customers mistype most before IDNA's less specific errors.
	if label[0] == '-' || label[len(label)-1] == '-' {
		return "", refuse(name, ReasonInvalidLabel, "hyphen at label edge",
			fmt.Sprintf("has the label %q, which starts or ends with a hyphen", label),
			"remove the hyphen")
	}
	a, err := profile.ToASCII(label)
	if err != nil {
		return "", refuse(name, ReasonIDNA, "invalid internationalized label",
			fmt.Sprintf("has the label %q, which IDNA2008 does not allow (%v)", label, err),
			"remove symbols and invisible characters, or enter the xn-- form your registrar shows")
	}
	if strings.Contains(a, ".") {
		// A rune such as U+2488 maps to "1." under IDNA2003-style rules.
		return "", refuse(name, ReasonIDNA, "invalid internationalized label",
			fmt.Sprintf("has the label %q, which contains a character that maps to a dot", label),
			"separate labels with a plain '.'")
	}
	if a == "" {
		// Every rune was one UTS #46 ignores, such as U+00AD SOFT HYPHEN.
		return "", refuse(name, ReasonInvalidLabel, "empty label",
			fmt.Sprintf("has the label %q, which has only invisible characters", label),
			"remove the label and its dot")
	}
	return checkLDHLabel(name, a)
}

// checkASCIIChars refuses ASCII characters that cannot appear in any label,
// Unicode or not, with a message specific to the character.
func checkASCIIChars(name, label string) *Error {
	for _, c := range []byte(label) {
		switch {
		case c >= utf8.RuneSelf, c == '-', '0' <= c && c <= '9', 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case c == '_':
			return refuse(name, ReasonInvalidLabel, "underscore",
				"contains an underscore, which certificate names may not have",
				"use a hyphen instead")
		case c == ' ' || c == '\t':
			return refuse(name, ReasonInvalidLabel, "whitespace",
				"contains whitespace", "remove the spaces")
		default:
			return refuse(name, ReasonInvalidLabel, "invalid character",
				fmt.Sprintf("contains %q, which is not a letter, digit or hyphen", c),
				"use only letters, digits, hyphens and dots")
		}
	}
	return nil
}

// checkLDHLabel checks a lower-case ASCII label and returns it.
func checkLDHLabel(name, label string) (string, *Error) {
	if len(label) > maxLabelLen {
		return "", refuse(name, ReasonTooLong, "label too long",
			fmt.Sprintf("has a label of %d octets, more than the %d allowed", len(label), maxLabelLen),
			"shorten the label")
	}
	if strings.HasPrefix(label, acePrefix) {
		// Before the hyphen checks, so "xn--" is reported as bad Punycode.
		return checkALabel(name, label)
	}
	if label[0] == '-' || label[len(label)-1] == '-' {
		return "", refuse(name, ReasonInvalidLabel, "hyphen at label edge",
			fmt.Sprintf("has the label %q, which starts or ends with a hyphen", label),
			"remove the hyphen")
	}
	if len(label) >= 4 && label[2:4] == "--" {
		// RFC 5891 reserves "??--" for encodings other than Punycode.
		return "", refuse(name, ReasonInvalidLabel, "reserved hyphens",
			fmt.Sprintf("has the label %q, with \"--\" in the third and fourth positions, which is reserved", label),
			"remove one of the hyphens")
	}
	return label, nil
}

// checkALabel checks that an xn-- label is the canonical encoding of a valid
// U-label. idna alone is not enough: it decodes "xn--" to an empty label
// without an error.
func checkALabel(name, label string) (string, *Error) {
	u, err := profile.ToUnicode(label)
	switch {
	case err != nil && u == label:
		// idna keeps a label it cannot decode.
		return "", refuse(name, ReasonInvalidLabel, "invalid Punycode",
			fmt.Sprintf("has the label %q, which is not valid Punycode", label),
			"copy the xn-- label again or enter the name in Unicode")
	case isASCII(u):
		return "", refuse(name, ReasonInvalidLabel, "invalid Punycode",
			fmt.Sprintf("has the label %q, which does not encode any non-ASCII character", label),
			"remove the xn-- prefix and enter the name as plain text")
	case err != nil:
		return "", refuse(name, ReasonIDNA, "invalid internationalized label",
			fmt.Sprintf("has the label %q, which decodes to %q, which IDNA2008 does not allow", label, u),
			"check the name with your registrar")
	}
	if a, err := profile.ToASCII(u); err != nil || a != label {
		return "", refuse(name, ReasonInvalidLabel, "non-canonical Punycode",
			fmt.Sprintf("has the label %q, which is not the canonical encoding of %q", label, u),
			"enter the name in Unicode so it can be encoded canonically")
	}
	return label, nil
}

func isASCII(s string) bool {
	for _, c := range []byte(s) {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// NormalizeList normalizes each name and refuses duplicates after
// normalization ("Example.com" and "example.com." are duplicates) with
// ReasonDuplicate. Order is kept. The first error wins.
func NormalizeList(names []string) ([]string, error) {
	out := make([]string, 0, len(names))
	first := make(map[string]string, len(names)) // normalized -> as given
	for _, name := range names {
		n, err := normalize(name)
		if err != nil {
			return nil, err
		}
		if prev, ok := first[n]; ok {
			return nil, refuse(name, ReasonDuplicate, "duplicate name",
				fmt.Sprintf("is the same name as %q (both are %s)", prev, n),
				"remove one of them")
		}
		first[n] = name
		out = append(out, n)
	}
	return out, nil
}

// IsWildcard reports whether name starts with "*.".
func IsWildcard(name string) bool {
	return strings.HasPrefix(name, "*.")
}

// Base strips a leading "*." (returns name unchanged otherwise).
func Base(name string) string {
	return strings.TrimPrefix(name, "*.")
}

// Registrable returns the registrable domain (eTLD+1) of a name (of its base
// for a wildcard), e.g. "www.shop.example.co.uk" -> "example.co.uk". The name
// is normalized first, so a refused name gives the *Error Normalize gives.
// Suffixes in the private section of the Public Suffix List count, so
// "a.b.github.io" -> "b.github.io": such names have different owners.
func Registrable(name string) (string, error) {
	n, nerr := normalize(name)
	if nerr != nil {
		return "", nerr
	}
	r, err := publicsuffix.EffectiveTLDPlusOne(Base(n))
	if err != nil {
		// Normalize refuses public suffixes, so this should not happen.
		return "", refuse(name, ReasonPublicSuffix, "no registrable domain",
			"has no registrable domain", "enter a name under a registered domain")
	}
	return r, nil
}
