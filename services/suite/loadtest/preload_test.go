package loadtest

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	gateway "github.com/certflow/certflow/services/gateway/service"
)

// cloneID is the _id copy k of the template has in db.coll.
func cloneID(t *testing.T, tpl *Template, k, accounts int, db, coll string) string {
	t.Helper()
	for _, c := range tpl.Clone(k, accounts) {
		if c.DB == db && c.Coll == coll {
			return lookup(c.Docs[0].(bson.D), "_id").(string)
		}
	}
	t.Fatalf("copy %d has no %s.%s", k, db, coll)
	return ""
}

// TestPreloadCopiesAreReadable preloads copies of a real lifecycle straight
// into the stores and reads them back through the gateway after a restart,
// as a customer would: each resource of a copy is there under its own
// names, another account's copy is not found, a copy's validation is
// reused for a new application of its domain, and new lifecycles issue.
func TestPreloadCopiesAreReadable(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the suite")
	}
	ctx := context.Background()
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	otherKey := "cf_test_preload_other_account_key"
	cfg := CertflowConfig{Dir: dir, Log: log, ExtraAPIKeys: gateway.HashAPIKey(otherKey) + " preload-0001 customer"}
	cf, err := StartCertflowWith(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := cf.Template(ctx)
	cf.Close()
	if err != nil {
		t.Fatal(err)
	}
	const n, accounts = 30, 3
	st, err := PreloadDir(ctx, dir, tpl, n, accounts, &strings.Builder{})
	if err != nil {
		t.Fatal(err)
	}
	if want := n * tpl.Documents(); st.Documents != want {
		t.Fatalf("Preload wrote %d documents; want %d", st.Documents, want)
	}
	cfg.Run = 1
	cf, err = StartCertflowWith(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cf.Close()

	const mine, theirs = 3, 1 // copy 3 is the development account's, copy 1 preload-0001's
	app := cloneID(t, tpl, mine, accounts, "certflow_application", "applications")
	cert := cloneID(t, tpl, mine, accounts, "certflow_issuance", "certificates")
	chal := cloneID(t, tpl, mine, accounts, "certflow_verification", "challenges")
	order := cloneID(t, tpl, mine, accounts, "certflow_order", "orders")
	var got struct {
		Name        string   `json:"name"`
		State       string   `json:"state"`
		Domains     []string `json:"domains"`
		Certificate string   `json:"certificate"`
		Challenges  []struct {
			Name string `json:"name"`
		} `json:"challenges"`
	}
	if err := cf.Get(ctx, "/v1/applications/"+app, &got); err != nil {
		t.Fatalf("GET a copied application: %v", err)
	}
	if got.State != "ISSUED" || len(got.Domains) != 1 || got.Domains[0] != Domain(mine, 0) ||
		got.Certificate != "certificates/"+cert || len(got.Challenges) != 1 || got.Challenges[0].Name != "challenges/"+chal {
		t.Errorf("GET applications/%s = %+v; want ISSUED for %s with certificates/%s and challenges/%s", app, got, Domain(mine, 0), cert, chal)
	}
	for _, path := range []string{"/v1/certificates/" + cert, "/v1/challenges/" + chal, "/v1/orders/" + order, "/v1/instances/" + order + "-1"} {
		var res map[string]any
		if err := cf.Get(ctx, path, &res); err != nil {
			t.Errorf("GET %s of a copy: %v", path, err)
		} else if s, _ := res["state"].(string); path != "/v1/orders/"+order && s != "ISSUED" && s != "VERIFIED" {
			t.Errorf("GET %s: state %q; want ISSUED or VERIFIED", path, s)
		}
	}

	// The copy's challenges are found through its challenge index, read
	// by a derived id.
	var listed struct {
		Challenges []struct {
			Name string `json:"name"`
		} `json:"challenges"`
	}
	if err := cf.Get(ctx, "/v1/challenges?filter="+url.QueryEscape(`application = "applications/`+app+`"`), &listed); err != nil {
		t.Fatalf("list a copy's challenges: %v", err)
	}
	if len(listed.Challenges) != 1 || listed.Challenges[0].Name != "challenges/"+chal {
		t.Errorf("challenges of applications/%s = %+v; want challenges/%s", app, listed.Challenges, chal)
	}

	// Another account's copy: not found with this key, found with its own.
	other := cloneID(t, tpl, theirs, accounts, "certflow_application", "applications")
	for _, c := range []struct {
		key  string
		want int
	}{{cf.Suite().APIKey, http.StatusNotFound}, {otherKey, http.StatusOK}} {
		req, _ := http.NewRequestWithContext(ctx, "GET", cf.Suite().GatewayURL+"/v1/applications/"+other, nil)
		req.Header.Set("Authorization", "Bearer "+c.key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("GET another account's copy with key %.12s…: %d; want %d", c.key, resp.StatusCode, c.want)
		}
	}

	// The copy's validation is found by its derived id: a new application
	// for the copy's name reuses it instead of asking for a new proof.
	var ord struct {
		Instances []string `json:"instances"`
	}
	if err := cf.do(ctx, "POST", "/v1/orders", map[string]any{"product": "products/dv-single-1y", "quantity": 1}, &ord); err != nil {
		t.Fatal(err)
	}
	var again struct {
		Name       string `json:"name"`
		State      string `json:"state"`
		Challenges []struct {
			Reused bool `json:"reused"`
		} `json:"challenges"`
	}
	if err := cf.do(ctx, "POST", "/v1/applications", map[string]any{
		"instance": ord.Instances[0], "domains": []string{Domain(mine, 0)},
		"applicant": map[string]string{"name": "Load", "phone": "+1 555 0100", "email": "load@example.test"},
	}, &again); err != nil {
		t.Fatal(err)
	}
	if err := cf.do(ctx, "POST", "/v1/"+again.Name+":submit", map[string]any{}, &again); err != nil {
		t.Fatal(err)
	}
	if len(again.Challenges) != 1 || !again.Challenges[0].Reused {
		t.Errorf("submit for the copy's name %s: challenges %+v; want one reused", Domain(mine, 0), again.Challenges)
	}

	// And the preloaded suite still issues new names.
	if _, err := cf.Issue(ctx, 0); err != nil {
		t.Fatalf("a lifecycle after the preload: %v", err)
	}
}

// TestSnapshotRefusesAChangedIDRule: a copy of a document whose id a
// service derives must get the id the service would derive; when the
// derivation no longer matches, Snapshot says so instead of making copies
// the services cannot find.
func TestSnapshotRefusesAChangedIDRule(t *testing.T) {
	saved := idRules
	defer func() { idRules = saved }()
	idRules = append([]idRule(nil), saved...)
	idRules[0].derive = func(get func(string) string) string { return "not-the-rule" }
	if testing.Short() {
		t.Skip("starts the suite")
	}
	ctx := context.Background()
	cf, err := StartCertflow(ctx, t.TempDir(), slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cf.Close()
	if _, err := cf.Template(ctx); err == nil || !strings.Contains(err.Error(), "idRules") {
		t.Fatalf("Template with a wrong id rule: %v; want an error naming idRules", err)
	}
}
