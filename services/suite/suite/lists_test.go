package suite_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/certflow/certflow/pkg/testenv"
)

// gatewayPager lists path's items (the answer's field) through the
// gateway with key; an HTTP refusal is the gRPC status the gateway mapped
// it from, with the API's message.
func gatewayPager(t *testing.T, e *env, key, path, filter, field string) testenv.Pager {
	return func(size int32, token string) ([]string, string, error) {
		q := url.Values{"page_size": {fmt.Sprint(size)}}
		if filter != "" {
			q.Set("filter", filter)
		}
		if token != "" {
			q.Set("page_token", token)
		}
		var out obj
		code := e.call(t, key, "GET", path+"?"+q.Encode(), nil, &out)
		switch code {
		case http.StatusOK:
		case http.StatusBadRequest:
			return nil, "", status.Error(codes.InvalidArgument, str(out, "message"))
		default:
			return nil, "", status.Errorf(codes.Unknown, "HTTP %d: %v", code, out)
		}
		var names []string
		for _, it := range asList(out[field]) {
			names = append(names, str(it.(obj), "name"))
		}
		return names, str(out, "next_page_token"), nil
	}
}

// TestListsPageByKeysetThroughGateway: applications (all, and of one
// state), templates, orders and instances page by keyset through the JSON
// gateway: every page size covers every item once, and a token is 400
// when tampered with, made up, or carried to another filter, another
// account or another list.
func TestListsPageByKeysetThroughGateway(t *testing.T) {
	e := start(t)
	alice := e.s.APIKey
	inst := e.buy(t, alice, "products/dv-single-1y", 4)
	e.buy(t, alice, "products/dv-single-2y", 1)
	e.buy(t, otherKey, "products/dv-single-1y", 2)
	var apps []string
	for i, in := range inst {
		var app obj
		if code := e.call(t, alice, "POST", "/v1/applications", obj{"instance": in, "domains": []string{fmt.Sprintf("www.list%d.test", i)}, "applicant": applicant()}, &app); code != 200 {
			t.Fatalf("POST /v1/applications = %d %v", code, app)
		}
		apps = append(apps, str(app, "name"))
	}
	for _, app := range []string{apps[0], apps[2]} {
		if code := e.call(t, alice, "POST", "/v1/"+app+":submit", obj{}, nil); code != 200 {
			t.Fatalf("submit %s = %d", app, code)
		}
	}
	for i := range 3 {
		if code := e.call(t, alice, "POST", "/v1/templates", obj{"display_name": fmt.Sprint("t", i), "applicant": applicant()}, nil); code != 200 {
			t.Fatalf("POST /v1/templates = %d", code)
		}
	}
	if code := e.call(t, otherKey, "POST", "/v1/templates", obj{"display_name": "other", "applicant": applicant()}, nil); code != 200 {
		t.Fatalf("POST /v1/templates = %d", code)
	}

	pager := func(key, path, filter, field string) testenv.Pager {
		return gatewayPager(t, e, key, path, filter, field)
	}
	// The expected order is what one large page gives, checked newest
	// first by create_time.
	want := func(path, filter, field string, n int) []string {
		t.Helper()
		var out obj
		q := url.Values{"page_size": {"1000"}, "filter": {filter}}
		if code := e.call(t, alice, "GET", path+"?"+q.Encode(), nil, &out); code != 200 {
			t.Fatalf("GET %s = %d %v", path, code, out)
		}
		var names []string
		var last time.Time
		for i, it := range asList(out[field]) {
			at, err := time.Parse(time.RFC3339Nano, str(it.(obj), "create_time"))
			if err != nil || (i > 0 && at.After(last)) {
				t.Fatalf("%s: item %d created %v (%v) after %v; want newest first", path, i, at, err, last)
			}
			last = at
			names = append(names, str(it.(obj), "name"))
		}
		if len(names) != n {
			t.Fatalf("GET %s?%s = %v; want %d items", path, q.Encode(), names, n)
		}
		return names
	}
	draft, pending := "state = DRAFT", "state = PENDING_DOMAIN_VERIFICATION"
	for _, tt := range []struct {
		name string
		list testenv.KeysetList
	}{
		{"applications", testenv.KeysetList{
			List: pager(alice, "/v1/applications", "", "applications"),
			Want: want("/v1/applications", "", "applications", 4),
			Elsewhere: map[string]testenv.Pager{
				"another filter":  pager(alice, "/v1/applications", draft, "applications"),
				"another account": pager(otherKey, "/v1/applications", "", "applications"),
				"templates":       pager(alice, "/v1/templates", "", "templates"),
			},
		}},
		{"applications in DRAFT", testenv.KeysetList{
			List: pager(alice, "/v1/applications", draft, "applications"),
			Want: want("/v1/applications", draft, "applications", 2),
			Elsewhere: map[string]testenv.Pager{
				"another state":   pager(alice, "/v1/applications", pending, "applications"),
				"no filter":       pager(alice, "/v1/applications", "", "applications"),
				"another account": pager(otherKey, "/v1/applications", draft, "applications"),
			},
		}},
		{"applications submitted", testenv.KeysetList{
			List:      pager(alice, "/v1/applications", pending, "applications"),
			Want:      want("/v1/applications", pending, "applications", 2),
			Elsewhere: map[string]testenv.Pager{"another state": pager(alice, "/v1/applications", draft, "applications")},
		}},
		{"templates", testenv.KeysetList{
			List: pager(alice, "/v1/templates", "", "templates"),
			Want: want("/v1/templates", "", "templates", 3),
			Elsewhere: map[string]testenv.Pager{
				"another account": pager(otherKey, "/v1/templates", "", "templates"),
				"applications":    pager(alice, "/v1/applications", "", "applications"),
			},
		}},
		{"orders", testenv.KeysetList{
			List: pager(alice, "/v1/orders", "", "orders"),
			Want: want("/v1/orders", "", "orders", 2),
			Elsewhere: map[string]testenv.Pager{
				"another account": pager(otherKey, "/v1/orders", "", "orders"),
				"instances":       pager(alice, "/v1/instances", "", "instances"),
			},
		}},
		{"instances", testenv.KeysetList{
			List: pager(alice, "/v1/instances", "", "instances"),
			Want: want("/v1/instances", "", "instances", 5),
			Elsewhere: map[string]testenv.Pager{
				"another filter":  pager(alice, "/v1/instances", "state = APPLYING", "instances"),
				"another account": pager(otherKey, "/v1/instances", "", "instances"),
			},
		}},
		{"instances applying", testenv.KeysetList{
			List:      pager(alice, "/v1/instances", "state = APPLYING", "instances"),
			Want:      want("/v1/instances", "state = APPLYING", "instances", 2),
			Elsewhere: map[string]testenv.Pager{"another filter": pager(alice, "/v1/instances", "state = PENDING_APPLICATION", "instances")},
		}},
	} {
		t.Run(strings.ReplaceAll(tt.name, " ", "_"), func(t *testing.T) { testenv.CheckKeysetList(t, tt.list) })
	}
}
