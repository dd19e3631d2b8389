package service

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestKeyLimiter(t *testing.T) {
	k := newKeyLimiter(Limits{KeyRate: 1, KeyBurst: 3})
	now := time.Unix(1_800_000_000, 0)
	for i := range 3 {
		if ok, _ := k.allow("key-a", now); !ok {
			t.Fatalf("request %d within the burst refused", i+1)
		}
	}
	ok, wait := k.allow("key-a", now)
	if ok || wait <= 0 || wait > time.Second {
		t.Fatalf("request over the burst = %v, wait %v; want refused with a wait of at most 1s", ok, wait)
	}
	if ok, _ := k.allow("key-b", now); !ok {
		t.Fatal("another key was refused for key-a's requests")
	}
	if ok, _ := k.allow("key-a", now.Add(time.Second)); !ok {
		t.Fatal("key-a refused a second later, after its rate refilled one token")
	}
	// A refused request does not spend a token: the key is not locked out
	// longer by retrying.
	for range 100 {
		k.allow("key-a", now.Add(time.Second))
	}
	if ok, _ := k.allow("key-a", now.Add(2*time.Second)); !ok {
		t.Fatal("refused retries used up key-a's future tokens")
	}
}

func TestOverload(t *testing.T) {
	release := make(chan struct{})
	var started sync.WaitGroup
	h := overload(Limits{MaxInFlight: 2, QueueWait: 50 * time.Millisecond}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			started.Done()
			<-release
		}
		if r.URL.Path == "/unavailable" {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	var once sync.Once
	defer once.Do(func() { close(release) }) // a failed check must not leave the slow requests hanging
	started.Add(2)
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() { defer wg.Done(); _, _ = http.Get(srv.URL + "/slow") }()
	}
	started.Wait()
	resp, err := http.Get(srv.URL + "/fast")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("third request while two are served = %d, Retry-After %q; want 503 with Retry-After 1", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	once.Do(func() { close(release) })
	wg.Wait()
	resp, err = http.Get(srv.URL + "/unavailable")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("a service's 503 = %d, Retry-After %q; want Retry-After added", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if resp, err := http.Get(srv.URL + "/fast"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("request after the load = %v %v; want 200", resp, err)
	}
}

// TestLimitBody: a body over MaxBodyBytes is 413, declared or streamed;
// one at the limit reaches the handler whole.
func TestLimitBody(t *testing.T) {
	var got int
	h := limitBody(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = len(b)
	}))
	tests := []struct {
		name    string
		size    int
		chunked bool
		want    int
	}{
		{"at the limit", MaxBodyBytes, false, http.StatusOK},
		{"declared over", MaxBodyBytes + 1, false, http.StatusRequestEntityTooLarge},
		{"streamed over", MaxBodyBytes + 1, true, http.StatusRequestEntityTooLarge},
		{"streamed under", 10, true, http.StatusOK},
	}
	for _, tt := range tests {
		got = -1
		r := httptest.NewRequest("POST", "/v1/orders", strings.NewReader(strings.Repeat(" ", tt.size)))
		if tt.chunked {
			r.ContentLength = -1
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tt.want {
			t.Errorf("%s: status %d %s; want %d", tt.name, w.Code, w.Body, tt.want)
		}
		if tt.want == http.StatusOK && got != tt.size {
			t.Errorf("%s: handler read %d bytes; want %d", tt.name, got, tt.size)
		}
		if tt.want != http.StatusOK && (got != -1 || !strings.Contains(w.Body.String(), "BODY_TOO_LARGE")) {
			t.Errorf("%s: handler called (%d) or body %s; want BODY_TOO_LARGE only", tt.name, got, w.Body)
		}
	}
}
