package service_test

import (
	"context"
	"encoding/base64"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	issuancev1 "github.com/certflow/certflow/gen/go/certflow/issuance/v1"
	"github.com/certflow/certflow/pkg/auth"
	"github.com/certflow/certflow/pkg/testenv"
)

// TestListCertificatesFilters: the filter selects by state, by a name
// among the SANs and by notAfter, combined with AND; page_size 1 walks
// every match once, newest first; a changed token, one of another filter
// and a bad filter are InvalidArgument.
func TestListCertificatesFilters(t *testing.T) {
	start0 := time.Now().UTC().Truncate(time.Second)
	e := start(t, start0)
	alice := testenv.As(context.Background(), "alice", auth.Customer)
	bob := testenv.As(context.Background(), "bob", auth.Customer)
	a := e.issue(t, alice, "applications/l1", nil, "a.example.com", "www.example.com")
	e.clock.Add(24 * time.Hour)
	b := e.issue(t, alice, "applications/l2", nil, "b.example.com")
	e.clock.Add(24 * time.Hour)
	c := e.issue(t, alice, "applications/l3", nil, "www.example.com")
	e.issue(t, bob, "applications/l4", nil, "www.example.com")
	if _, err := e.client.RevokeCertificate(alice, &issuancev1.RevokeCertificateRequest{Name: b.Name}); err != nil {
		t.Fatal(err)
	}
	between := b.NotAfter.AsTime().Add(time.Hour).Format(time.RFC3339)

	list := func(filter string, size int32) []string {
		t.Helper()
		var names []string
		token := ""
		for pages := 0; ; pages++ {
			if pages > 10 {
				t.Fatalf("filter %q: paging does not end", filter)
			}
			resp, err := e.client.ListCertificates(alice, &issuancev1.ListCertificatesRequest{Filter: filter, PageSize: size, PageToken: token})
			if err != nil {
				t.Fatalf("ListCertificates(%q) = %v", filter, err)
			}
			for _, c := range resp.Certificates {
				names = append(names, c.Name)
			}
			if token = resp.NextPageToken; token == "" {
				return names
			}
		}
	}
	for _, tt := range []struct {
		filter string
		want   []string
	}{
		{"", []string{c.Name, b.Name, a.Name}},
		{"state = ISSUED", []string{c.Name, a.Name}},
		{"state = REVOKED", []string{b.Name}},
		{`domain = "www.example.com"`, []string{c.Name, a.Name}},
		{`domain = WWW.Example.com`, []string{c.Name, a.Name}},
		{`not_after < "` + between + `"`, []string{b.Name, a.Name}},
		{`not_after >= "` + between + `"`, []string{c.Name}},
		{`domain = "www.example.com" AND not_after < "` + between + `" AND state = ISSUED`, []string{a.Name}},
		{`domain = "nothing.example.com"`, nil},
	} {
		for _, size := range []int32{1, 2, 0} {
			if got := list(tt.filter, size); !slices.Equal(got, tt.want) {
				t.Errorf("ListCertificates(%q, page_size %d) = %v; want %v", tt.filter, size, got, tt.want)
			}
		}
	}

	first, err := e.client.ListCertificates(alice, &issuancev1.ListCertificatesRequest{PageSize: 1, Filter: "state = ISSUED"})
	if err != nil || first.NextPageToken == "" {
		t.Fatalf("first page = %v, %v; want a next page", first, err)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(first.NextPageToken)
	raw[len(raw)/2] ^= 1
	for name, req := range map[string]*issuancev1.ListCertificatesRequest{
		"tampered token":     {PageSize: 1, Filter: "state = ISSUED", PageToken: base64.RawURLEncoding.EncodeToString(raw)},
		"another filter":     {PageSize: 1, Filter: "state = REVOKED", PageToken: first.NextPageToken},
		"unknown field":      {Filter: "serial = 1"},
		"unknown state":      {Filter: "state = EXPIRED"},
		"bad time":           {Filter: `not_after < "next year"`},
		"equality on a time": {Filter: `not_after = "2027-01-01T00:00:00Z"`},
		"not a domain":       {Filter: `domain = "a..b"`},
		"OR":                 {Filter: `state = ISSUED OR state = REVOKED`},
		"negative page size": {PageSize: -1},
		"offset token":       {PageToken: "AAAAAAAAAAAAAAAAAAAAAA"},
	} {
		if _, err := e.client.ListCertificates(alice, req); testenv.Code(err) != codes.InvalidArgument {
			t.Errorf("ListCertificates with %s = %v; want InvalidArgument", name, err)
		}
	}
	// Another account's token pages nothing of alice's.
	if _, err := e.client.ListCertificates(bob, &issuancev1.ListCertificatesRequest{PageSize: 1, Filter: "state = ISSUED", PageToken: first.NextPageToken}); testenv.Code(err) != codes.InvalidArgument {
		t.Errorf("bob with alice's token = %v; want InvalidArgument", err)
	}
}
