package domain

import (
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certflow/certflow/pkg/apierr"
)

func TestParseWebhookURL(t *testing.T) {
	tests := []struct {
		url     string
		wantErr bool
	}{
		{"https://hooks.example.com/certflow", false},
		{"http://example.com:8080/a?b=c", false},
		{"https://user:pass@example.com/", false},
		{"http://[2001:db8::1]:8443/x", false},
		{"https://example.com/" + strings.Repeat("a", MaxURLLength-len("https://example.com/")), false},
		{"https://example.com/" + strings.Repeat("a", MaxURLLength), true},
		{"", true},
		{"ftp://example.com/x", true},
		{"/relative/path", true},
		{"example.com/hook", true},
		{"https://", true},
		{"https:///path", true},
		{"https://example.com/#fragment", true},
		{"http://exa mple.com/", true},
	}
	for _, tt := range tests {
		_, err := ParseWebhookURL(tt.url)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseWebhookURL(%.60q) = %v; want error %v", tt.url, err, tt.wantErr)
		}
		if err != nil && !errors.Is(err, apierr.ErrInvalidArgument) {
			t.Errorf("ParseWebhookURL(%.60q) = %v; want InvalidArgument", tt.url, err)
		}
	}
}

func TestNewSecret(t *testing.T) {
	a, b := NewSecret(), NewSecret()
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(a, SecretPrefix))
	if !strings.HasPrefix(a, SecretPrefix) || err != nil || len(raw) != 32 {
		t.Errorf("NewSecret() = %q; want whsec_ and 32 bytes in base64url", a)
	}
	if a == b {
		t.Errorf("NewSecret() twice = %q; want different secrets", a)
	}
}

func TestRetryPolicyDelay(t *testing.T) {
	p := RetryPolicy{Initial: 5 * time.Second, Max: 10 * time.Minute, MaxAttempts: 8}
	tests := []struct {
		attempts int
		want     time.Duration
	}{
		{1, 5 * time.Second},
		{2, 10 * time.Second},
		{3, 20 * time.Second},
		{7, 320 * time.Second},
		{8, 10 * time.Minute},
		{50, 10 * time.Minute},
	}
	for _, tt := range tests {
		if got := p.Delay(tt.attempts); got != tt.want {
			t.Errorf("Delay(%d) = %v; want %v", tt.attempts, got, tt.want)
		}
	}
}

func TestRecordAttempt(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	p := RetryPolicy{Initial: time.Second, Max: time.Minute, MaxAttempts: 3}
	type attempt struct {
		status int
		cause  string
	}
	tests := []struct {
		name       string
		attempts   []attempt
		wantState  DeliveryState
		wantRetry  bool
		wantAfter  time.Duration
		wantStatus int
		wantError  bool
	}{
		{"2xx delivers", []attempt{{204, ""}}, DeliveryDelivered, false, 0, 204, false},
		{"5xx retries", []attempt{{500, ""}}, DeliveryPending, true, time.Second, 500, true},
		{"no answer retries", []attempt{{0, "connection refused"}}, DeliveryPending, true, time.Second, 0, true},
		{"redirect is a failure", []attempt{{302, ""}}, DeliveryPending, true, time.Second, 302, true},
		{"backoff doubles", []attempt{{500, ""}, {503, ""}}, DeliveryPending, true, 2 * time.Second, 503, true},
		{"success after failures", []attempt{{500, ""}, {0, "timeout"}, {200, ""}}, DeliveryDelivered, false, 0, 200, false},
		{"gives up after MaxAttempts", []attempt{{500, ""}, {500, ""}, {500, ""}}, DeliveryFailed, false, 0, 500, true},
	}
	for _, tt := range tests {
		d := NewDelivery("w1", "e1", "certflow.order.created", []byte(`{}`), now)
		var after time.Duration
		var retry bool
		for _, a := range tt.attempts {
			after, retry = d.RecordAttempt(a.status, a.cause, now, p)
		}
		if d.State != tt.wantState || retry != tt.wantRetry || after != tt.wantAfter || d.LastStatusCode != tt.wantStatus ||
			(d.LastError != "") != tt.wantError || d.Attempts != len(tt.attempts) {
			t.Errorf("%s: RecordAttempt = %v, %v, delivery %+v; want %v, %v, state %s, status %d, error %v",
				tt.name, after, retry, d, tt.wantAfter, tt.wantRetry, tt.wantState, tt.wantStatus, tt.wantError)
		}
		if retry && !d.NextAttemptTime.Equal(now.Add(after)) || !retry && !d.NextAttemptTime.IsZero() {
			t.Errorf("%s: NextAttemptTime = %v; want now+%v if retrying, else none", tt.name, d.NextAttemptTime, after)
		}
		if (d.State == DeliveryDelivered) != !d.DeliverTime.IsZero() {
			t.Errorf("%s: DeliverTime = %v in state %s", tt.name, d.DeliverTime, d.State)
		}
	}
}

func TestCheckConstructedAddress(t *testing.T) {
	tests := []struct {
		addr, domain string
		ok           bool
	}{
		{"admin@example.com", "example.com", true},
		{"Hostmaster@Example.com", "example.com", true},
		{"postmaster@example.com", "www.example.com", true},
		{"webmaster@example.com", "*.example.com", true},
		{"administrator@shop.example.com", "shop.example.com", true},
		{"alice@example.com", "example.com", false},
		{"admin@attacker.test", "example.com", false},
		{"admin@www.example.com", "example.com", false},
		{"admin@notexample.com", "example.com", false},
		{"admin@com", "example.com", false},
		{"not an address", "example.com", false},
		{"admin@example.com, eve@attacker.test", "example.com", false},
	}
	for _, tt := range tests {
		err := CheckConstructedAddress(tt.addr, tt.domain)
		if (err == nil) != tt.ok {
			t.Errorf("CheckConstructedAddress(%q, %q) = %v; want ok %v", tt.addr, tt.domain, err, tt.ok)
		}
	}
}

func TestWebhookList(t *testing.T) {
	var l WebhookList
	steps := []struct {
		name        string
		do          func() bool
		wantChanged bool
		want        []string
	}{
		{"add", func() bool { return l.Add("w1") }, true, []string{"w1"}},
		{"add two", func() bool { return l.Add("w2", "w3") }, true, []string{"w1", "w2", "w3"}},
		{"add again", func() bool { return l.Add("w2") }, false, []string{"w1", "w2", "w3"}},
		{"remove", func() bool { return l.Remove("w2") }, true, []string{"w1", "w3"}},
		{"remove again", func() bool { return l.Remove("w2") }, false, []string{"w1", "w3"}},
		{"remove unknown and listed", func() bool { return l.Remove("w9", "w1") }, true, []string{"w3"}},
	}
	for _, st := range steps {
		if changed := st.do(); changed != st.wantChanged || !slices.Equal(l.IDs, st.want) {
			t.Errorf("%s: changed %v, ids %v; want %v, %v", st.name, changed, l.IDs, st.wantChanged, st.want)
		}
	}
}

func TestClaim(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	lease := 30 * time.Second
	p := RetryPolicy{Initial: time.Second, Max: time.Minute, MaxAttempts: 3}
	fresh := func() Delivery { return NewDelivery("w1", "e1", "certflow.order.created", []byte(`{}`), now) }
	leasedByA := func() Delivery {
		d := fresh()
		d.Claim("a", now, lease)
		return d
	}
	tests := []struct {
		name        string
		d           func() Delivery
		owner       string
		at          time.Time
		wantClaimed bool
		wantRetryAt time.Time
	}{
		{"due", fresh, "a", now, true, time.Time{}},
		{"not due yet", fresh, "a", now.Add(-time.Second), false, now},
		{"leased by another", leasedByA, "b", now.Add(lease - time.Second), false, now.Add(lease)},
		{"leased by itself", leasedByA, "a", now.Add(time.Second), false, now.Add(lease)},
		{"lease ran out", leasedByA, "b", now.Add(lease), true, time.Time{}},
		{"delivered", func() Delivery { d := fresh(); d.RecordAttempt(200, "", now, p); return d }, "a", now, false, time.Time{}},
		{"failed", func() Delivery {
			d := fresh()
			for range p.MaxAttempts {
				d.RecordAttempt(500, "", now, p)
			}
			return d
		}, "a", now.Add(time.Hour), false, time.Time{}},
	}
	for _, tt := range tests {
		d := tt.d()
		claimed, retryAt := d.Claim(tt.owner, tt.at, lease)
		if claimed != tt.wantClaimed || !retryAt.Equal(tt.wantRetryAt) {
			t.Errorf("%s: Claim(%s) = %v, %v; want %v, %v", tt.name, tt.owner, claimed, retryAt, tt.wantClaimed, tt.wantRetryAt)
		}
		if claimed && (d.LeaseOwner != tt.owner || !d.LeaseUntil.Equal(tt.at.Add(lease)) || !d.NextAttemptTime.Equal(d.LeaseUntil) || !d.LeasedBy(tt.owner)) {
			t.Errorf("%s: claimed delivery %+v; want leased by %s until %v, due then", tt.name, d, tt.owner, tt.at.Add(lease))
		}
	}

	// Recording the attempt ends the lease; a lost lease is not the
	// holder's to record.
	d := leasedByA()
	d.Claim("b", now.Add(lease), lease)
	if d.LeasedBy("a") || !d.LeasedBy("b") {
		t.Errorf("after b took the run-out lease: LeasedBy(a) %v, LeasedBy(b) %v; want false, true", d.LeasedBy("a"), d.LeasedBy("b"))
	}
	d.RecordAttempt(500, "", now.Add(lease), p)
	if d.LeaseOwner != "" || !d.LeaseUntil.IsZero() || !d.NextAttemptTime.Equal(now.Add(lease+p.Initial)) {
		t.Errorf("after a failed attempt: %+v; want no lease, due after the backoff", d)
	}
}
