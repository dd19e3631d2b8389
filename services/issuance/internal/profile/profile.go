// Package profile holds certflow's issuance profiles as data: one table row
// per validation level (BR 7.1.2.7, EV Guidelines 9.2), saying which policy
// a subscriber certificate asserts and which subject attributes it carries,
// in the order BR 7.1.4.2 gives, and where each comes from.
package profile

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"strings"
)

// Level is a validation level.
type Level string

// Levels.
const (
	DV Level = "DV"
	OV Level = "OV"
	EV Level = "EV"
)

// Organization is the organization the CA staff approved: the only source
// of an OV or EV subject.
type Organization struct {
	Name string
	// Type is the declared type of company, mapped to EV businessCategory.
	Type string
	// RegistrationNumber is the registration (organization) id: EV's
	// subject serialNumber.
	RegistrationNumber string
	// Country is ISO 3166-1 alpha-2; Province and City may be empty.
	Country, Province, City string
}

// ErrSubject is returned (wrapped) when the approved organization cannot
// make the profile's subject.
var ErrSubject = errors.New("profile: organization cannot make the subject")

// Attribute is one subject attribute of a profile.
type Attribute struct {
	Type asn1.ObjectIdentifier
	Name string
	// Value takes it from the approved organization; "" leaves it out.
	Value func(Organization) (string, error)
	// Required refuses a subject without it.
	Required bool
	// Printable encodes it as PrintableString (countryName and
	// serialNumber must be, RFC 5280 and EVG 9.2.6); others are UTF8String.
	Printable bool
}

// Profile is one issuance profile.
type Profile struct {
	Level Level
	// Policy is the CA/Browser Forum reserved policy identifier.
	Policy x509.OID
	// Section is where the rules are.
	Section string
	// Attributes are the subject attributes in the order written (BR 7.1.4.2). DV has
	// none; no profile writes commonName, which BR 7.1.2.7.2-4 make NOT
	// RECOMMENDED (the names are in the subjectAltName, which is then
	// critical for an empty subject, RFC 5280 4.2.1.6).
	Attributes []Attribute
	// NeedsLocation refuses a subject with neither stateOrProvinceName nor
	// localityName (BR 7.1.2.7.4).
	NeedsLocation bool
	// Wildcards says whether a wildcard name may be signed (EVG 9.8.1: not
	// in EV).
	Wildcards bool
}

// Attribute types.
var (
	oidCountry               = asn1.ObjectIdentifier{2, 5, 4, 6}
	oidProvince              = asn1.ObjectIdentifier{2, 5, 4, 8}
	oidLocality              = asn1.ObjectIdentifier{2, 5, 4, 7}
	oidOrganization          = asn1.ObjectIdentifier{2, 5, 4, 10}
	oidSerialNumber          = asn1.ObjectIdentifier{2, 5, 4, 5}
	oidBusinessCategory      = asn1.ObjectIdentifier{2, 5, 4, 15}
	oidJurisdictionLocality  = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 60, 2, 1, 1}
	oidJurisdictionProvince  = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 60, 2, 1, 2}
	oidJurisdictionCountry   = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 60, 2, 1, 3}
	oidDomainValidated       = mustOID(2, 23, 140, 1, 2, 1)
	oidOrganizationValidated = mustOID(2, 23, 140, 1, 2, 2)
	oidExtendedValidation    = mustOID(2, 23, 140, 1, 1)
	// AnyPolicy is what the intermediate asserts (BR 7.1.2.10.5).
	AnyPolicy                 = mustOID(2, 5, 29, 32, 0)
	countryAttr               = Attribute{oidCountry, "countryName", country, true, true}
	provinceAttr              = Attribute{oidProvince, "stateOrProvinceName", field(func(o Organization) string { return o.Province }), false, false}
	localityAttr              = Attribute{oidLocality, "localityName", field(func(o Organization) string { return o.City }), false, false}
	organizationAttr          = Attribute{oidOrganization, "organizationName", field(func(o Organization) string { return o.Name }), true, false}
	organizationValidatedTail = []Attribute{countryAttr, provinceAttr, localityAttr, organizationAttr}
)

// Profiles is the table, one row per level.
var Profiles = map[Level]Profile{
	DV: {Level: DV, Policy: oidDomainValidated, Section: "BR 7.1.2.7.2", Wildcards: true},
	OV: {Level: OV, Policy: oidOrganizationValidated, Section: "BR 7.1.2.7.4", Wildcards: true, NeedsLocation: true,
		Attributes: organizationValidatedTail},
	EV: {Level: EV, Policy: oidExtendedValidation, Section: "EV Guidelines 9.2, BR 7.1.2.7.3", NeedsLocation: true,
		Attributes: append([]Attribute{
			{oidBusinessCategory, "businessCategory", businessCategory, true, false},
			{oidJurisdictionCountry, "jurisdictionCountryName", country, true, true},
			{oidJurisdictionProvince, "jurisdictionStateOrProvinceName", field(func(o Organization) string { return o.Province }), false, false},
			{oidJurisdictionLocality, "jurisdictionLocalityName", field(func(o Organization) string { return o.City }), false, false},
			{oidSerialNumber, "serialNumber", registrationNumber, true, true},
		}, organizationValidatedTail...)},
}

// Policies are the policy identifiers of every profile, which the
// intermediate asserts (BR 7.1.2.10.5: a CA asserts the reserved policies of
// what it issues).
func Policies() []x509.OID {
	return []x509.OID{oidDomainValidated, oidOrganizationValidated, oidExtendedValidation}
}

// For returns the profile of a level ("" is DV).
func For(level string) (Profile, error) {
	if level == "" {
		level = string(DV)
	}
	p, ok := Profiles[Level(strings.ToUpper(level))]
	if !ok {
		return Profile{}, fmt.Errorf("profile: no issuance profile for validation level %q", level)
	}
	return p, nil
}

// Subject builds the DER subject of a certificate under p from the approved
// organization; for DV it is the empty name.
func (p Profile) Subject(o Organization) ([]byte, error) {
	var rdns pkix.RDNSequence
	has := map[string]bool{}
	for _, a := range p.Attributes {
		v, err := a.Value(o)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrSubject, a.Name, err)
		}
		if v == "" {
			if a.Required {
				return nil, fmt.Errorf("%w: %s %s needs %s, which the approved organization does not give", ErrSubject, p.Level, p.Section, a.Name)
			}
			continue
		}
		has[a.Name] = true
		var val any = v
		if a.Printable {
			if !printable(v) {
				return nil, fmt.Errorf("%w: %s %q has characters a PrintableString cannot hold", ErrSubject, a.Name, v)
			}
			val = asn1.RawValue{Tag: asn1.TagPrintableString, Bytes: []byte(v)}
		} else {
			val = asn1.RawValue{Tag: asn1.TagUTF8String, Bytes: []byte(v)}
		}
		rdns = append(rdns, pkix.RelativeDistinguishedNameSET{{Type: a.Type, Value: val}})
	}
	if p.NeedsLocation && !has["stateOrProvinceName"] && !has["localityName"] {
		return nil, fmt.Errorf("%w: %s needs the organization's province or city (%s)", ErrSubject, p.Level, p.Section)
	}
	if rdns == nil {
		rdns = pkix.RDNSequence{}
	}
	return asn1.Marshal(rdns)
}

// maxAttributeLength is the upper bound RFC 5280 gives the name attributes
// used here (ub-organization-name and ub-locality-name are 128, serialNumber
// 64); 64 keeps every one within its bound.
const maxAttributeLength = 64

func field(get func(Organization) string) func(Organization) (string, error) {
	return func(o Organization) (string, error) {
		v := strings.Join(strings.Fields(get(o)), " ")
		if len(v) > maxAttributeLength {
			return "", fmt.Errorf("%q is longer than %d bytes", v, maxAttributeLength)
		}
		return v, nil
	}
}

func country(o Organization) (string, error) {
	c := strings.ToUpper(strings.TrimSpace(o.Country))
	if len(c) != 2 || c[0] < 'A' || c[0] > 'Z' || c[1] < 'A' || c[1] > 'Z' {
		return "", fmt.Errorf("country %q is not an ISO 3166-1 alpha-2 code", o.Country)
	}
	return c, nil
}

func registrationNumber(o Organization) (string, error) {
	return field(func(o Organization) string { return strings.ReplaceAll(o.RegistrationNumber, " ", "") })(o)
}

// businessCategories maps the declared type of company to EV's
// businessCategory (EVG 9.2.3, 8.5).
var businessCategories = map[string]string{
	"enterprise":                 "Private Organization",
	"private":                    "Private Organization",
	"private organization":       "Private Organization",
	"company":                    "Private Organization",
	"corporation":                "Private Organization",
	"government":                 "Government Entity",
	"government entity":          "Government Entity",
	"business":                   "Business Entity",
	"business entity":            "Business Entity",
	"sole proprietorship":        "Business Entity",
	"partnership":                "Business Entity",
	"non-commercial":             "Non-Commercial Entity",
	"non-commercial entity":      "Non-Commercial Entity",
	"non-profit":                 "Non-Commercial Entity",
	"nonprofit":                  "Non-Commercial Entity",
	"international organization": "Non-Commercial Entity",
}

func businessCategory(o Organization) (string, error) {
	t := strings.ToLower(strings.Join(strings.Fields(o.Type), " "))
	c, ok := businessCategories[t]
	if !ok {
		return "", fmt.Errorf("type of company %q is not one EV knows (enterprise, government, business, non-profit)", o.Type)
	}
	return c, nil
}

func printable(s string) bool {
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case strings.ContainsRune(" '()+,-./:=?", r):
		default:
			return false
		}
	}
	return true
}

func mustOID(arcs ...uint64) x509.OID {
	oid, err := x509.OIDFromInts(arcs)
	if err != nil {
		panic(err)
	}
	return oid
}
