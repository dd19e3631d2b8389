package loadtest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"time"
)

// ReadResult is one measured read benchmark.
type ReadResult struct {
	Requests, Errors int
	Elapsed          time.Duration
	Latencies        []time.Duration // sorted
	CPU              time.Duration
	FirstError       string
}

// Rate is requests per second.
func (r ReadResult) Rate() float64 { return float64(r.Requests) / r.Elapsed.Seconds() }

// P is the p-th quantile latency.
func (r ReadResult) P(p float64) time.Duration {
	if len(r.Latencies) == 0 {
		return 0
	}
	return r.Latencies[int(p*float64(len(r.Latencies)-1))]
}

func (r ReadResult) String() string {
	return fmt.Sprintf("%d requests in %.1fs = %.0f requests/s, p50 %v, p99 %v, %d errors, CPU %.0f µs per request",
		r.Requests, r.Elapsed.Seconds(), r.Rate(), r.P(0.50).Round(10*time.Microsecond), r.P(0.99).Round(10*time.Microsecond),
		r.Errors, float64(r.CPU.Microseconds())/float64(max(r.Requests, 1)))
}

// Reads GETs path through the gateway from conns keep-alive connections
// (one client each, so each holds its own connection, as wrk's do) for d,
// with the development key, and reports requests/s and latency. A request
// counts when it answers 200 with its whole body read.
func (c *Certflow) Reads(ctx context.Context, path string, conns int, d time.Duration, cpu CPUMeter) ReadResult {
	url := c.s.GatewayURL + path
	auth := "Bearer " + c.s.APIKey
	var (
		mu  sync.Mutex
		all ReadResult
		wg  sync.WaitGroup
	)
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	cpu0, start := cpu.Now(), time.Now()
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1, MaxConnsPerHost: 1}}
			defer client.CloseIdleConnections()
			req, _ := http.NewRequest("GET", url, nil)
			req.Header.Set("Authorization", auth)
			var lat []time.Duration
			errs, first := 0, ""
			for ctx.Err() == nil {
				t0 := time.Now()
				resp, err := client.Do(req)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != 200 {
						err = fmt.Errorf("GET %s: %s", path, resp.Status)
					}
				}
				if err != nil {
					errs++
					if first == "" {
						first = err.Error()
					}
					continue
				}
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			all.Latencies = append(all.Latencies, lat...)
			all.Errors += errs
			if all.FirstError == "" {
				all.FirstError = first
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	all.Elapsed, all.CPU = time.Since(start), cpu.Now()-cpu0
	all.Requests = len(all.Latencies)
	sort.Slice(all.Latencies, func(i, j int) bool { return all.Latencies[i] < all.Latencies[j] })
	return all
}
