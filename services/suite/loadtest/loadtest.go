// Package loadtest drives certificate issuance at a given concurrency and
// measures it the same way whatever issues the certificates: certflow's
// JSON API (Certflow) or an ACME server such as Pebble (ACME). The
// commands certflow-load and certflow-compare are built on it.
package loadtest

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Issuer issues one certificate for the i-th name of a run and returns the
// latency that counts (for certflow submit→issued; for ACME new order →
// certificate).
type Issuer interface {
	Issue(ctx context.Context, i int) (time.Duration, error)
}

// Result is one measured run.
type Result struct {
	Name        string
	N           int
	Concurrency int
	Elapsed     time.Duration
	Latencies   []time.Duration // sorted
	// CPU is the CPU time spent while the run went, by every process
	// that takes part (see CPUMeter).
	CPU time.Duration
}

// Rate is certificates per second.
func (r Result) Rate() float64 { return float64(len(r.Latencies)) / r.Elapsed.Seconds() }

// P is the p-th quantile latency (0 ≤ p ≤ 1).
func (r Result) P(p float64) time.Duration {
	if len(r.Latencies) == 0 {
		return 0
	}
	return r.Latencies[int(p*float64(len(r.Latencies)-1))]
}

// CPUPerCert is CPU seconds per certificate.
func (r Result) CPUPerCert() float64 {
	if len(r.Latencies) == 0 {
		return 0
	}
	return r.CPU.Seconds() / float64(len(r.Latencies))
}

func (r Result) String() string {
	return fmt.Sprintf("%-9s c=%-3d %4d certs in %6.1fs = %7.1f certs/s  p50 %8v  p99 %8v  CPU %.4f s/cert",
		r.Name, r.Concurrency, len(r.Latencies), r.Elapsed.Seconds(), r.Rate(),
		r.P(0.50).Round(100*time.Microsecond), r.P(0.99).Round(100*time.Microsecond), r.CPUPerCert())
}

// CPUMeter reads the CPU time used so far by this process and by the
// given other processes (a server run as a child).
type CPUMeter struct{ PIDs []int }

// Now returns user+system CPU time so far.
func (m CPUMeter) Now() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	total := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	for _, pid := range m.PIDs {
		total += procCPU(pid)
	}
	return total
}

// procCPU reads utime+stime of pid from /proc (clock ticks of 10 ms on
// Linux: USER_HZ is 100).
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// Run issues n certificates, c at once, reporting progress to w every
// tenth of the run.
func Run(ctx context.Context, name string, iss Issuer, n, c int, cpu CPUMeter, w io.Writer) (Result, error) {
	var (
		mu        sync.Mutex
		latencies []time.Duration
		next      atomic.Int64
		firstErr  error
		wg        sync.WaitGroup
	)
	cpu0, start := cpu.Now(), time.Now()
	for range c {
		wg.Add(1)
		go pprof.Do(ctx, pprof.Labels("component", "load client"), func(ctx context.Context) {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(n) || ctx.Err() != nil {
					return
				}
				d, err := iss.Issue(ctx, int(i))
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = fmt.Errorf("%s certificate %d: %w", name, i, err)
				}
				if err == nil {
					latencies = append(latencies, d)
				}
				done := len(latencies)
				mu.Unlock()
				if w != nil && err == nil && done%max(n/10, 1) == 0 {
					fmt.Fprintf(w, "  %s c=%d: %d/%d issued\n", name, c, done, n)
				}
			}
		})
	}
	wg.Wait()
	r := Result{Name: name, N: n, Concurrency: c, Elapsed: time.Since(start), CPU: cpu.Now() - cpu0}
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	r.Latencies = latencies
	return r, firstErr
}
