package filter

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
)

var allowed = []string{"state", "application", "create_time"}

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want Filter
	}{
		{"", Filter{}},
		{"   \t\n", Filter{}},
		{"state = PENDING_APPLICATION", Filter{"state": "PENDING_APPLICATION"}},
		{"state=ISSUED", Filter{"state": "ISSUED"}},
		{"  state  =  ISSUED  ", Filter{"state": "ISSUED"}},
		{`application = "applications/abc" AND state = PENDING`, Filter{"application": "applications/abc", "state": "PENDING"}},
		{`application="applications/abc"AND state=PENDING`, Filter{"application": "applications/abc", "state": "PENDING"}},
		{"application = applications/abc-1_2.x", Filter{"application": "applications/abc-1_2.x"}},
		{`state = ""`, Filter{"state": ""}},
		{`state = "a \"quoted\" \\ value"`, Filter{"state": `a "quoted" \ value`}},
		{`state = "AND"`, Filter{"state": "AND"}},
		{`state = "OR (x) != y"`, Filter{"state": "OR (x) != y"}},
		{`state = "ü"`, Filter{"state": "ü"}},
		{"state = A AND\napplication = B AND create_time = 2026-01-01", Filter{"state": "A", "application": "B", "create_time": "2026-01-01"}},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in, allowed...)
		if err != nil || !maps.Equal(got, tt.want) || got == nil {
			t.Errorf("Parse(%q) = %v, %v; want %v, nil", tt.in, got, err, tt.want)
		}
	}
}

func TestParseRefused(t *testing.T) {
	tests := []struct {
		in      string
		wantPos int
	}{
		{"owner = me", 0},                         // unknown field
		{"state = A AND state = B", 14},           // repeated field
		{"State = A", 0},                          // field names are case-sensitive
		{"state = A OR state = B", 10},            // OR
		{"NOT state = A", 0},                      // NOT
		{"state = A AND NOT application = B", 14}, // NOT after AND
		{"(state = A)", 0},                        // parentheses
		{"state = (A)", 8},                        // parentheses as value
		{"state != A", 6},                         // other operators
		{"state < A", 6},
		{"state >= A", 6},
		{"state == A", 6},
		{"state : A", 6}, // has
		{"state ~ A", 6},
		{"state =", 7},        // missing value
		{"state", 5},          // missing operator
		{"state A", 6},        // missing operator
		{"= A", 0},            // missing field
		{`state = "A`, 8},     // unterminated quote
		{`state = "A\"`, 8},   // escaped closing quote
		{`state = "A\`, 8},    // backslash at the end
		{`state = "A\n"`, 10}, // unsupported escape
		{"state = 'A'", 8},    // single quotes
		{"state = A AND", 10}, // trailing AND
		{"state = A AND ", 10},
		{"AND state = A", 0},                  // leading AND
		{"state = A and application = B", 10}, // lower-case keyword
		{"state = A application = B", 10},     // implicit AND
		{"state = A AND AND application = B", 14},
		{"state = AND", 8}, // keyword as value
		{"state = OR", 8},
		{`"state" = A`, 0}, // quoted field
		{"state = A,", 9},
		{"state = A = B", 10},
		{"state = ü", 8},      // non-word bare value
		{"state = \xff", 0},   // invalid UTF-8
		{"state\u00a0= A", 5}, // only ASCII whitespace separates tokens
		{"state = A AND application = B AND state = C", 34}, // repeated later
	}
	for _, tt := range tests {
		got, err := Parse(tt.in, allowed...)
		var e *Error
		if !errors.As(err, &e) {
			t.Errorf("Parse(%q) = %v, %v; want *Error", tt.in, got, err)
			continue
		}
		if got != nil {
			t.Errorf("Parse(%q) = %v with an error; want nil", tt.in, got)
		}
		if e.Pos != tt.wantPos || e.Filter != tt.in || e.Detail == "" {
			t.Errorf("Parse(%q) error = %+v; want Pos %d, Filter as given and a Detail", tt.in, e, tt.wantPos)
		}
	}
}

func TestParseNoFieldsAllowed(t *testing.T) {
	if got, err := Parse(" "); err != nil || len(got) != 0 {
		t.Errorf("Parse(%q) = %v, %v; want empty Filter, nil", " ", got, err)
	}
	var e *Error
	if got, err := Parse("state = A"); !errors.As(err, &e) {
		t.Errorf("Parse(%q) = %v, %v; want *Error", "state = A", got, err)
	}
}

func TestErrorNamesAllowedFields(t *testing.T) {
	// Error must tell the caller what they may filter on, whatever went wrong.
	for _, in := range []string{"owner = me", "state != A", "state = A OR state = B"} {
		_, err := Parse(in, "state", "application")
		if err == nil {
			t.Fatalf("Parse(%q) = nil error; want *Error", in)
		}
		if msg := err.Error(); !strings.Contains(msg, "state, application") {
			t.Errorf("Parse(%q) error = %q; want it to name the allowed fields", in, msg)
		}
	}
}

// render writes f back as a filter Parse accepts.
func render(f Filter) string {
	esc := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	var terms []string
	for _, k := range slices.Sorted(maps.Keys(f)) {
		terms = append(terms, k+` = "`+esc.Replace(f[k])+`"`)
	}
	return strings.Join(terms, " AND ")
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"",
		"state = PENDING_APPLICATION",
		`application = "applications/abc" AND state = PENDING`,
		`state="a \"b\" \\"AND create_time=2026-01-01`,
		"state = A OR state = B",
		"(state = A) AND NOT application != B",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := Parse(in, allowed...)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Pos < 0 || e.Pos > len(in) {
				t.Fatalf("Parse(%q) = %v; want *Error with Pos in [0, %d]", in, err, len(in))
			}
			return
		}
		for k := range got {
			if !slices.Contains(allowed, k) {
				t.Fatalf("Parse(%q) = %v; key %q is not in %q", in, got, k, allowed)
			}
		}
		r := render(got)
		again, err := Parse(r, allowed...)
		if err != nil || !maps.Equal(again, got) {
			t.Fatalf("Parse(%q) = %v, %v; want %v (from Parse(%q))", r, again, err, got, in)
		}
	})
}

// certFields are a list's fields with comparisons, as the certificates
// list has them.
var certFields = Fields{"state": nil, "domain": nil, "not_after": {"<", "<=", ">", ">="}}

func TestParseTerms(t *testing.T) {
	tests := []struct {
		in   string
		want []Term
	}{
		{"", nil},
		{`state = ISSUED`, []Term{{Field: "state", Op: "=", Value: "ISSUED", Pos: 0}}},
		{`not_after < "2027-01-01T00:00:00Z"`, []Term{{Field: "not_after", Op: "<", Value: "2027-01-01T00:00:00Z", Pos: 0}}},
		{`domain="www.example.com" AND not_after>=2027-01-01 AND state = REVOKED`, []Term{
			{Field: "domain", Op: "=", Value: "www.example.com", Pos: 0},
			{Field: "not_after", Op: ">=", Value: "2027-01-01", Pos: 29},
			{Field: "state", Op: "=", Value: "REVOKED", Pos: 55},
		}},
		{`not_after <= x`, []Term{{Field: "not_after", Op: "<=", Value: "x"}}},
	}
	for _, tt := range tests {
		got, err := ParseTerms(tt.in, certFields)
		if err != nil || fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("ParseTerms(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestParseTermsRefusals(t *testing.T) {
	tests := []struct {
		in, wantIn string
		pos        int
	}{
		{`state < ISSUED`, `unsupported operator "<"; only "=" is supported`, 6},
		{`not_after = "2027-01-01T00:00:00Z"`, `unsupported operator "=" for "not_after"; use one of < <= > >=`, 10},
		{`not_after != x`, `unsupported operator "!=" for "not_after"`, 10},
		{`not_after <`, `missing value after "not_after <"`, 11},
		{`not_after`, `missing "=" and a value after "not_after"`, 9},
		{`serial = 1`, `unknown field "serial"; use one of domain, not_after, state`, 0},
		{`state = ISSUED AND state = REVOKED`, `appears more than once`, 19},
		{`state = ISSUED OR domain = a`, `OR is not supported`, 15},
		{`not_after < "2027" AND`, `ends with AND`, 19},
	}
	for _, tt := range tests {
		_, err := ParseTerms(tt.in, certFields)
		var fe *Error
		if !errors.As(err, &fe) || !strings.Contains(fe.Detail, tt.wantIn) || fe.Pos != tt.pos {
			t.Errorf("ParseTerms(%q) = %v; want an *Error at %d saying %q", tt.in, err, tt.pos, tt.wantIn)
		}
	}
}

// TestParseRanges: a range field takes one lower and one upper bound; a
// second bound on the same side, or a bound with "=", is refused.
func TestParseRanges(t *testing.T) {
	fields := Fields{"time": {"<", "<=", ">", ">="}, "action": nil}
	tests := []struct {
		in     string
		ok     bool
		wantIn string
	}{
		{`time >= "2026-01-01T00:00:00Z" AND time < "2026-02-01T00:00:00Z"`, true, ""},
		{`time < b AND action = x AND time > a`, true, ""},
		{`time >= a`, true, ""},
		{`time >= a AND time > b`, false, "one lower (> >=) and one upper (< <=) bound"},
		{`time < a AND time <= b`, false, "one lower"},
		{`time > a AND time < b AND time < c`, false, "appears more than once"},
		{`action = a AND action = b`, false, "give it one value"},
	}
	for _, tt := range tests {
		_, err := ParseRanges(tt.in, fields, "time")
		var fe *Error
		if tt.ok && err != nil || !tt.ok && (!errors.As(err, &fe) || !strings.Contains(fe.Detail, tt.wantIn)) {
			t.Errorf("ParseRanges(%q) = %v; want ok=%v (%q)", tt.in, err, tt.ok, tt.wantIn)
		}
	}
}
