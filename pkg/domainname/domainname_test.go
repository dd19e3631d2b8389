package domainname

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestNormalize(t *testing.T) {
	label63 := strings.Repeat("a", 63)
	// 63+1+63+1+63+1+61 = 253 octets: the longest name allowed.
	name253 := label63 + "." + label63 + "." + label63 + "." + strings.Repeat("b", 57) + ".com"

	tests := []struct {
		in   string
		want string
	}{
		{"example.com", "example.com"},
		{"WWW.Example.COM.", "www.example.com"},
		{" example.com ", "example.com"},
		{"\texample.com\n", "example.com"},
		{"bücher.example", "xn--bcher-kva.example"},
		{"BÜCHER.example", "xn--bcher-kva.example"},
		{"xn--bcher-kva.example", "xn--bcher-kva.example"},
		{"XN--BCHER-KVA.example", "xn--bcher-kva.example"},
		{"*.example.com", "*.example.com"},
		{"*.Bücher.example.", "*.xn--bcher-kva.example"},
		{"a.b.c.example.co.uk", "a.b.c.example.co.uk"},
		{"example.co.uk", "example.co.uk"},
		{"foo.github.io", "foo.github.io"},
		{"*.foo.github.io", "*.foo.github.io"},
		{"example.test", "example.test"},
		{"a-b.example.com", "a-b.example.com"},
		{"1.example.com", "1.example.com"},
		{"123.example.com", "123.example.com"},
		{"www.ck", "www.ck"},        // exception rule !www.ck
		{"faß.de", "xn--fa-hia.de"}, // nontransitional: ß is kept, not mapped to ss
		{"ＥＸＡＭＰＬＥ.com", "example.com"},
		{"bücher。example", "xn--bcher-kva.example"},
		{"bücher．example．", "xn--bcher-kva.example"},
		{"sof\u00adt.example.com", "soft.example.com"}, // soft hyphen is ignored by UTS #46
		{"☕.example", "xn--53h.example"},
		{label63 + ".com", label63 + ".com"},
		{name253, name253},
	}
	for _, tt := range tests {
		got, err := Normalize(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("Normalize(%q) = %q, %v; want %q, nil", tt.in, got, err, tt.want)
		}
	}
}

func TestNormalizeRefused(t *testing.T) {
	label63 := strings.Repeat("a", 63)
	tests := []struct {
		in   string
		want Reason
	}{
		{"", ReasonEmpty},
		{"   ", ReasonEmpty},
		{".", ReasonEmpty},
		{"com", ReasonPublicSuffix},
		{"co.uk", ReasonPublicSuffix},
		{"CO.UK.", ReasonPublicSuffix},
		{"*.co.uk", ReasonPublicSuffix},
		{"*.com", ReasonPublicSuffix},
		{"github.io", ReasonPublicSuffix},
		{"*.github.io", ReasonPublicSuffix},
		{"foo.ck", ReasonPublicSuffix}, // wildcard rule *.ck
		{"localhost", ReasonSingleLabel},
		{"intranet", ReasonSingleLabel},
		{"test", ReasonSingleLabel},
		{"*.localhost", ReasonSingleLabel},
		{"a..b.com", ReasonInvalidLabel},
		{".example.com", ReasonInvalidLabel},
		{"example.com..", ReasonInvalidLabel},
		{"-a.com", ReasonInvalidLabel},
		{"a-.com", ReasonInvalidLabel},
		{"-bücher.example", ReasonInvalidLabel},
		{"ab--c.com", ReasonInvalidLabel},
		{"xn--zz.example", ReasonInvalidLabel},
		{"xn--.example", ReasonInvalidLabel},     // idna decodes it to "" without an error
		{"xn--abc-.example", ReasonInvalidLabel}, // decodes to plain ASCII
		{"xn--1ug.example", ReasonIDNA},          // decodes to a lone ZERO WIDTH JOINER
		{"exa_mple.com", ReasonInvalidLabel},
		{"_acme-challenge.example.com", ReasonInvalidLabel},
		{"exa mple.com", ReasonInvalidLabel},
		{"example.com/path", ReasonInvalidLabel},
		{"user@example.com", ReasonInvalidLabel},
		{"example.com:443", ReasonInvalidLabel},
		{"bü_cher.example", ReasonInvalidLabel},
		{"a\xffb.example.com", ReasonInvalidLabel},
		{"a.\u00ad.example.com", ReasonInvalidLabel},
		{strings.Repeat("a", 64) + ".com", ReasonTooLong},
		{strings.Repeat(label63+".", 3) + strings.Repeat("b", 58) + ".com", ReasonTooLong}, // 254 octets
		{"*." + strings.Repeat(label63+".", 3) + strings.Repeat("b", 56) + ".com", ReasonTooLong},
		{strings.Repeat("ü", 60) + ".example", ReasonTooLong}, // short in Unicode, long as an A-label
		{"192.0.2.1", ReasonIPAddress},
		{"192.0.2.1.", ReasonIPAddress},
		{"2001:db8::1", ReasonIPAddress},
		{"[2001:db8::1]", ReasonIPAddress},
		{"[::1]", ReasonIPAddress},
		{"::ffff:192.0.2.1", ReasonIPAddress},
		{"1.2.3", ReasonIPAddress},        // browsers read it as 1.2.0.3
		{"example.0x7f", ReasonIPAddress}, // ends in a hex number
		{"a*.example.com", ReasonWildcard},
		{"*x.example.com", ReasonWildcard},
		{"www.*.example.com", ReasonWildcard},
		{"*.*.example.com", ReasonWildcard},
		{"*", ReasonWildcard},
		{"*.", ReasonWildcard},
		{"*..", ReasonWildcard},
		{"⒈.example", ReasonIDNA},       // maps to "1." under UTS #46
		{"a\u200d.example", ReasonIDNA}, // ZWJ outside its allowed context
		{"ק.1.com", ReasonIDNA},         // bidi rule across labels
		{"＊.example.com", ReasonIDNA},   // fullwidth asterisk is not a wildcard
	}
	for _, tt := range tests {
		got, err := Normalize(tt.in)
		var e *Error
		if !errors.As(err, &e) || e.Reason != tt.want {
			t.Errorf("Normalize(%q) = %q, %v; want reason %v", tt.in, got, err, tt.want)
			continue
		}
		if got != "" {
			t.Errorf("Normalize(%q) = %q with an error; want \"\"", tt.in, got)
		}
		if e.Name != tt.in {
			t.Errorf("Normalize(%q) error Name = %q; want the name as given", tt.in, e.Name)
		}
		if e.Detail == "" {
			t.Errorf("Normalize(%q) error has an empty Detail", tt.in)
		}
	}
}

func TestErrorMessage(t *testing.T) {
	_, err := Normalize("a..b.com")
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("Normalize(%q) = %v; want *Error", "a..b.com", err)
	}
	if got, want := e.Error(), `domain "a..b.com": empty label: remove the extra dot`; got != want {
		t.Errorf("Error() = %q; want %q", got, want)
	}
	if got, want := e.Detail, `"a..b.com" has an empty label; remove the extra dot`; got != want {
		t.Errorf("Detail = %q; want %q", got, want)
	}

	// An Error built elsewhere still reads well.
	e = &Error{Name: "x", Reason: ReasonEmpty, Detail: "something is wrong"}
	if got, want := e.Error(), `domain "x": something is wrong`; got != want {
		t.Errorf("Error() = %q; want %q", got, want)
	}
}

func TestNormalizeList(t *testing.T) {
	tests := []struct {
		in      []string
		want    []string
		wantErr Reason // "" means no error
		errName string
	}{
		{in: nil, want: []string{}},
		{
			in:   []string{"www.example.com", "Example.com", "*.example.com"},
			want: []string{"www.example.com", "example.com", "*.example.com"},
		},
		{in: []string{"Example.com", "example.com."}, wantErr: ReasonDuplicate, errName: "example.com."},
		{in: []string{"bücher.example", "XN--BCHER-KVA.example"}, wantErr: ReasonDuplicate, errName: "XN--BCHER-KVA.example"},
		{in: []string{"a.example", " a.example "}, wantErr: ReasonDuplicate, errName: " a.example "},
		// The first error wins, even when a later name is a duplicate.
		{in: []string{"a.example", "com", "a.example"}, wantErr: ReasonPublicSuffix, errName: "com"},
		{in: []string{"a.example", "a.example", "com"}, wantErr: ReasonDuplicate, errName: "a.example"},
	}
	for _, tt := range tests {
		got, err := NormalizeList(tt.in)
		if tt.wantErr == "" {
			if err != nil || !slices.Equal(got, tt.want) || got == nil {
				t.Errorf("NormalizeList(%q) = %q, %v; want %q, nil", tt.in, got, err, tt.want)
			}
			continue
		}
		var e *Error
		if !errors.As(err, &e) || e.Reason != tt.wantErr || e.Name != tt.errName {
			t.Errorf("NormalizeList(%q) = %q, %v; want error %v for %q", tt.in, got, err, tt.wantErr, tt.errName)
		}
	}
}

func TestIsWildcardAndBase(t *testing.T) {
	tests := []struct {
		in       string
		wildcard bool
		base     string
	}{
		{"*.example.com", true, "example.com"},
		{"example.com", false, "example.com"},
		{"*example.com", false, "*example.com"},
		{"*", false, "*"},
		{"", false, ""},
	}
	for _, tt := range tests {
		if got := IsWildcard(tt.in); got != tt.wildcard {
			t.Errorf("IsWildcard(%q) = %v; want %v", tt.in, got, tt.wildcard)
		}
		if got := Base(tt.in); got != tt.base {
			t.Errorf("Base(%q) = %q; want %q", tt.in, got, tt.base)
		}
	}
}

func TestRegistrable(t *testing.T) {
	tests := []struct {
		in   string
		want string
	}{
		{"example.com", "example.com"},
		{"www.example.com", "example.com"},
		{"www.shop.example.co.uk", "example.co.uk"},
		{"*.example.co.uk", "example.co.uk"},
		{"*.www.example.com", "example.com"},
		{"a.b.foo.github.io", "foo.github.io"},
		{"x.y.example.test", "example.test"},
		{"WWW.Bücher.example.", "xn--bcher-kva.example"},
	}
	for _, tt := range tests {
		got, err := Registrable(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("Registrable(%q) = %q, %v; want %q, nil", tt.in, got, err, tt.want)
		}
	}

	for _, in := range []string{"co.uk", "", "a..b.com"} {
		var e *Error
		if got, err := Registrable(in); !errors.As(err, &e) {
			t.Errorf("Registrable(%q) = %q, %v; want *Error", in, got, err)
		}
	}
}

func FuzzNormalize(f *testing.F) {
	for _, s := range []string{
		"example.com", "WWW.Example.COM.", "bücher.example", "*.example.com",
		"xn--bcher-kva.example", "xn--.example", "192.0.2.1", "[::1]", "*.co.uk",
		"a..b.com", "ק.1.com", "ＥＸＡＭＰＬＥ。com", "sof\u00adt.example",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := Normalize(in)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Reason == "" {
				t.Fatalf("Normalize(%q) = %v; want *Error with a Reason", in, err)
			}
			if got != "" {
				t.Fatalf("Normalize(%q) = %q, %v; want \"\" with an error", in, got, err)
			}
			return
		}
		for _, c := range []byte(got) {
			if c >= utf8.RuneSelf || ('A' <= c && c <= 'Z') {
				t.Fatalf("Normalize(%q) = %q; want lower-case ASCII", in, got)
			}
		}
		if len(got) > maxNameLen {
			t.Fatalf("Normalize(%q) = %q (%d octets); want at most %d", in, got, len(got), maxNameLen)
		}
		again, err := Normalize(got)
		if err != nil || again != got {
			t.Fatalf("Normalize(%q) = %q, %v; want %q, nil (Normalize(%q) = %q)", got, again, err, got, in, got)
		}
		if IsWildcard(got) {
			if b, err := Normalize(Base(got)); err != nil || b != Base(got) {
				t.Fatalf("Normalize(%q) = %q, %v; want the wildcard base of %q to be valid", Base(got), b, err, got)
			}
		}
	})
}

func BenchmarkNormalize(b *testing.B) {
	for b.Loop() {
		if _, err := Normalize("WWW.Bücher.Example.co.uk."); err != nil {
			b.Fatal(err)
		}
	}
}
