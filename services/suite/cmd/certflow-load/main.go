// Command certflow-load measures the DV path end to end on the embedded
// default: it starts the suite in a temporary folder, then N times (C at
// once) buys an instance, applies, submits, publishes the TXT record in the
// development DNS, asks for a check and waits for ISSUED, all through the
// JSON gateway (package loadtest). It reports applications per second, the
// time from submit to issued (p50, p99) and CPU per application.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"runtime/pprof"
	"time"

	"github.com/certflow/certflow/pkg/tally"
	"github.com/certflow/certflow/services/suite/loadtest"
)

func main() {
	n := flag.Int("n", 100, "applications to issue")
	c := flag.Int("concurrency", 1, "applications in flight at once")
	timeout := flag.Duration("timeout", 10*time.Minute, "give up after this long")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the whole suite here")
	budget := flag.Bool("budget", false, "print what one lifecycle costs: database commands, gRPC calls, events, CPU by component")
	flag.Parse()
	if *budget && *cpuprofile != "" {
		fmt.Fprintln(os.Stderr, "certflow-load: -budget and -cpuprofile both profile; pick one")
		os.Exit(2)
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "certflow-load:", err)
			os.Exit(1)
		}
		_ = pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	if err := run(*n, *c, *timeout, *budget); err != nil {
		fmt.Fprintln(os.Stderr, "certflow-load:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

func run(n, c int, timeout time.Duration, budget bool) error {
	dir, err := os.MkdirTemp("", "certflow-load-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var counters *tally.Counters
	if budget {
		counters = &tally.Counters{}
	}
	cf, err := loadtest.StartCertflow(ctx, dir, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})), counters)
	if err != nil {
		return err
	}
	defer cf.Close()
	before := counters.Snapshot()
	var prof loadtest.Profiler
	if budget {
		if err := prof.Start(); err != nil {
			return err
		}
	}
	r, err := loadtest.Run(ctx, "certflow", cf, n, c, loadtest.CPUMeter{}, os.Stderr)
	if err != nil {
		return err
	}
	if budget {
		// Events and the last writes of a lifecycle land just after the
		// issued event; let them settle before reading the counters.
		time.Sleep(time.Second)
		cpu, err := prof.Stop()
		if err != nil {
			return err
		}
		loadtest.WriteBudget(os.Stdout, len(r.Latencies), counters.Since(before), cpu)
	}
	fmt.Printf("concurrency %d: %d applications in %.1fs = %.1f applications/s; submit→issued p50 %v, p99 %v; CPU %.1f ms per application (the whole suite and this client)\n",
		c, len(r.Latencies), r.Elapsed.Seconds(), r.Rate(), r.P(0.50).Round(time.Millisecond), r.P(0.99).Round(time.Millisecond), 1000*r.CPUPerCert())
	return nil
}
