package suite_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gateway "github.com/certflow/certflow/services/gateway/service"
	"github.com/certflow/certflow/services/suite/suite"
)

// TestRateLimitsAndOverload: 1,000 concurrent JSON clients for a bounded
// time against the gateway on loopback. A key sending more than its rate
// gets 429, more requests than the gateway serves at once get 503, both
// with Retry-After; nothing else fails; memory stays bounded; and every
// application accepted meanwhile (by clients that honour Retry-After)
// reaches ISSUED.
func TestRateLimitsAndOverload(t *testing.T) {
	const slots = 16
	const (
		clients   = 1000
		appliers  = 20
		loadFor   = 8 * time.Second
		rssBudget = 1536 << 20
	)
	e := startWith(t, func(o *suite.Options) {
		// Few slots and a short wait: the suite got fast enough that 64
		// slots and 100 ms drained in time and no request was shed.
		o.GatewayLimits = gateway.Limits{KeyRate: 200, KeyBurst: 100, MaxInFlight: slots, QueueWait: 20 * time.Millisecond}
	})
	key := e.s.APIKey
	inst := e.buy(t, key, "products/dv-single-1y", 1)
	target := str(e.issueDV(t, inst[0], "www.load.test"), "application")
	rssBefore := peakRSS(t)

	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: 0}}
	var (
		mu        sync.Mutex
		codes     = map[int]int{}
		noRetry   atomic.Int64
		others    []string
		accepted  []string
		requests  atomic.Int64
		transport atomic.Int64
	)
	send := func(k, method, path string, body any) (int, obj, time.Duration) {
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(method, e.s.GatewayURL+path, rd)
		req.Header.Set("Authorization", "Bearer "+k)
		req.Header.Set("Content-Type", "application/json")
		requests.Add(1)
		resp, err := client.Do(req)
		if err != nil {
			transport.Add(1)
			return 0, nil, 100 * time.Millisecond
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		var out obj
		_ = json.Unmarshal(data, &out)
		var wait time.Duration
		if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
			s, err := strconv.Atoi(resp.Header.Get("Retry-After"))
			if err != nil || s < 1 {
				noRetry.Add(1)
			}
			wait = time.Duration(s) * time.Second
		}
		mu.Lock()
		codes[resp.StatusCode]++
		if resp.StatusCode >= 500 && resp.StatusCode != http.StatusServiceUnavailable || resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests {
			others = append(others, fmt.Sprintf("%s %s = %d %s", method, path, resp.StatusCode, data))
		}
		mu.Unlock()
		return resp.StatusCode, out, wait
	}
	// retry sends until the answer is neither 429 nor 503, waiting as told.
	retry := func(ctx context.Context, k, method, path string, body any) (int, obj) {
		for {
			code, out, wait := send(k, method, path, body)
			if code != 0 && code != http.StatusTooManyRequests && code != http.StatusServiceUnavailable {
				return code, out
			}
			select {
			case <-ctx.Done():
				return code, out
			case <-time.After(max(wait, 50*time.Millisecond)):
			}
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), loadFor)
	defer cancel()
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i < appliers {
				// A customer with its own key buys, applies and submits,
				// honouring Retry-After.
				k := otherKey
				code, order := retry(ctx, k, "POST", fmt.Sprintf("/v1/orders?request_id=load-%d", i), obj{"product": "products/dv-single-1y", "quantity": 1})
				if code != 200 {
					return
				}
				in := asList(order["instances"])[0].(string)
				code, app := retry(ctx, k, "POST", fmt.Sprintf("/v1/applications?request_id=load-%d", i), obj{"instance": in, "domains": []string{fmt.Sprintf("www.load%d.test", i)}, "applicant": applicant()})
				if code != 200 {
					return
				}
				if code, _ := retry(ctx, k, "POST", "/v1/"+str(app, "name")+":submit", obj{}); code == 200 {
					mu.Lock()
					accepted = append(accepted, str(app, "name"))
					mu.Unlock()
				}
				return
			}
			// Everyone else reads as fast as it can with one key.
			for ctx.Err() == nil {
				send(key, "GET", "/v1/"+target, nil)
			}
		}()
	}
	wg.Wait()
	rssAfter := peakRSS(t)

	mu.Lock()
	summary := fmt.Sprint(sortedCodes(codes))
	if len(others) > 0 {
		t.Errorf("%d answers other than 200, 429 and 503, for example: %s", len(others), strings.Join(others[:min(5, len(others))], "\n"))
	}
	mu.Unlock()
	t.Logf("%d clients for %v: %d requests, answers %s, %d transport errors; peak RSS %d MiB before, %d MiB after",
		clients, loadFor, requests.Load(), summary, transport.Load(), rssBefore>>20, rssAfter>>20)
	if codes[http.StatusTooManyRequests] == 0 {
		t.Errorf("no 429 although one key sent far more than its rate: %s", summary)
	}
	if codes[http.StatusServiceUnavailable] == 0 {
		t.Errorf("no 503 although %d clients shared %d slots: %s", clients, slots, summary)
	}
	if n := noRetry.Load(); n > 0 {
		t.Errorf("%d refusals without a Retry-After", n)
	}
	if rssAfter > rssBudget {
		t.Errorf("peak RSS %d MiB; want under %d MiB", rssAfter>>20, rssBudget>>20)
	}
	if len(accepted) == 0 {
		t.Fatal("no application was accepted under load")
	}
	// Every accepted application completes once its record is published.
	for _, a := range accepted {
		var app obj
		if code := e.call(t, otherKey, "GET", "/v1/"+a, nil, &app); code != 200 {
			t.Fatalf("GET accepted %s = %d", a, code)
		}
		for _, c := range asList(app["challenges"]) {
			ch := c.(obj)
			e.dns.SetTXT(str(ch, "dns_record_name"), str(ch, "dns_record_value"))
			e.call(t, otherKey, "POST", "/v1/"+str(ch, "name")+":check", obj{}, nil)
		}
	}
	for _, a := range accepted {
		e.waitState(t, otherKey, a, "ISSUED")
	}
	t.Logf("%d applications accepted under load, all ISSUED", len(accepted))
}

// peakRSS is this process's peak resident set (VmHWM): the suite runs in
// it, with the clients.
func peakRSS(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

func sortedCodes(m map[int]int) []string {
	var out []string
	for k, v := range m {
		out = append(out, fmt.Sprintf("%d×%d", k, v))
	}
	sort.Strings(out)
	return out
}
