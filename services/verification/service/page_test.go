package service_test

import (
	"context"
	"encoding/base64"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	verificationv1 "github.com/certflow/certflow/gen/go/certflow/verification/v1"
	"github.com/certflow/certflow/pkg/auth"
	"github.com/certflow/certflow/pkg/testenv"
)

// The list methods page with keyset tokens bound to the caller and the
// query: every page continues where the last ended, and a forged token, or
// one of another account or another filter, is InvalidArgument.
func TestListChallengesPageTokens(t *testing.T) {
	e := start(t)
	alice := testenv.As(context.Background(), "alice", auth.Customer)
	bob := testenv.As(context.Background(), "bob", auth.Customer)
	for _, c := range []struct {
		ctx   context.Context
		app   string
		names []string
	}{
		{alice, "applications/a1", []string{"one.example.test", "two.example.test", "three.example.test"}},
		{alice, "applications/a2", []string{"four.example.test"}},
		{bob, "applications/a1", []string{"bob.example.test"}},
	} {
		if _, err := e.client.CreateChallenges(c.ctx, &verificationv1.CreateChallengesRequest{
			Application: c.app, Attempt: 1, Domains: c.names, Method: verificationv1.ValidationMethod_VALIDATION_METHOD_HTTP_FILE,
		}); err != nil {
			t.Fatal(err)
		}
	}
	pageAll := func(ctx context.Context, filter string) ([]string, string) {
		var names []string
		var firstToken string
		token := ""
		for range 10 {
			resp, err := e.client.ListChallenges(ctx, &verificationv1.ListChallengesRequest{Filter: filter, PageSize: 1, PageToken: token})
			if err != nil {
				t.Fatalf("ListChallenges(%q, token %q) = %v", filter, token, err)
			}
			for _, c := range resp.Challenges {
				names = append(names, c.Domain)
			}
			if firstToken == "" {
				firstToken = resp.NextPageToken
			}
			if token = resp.NextPageToken; token == "" {
				return names, firstToken
			}
		}
		t.Fatalf("ListChallenges(%q) did not end", filter)
		return nil, ""
	}
	for _, tc := range []struct {
		name   string
		ctx    context.Context
		filter string
		want   int
	}{
		{"alice's application", alice, `application = "applications/a1"`, 3},
		{"alice's application, pending", alice, `application = "applications/a1" AND state = PENDING`, 3},
		{"alice's account", alice, "", 4},
		{"bob's own a1", bob, `application = "applications/a1"`, 1},
		{"a verified filter", alice, `application = "applications/a1" AND state = VERIFIED`, 0},
	} {
		names, _ := pageAll(tc.ctx, tc.filter)
		seen := map[string]bool{}
		for _, n := range names {
			if seen[n] {
				t.Errorf("%s: %s listed twice in %v", tc.name, n, names)
			}
			seen[n] = true
		}
		if len(names) != tc.want || (tc.ctx == bob && len(names) == 1 && names[0] != "bob.example.test") {
			t.Errorf("%s: paged %v; want %d challenges of the caller", tc.name, names, tc.want)
		}
	}

	_, token := pageAll(alice, `application = "applications/a1"`)
	raw, _ := base64.RawURLEncoding.DecodeString(token)
	raw[len(raw)-1] ^= 1
	for _, tc := range []struct {
		name   string
		ctx    context.Context
		filter string
		token  string
	}{
		{"not a token", alice, `application = "applications/a1"`, "garbage"},
		{"an offset token", alice, `application = "applications/a1"`, "AAAAAAAAAAAAAAAAAAAAAA"},
		{"a changed token", alice, `application = "applications/a1"`, base64.RawURLEncoding.EncodeToString(raw)},
		{"another account's token", bob, `application = "applications/a1"`, token},
		{"another filter's token", alice, `application = "applications/a2"`, token},
	} {
		_, err := e.client.ListChallenges(tc.ctx, &verificationv1.ListChallengesRequest{Filter: tc.filter, PageSize: 1, PageToken: tc.token})
		if testenv.Code(err) != codes.InvalidArgument {
			t.Errorf("%s: ListChallenges = %v; want InvalidArgument", tc.name, err)
		}
	}
}

// The review queue pages the same way, oldest first.
func TestListReviewsPageTokens(t *testing.T) {
	e := startOrg(t)
	var want []string
	for _, a := range []string{"applications/q1", "applications/q2", "applications/q3"} {
		want = append(want, e.create(t, alice, manualReview(a)).Name)
		e.clock.Advance(time.Minute)
	}
	var got []string
	token := ""
	for range 10 {
		resp, err := e.reviews.ListReviews(staff, &verificationv1.ListReviewsRequest{Filter: "state = PENDING", PageSize: 2, PageToken: token})
		if err != nil {
			t.Fatalf("ListReviews(token %q) = %v", token, err)
		}
		for _, r := range resp.Reviews {
			got = append(got, r.Name)
		}
		if token = resp.NextPageToken; token == "" {
			break
		}
		if _, err := e.reviews.ListReviews(staff, &verificationv1.ListReviewsRequest{Filter: "kind = MANUAL", PageSize: 2, PageToken: token}); testenv.Code(err) != codes.InvalidArgument {
			t.Errorf("ListReviews with another filter's token = %v; want InvalidArgument", err)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("paged %v; want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("paged %v; want %v, oldest first", got, want)
		}
	}
}
