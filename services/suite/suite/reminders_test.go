package suite_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certflow/certflow/services/suite/suite"
)

// TestExpiryRemindersSurviveRestart: 30 days before notAfter the applicant
// gets one email, one SMS and the account's webhook one
// certflow.certificate.expiring; the suite is stopped and started again on
// the same data, and nothing is sent twice; 7 days before, the next
// reminder comes. Then the certificates are listed with filters and keyset
// pages through the gateway.
func TestExpiryRemindersSurviveRestart(t *testing.T) {
	clock := newTestClock(time.Now().UTC())
	data := filepath.Join(t.TempDir(), "var")
	opt := func(o *suite.Options) {
		o.DataDir, o.Now, o.ReminderInterval = data, clock.Now, 100*time.Millisecond
		o.RenewAt = -1 // reminders of one certificate, not renewed (renewal_test.go)
	}
	var mu sync.Mutex
	hooks := map[string]int{}
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		typ := r.Header.Get("Certflow-Event-Type")
		if typ == "certflow.certificate.expiring" {
			var days string
			if i := strings.Index(string(body), `"days_left":`); i >= 0 {
				days = strings.SplitN(string(body[i+len(`"days_left":`):]), ",", 2)[0]
			}
			typ += "/" + strings.Trim(days, "} ")
		}
		hooks[typ]++
	}))
	defer hook.Close()
	expiring := func() string {
		mu.Lock()
		defer mu.Unlock()
		var out []string
		for k, v := range hooks {
			if strings.HasPrefix(k, "certflow.certificate.expiring") {
				out = append(out, fmt.Sprintf("%s=%d", k, v))
			}
		}
		return fmt.Sprint(sortedStrings(out))
	}
	// reminders lists the application's expiry notifications.
	reminders := func(e *env, app string) []string {
		var notes obj
		e.call(t, e.s.APIKey, "GET", "/v1/notifications?page_size=100&filter="+url.QueryEscape(`application = "`+app+`"`), nil, &notes)
		var out []string
		for _, n := range asList(notes["notifications"]) {
			n := n.(obj)
			if s := str(n, "subject"); strings.Contains(s, "expires") || n["channel"] == "CHANNEL_SMS" && strings.Contains(str(n, "body"), "expires") {
				out = append(out, str(n, "channel")+" "+s)
			}
		}
		return sortedStrings(out)
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !ok(); time.Sleep(100 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}

	var app, cert string
	var notAfter time.Time
	t.Run("first run", func(t *testing.T) {
		e := startWith(t, opt)
		if code := e.call(t, e.s.APIKey, "POST", "/v1/webhooks", obj{"url": hook.URL + "/certflow"}, nil); code != 200 {
			t.Fatalf("create webhook = %d", code)
		}
		inst := e.buy(t, e.s.APIKey, "products/dv-single-1y", 1)
		c := e.issueDV(t, inst[0], "www.expiring.test")
		app, cert = str(c, "application"), str(c, "name")
		var err error
		if notAfter, err = time.Parse(time.RFC3339Nano, str(c, "not_after")); err != nil {
			t.Fatalf("not_after %q: %v", str(c, "not_after"), err)
		}
		clock.Advance(notAfter.Add(-30*24*time.Hour + time.Minute).Sub(clock.Now()))
		waitFor("the 30-day reminder by email, SMS and webhook", func() bool {
			return len(reminders(e, app)) == 2 && expiring() == "[certflow.certificate.expiring/30=1]"
		})
		if got := reminders(e, app); !strings.Contains(got[0], "CHANNEL_EMAIL Your certificate for www.expiring.test expires in 30 days") || !strings.HasPrefix(got[1], "CHANNEL_SMS") {
			t.Fatalf("reminders = %q; want the 30-day email and an SMS", got)
		}
	})
	if t.Failed() {
		return
	}
	t.Run("after a restart", func(t *testing.T) {
		e := startWith(t, opt)
		time.Sleep(time.Second) // ten reminder ticks
		if got := reminders(e, app); len(got) != 2 || expiring() != "[certflow.certificate.expiring/30=1]" {
			t.Fatalf("after the restart: reminders %q, webhooks %s; want the 30-day ones once", got, expiring())
		}
		clock.Advance(notAfter.Add(-7*24*time.Hour + time.Minute).Sub(clock.Now()))
		waitFor("the 7-day reminder", func() bool {
			return len(reminders(e, app)) == 4 && expiring() == "[certflow.certificate.expiring/30=1 certflow.certificate.expiring/7=1]"
		})

		// Listing: filters and keyset pages through the gateway.
		inst := e.buy(t, e.s.APIKey, "products/dv-single-1y", 2)
		second := str(e.issueDV(t, inst[0], "www.second.test"), "name")
		third := str(e.issueDV(t, inst[1], "www.third.test"), "name")
		if code := e.call(t, e.s.APIKey, "POST", "/v1/"+third+":revoke", obj{"reason": "REVOCATION_REASON_SUPERSEDED", "request_id": "list-revoke"}, nil); code != 200 {
			t.Fatalf("revoke = %d", code)
		}
		list := func(filter, token string, size int) (int, []string, string, obj) {
			var out obj
			q := url.Values{"filter": {filter}, "page_token": {token}, "page_size": {fmt.Sprint(size)}}
			code := e.call(t, e.s.APIKey, "GET", "/v1/certificates?"+q.Encode(), nil, &out)
			var names []string
			for _, c := range asList(out["certificates"]) {
				names = append(names, str(c.(obj), "name"))
			}
			return code, names, str(out, "next_page_token"), out
		}
		for _, tt := range []struct{ filter, want string }{
			{`state = ISSUED`, fmt.Sprint(sortedStrings([]string{cert, second}))},
			{`state = REVOKED`, fmt.Sprint([]string{third})},
			{`domain = "www.second.test"`, fmt.Sprint([]string{second})},
			{`not_after < "` + notAfter.Add(time.Hour).Format(time.RFC3339) + `"`, fmt.Sprint([]string{cert})},
		} {
			code, names, _, out := list(tt.filter, "", 10)
			if code != 200 || fmt.Sprint(sortedStrings(names)) != tt.want {
				t.Errorf("list %s = %d %v %v; want %s", tt.filter, code, names, out, tt.want)
			}
		}
		var walked []string
		token := ""
		for range 5 {
			code, names, next, out := list("", token, 1)
			if code != 200 || len(names) > 1 {
				t.Fatalf("page = %d %v", code, out)
			}
			walked = append(walked, names...)
			if next == "" {
				break
			}
			token = next
		}
		if want := fmt.Sprint(sortedStrings([]string{cert, second, third})); fmt.Sprint(sortedStrings(walked)) != want {
			t.Fatalf("pages of one walked %v; want each of %s once", walked, want)
		}
		_, _, next, _ := list("", "", 1)
		for _, bad := range []struct{ filter, token string }{
			{"", next[:len(next)-2] + "xx"},
			{`state = ISSUED`, next},
			{`colour = "red"`, ""},
		} {
			if code, _, _, out := list(bad.filter, bad.token, 1); code != http.StatusBadRequest {
				t.Errorf("list filter %q token %q = %d %v; want 400", bad.filter, bad.token, code, out)
			}
		}
	})
}

func sortedStrings(v []string) []string {
	out := append([]string(nil), v...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}
