// Command certflow-compare issues the same number of DV certificates
// through Pebble (an ACME client over http-01) and through certflow's JSON
// API (buy, apply, DNS check, issued event), alternating, at each
// concurrency, in one process on one machine, and prints for each run
// certificates/s, p50/p99, CPU seconds per certificate and the ratio.
// `make bench-compare` installs Pebble (pinned) and runs it.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/certflow/certflow/services/suite/loadtest"
	"github.com/certflow/certflow/services/suite/suite"
)

func main() {
	suite.TuneGC()
	pebble := flag.String("pebble", "pebble", "the pebble binary")
	n := flag.Int("n", 200, "certificates per run")
	levels := flag.String("concurrency", "1,16", "concurrency levels, comma-separated")
	strict := flag.Bool("strict", false, "exit 1 when a target is missed")
	timeout := flag.Duration("timeout", 30*time.Minute, "give up after this long")
	flag.Parse()
	ok, err := run(*pebble, *n, *levels, *timeout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "certflow-compare:", err)
		os.Exit(1)
	}
	if !ok && *strict {
		os.Exit(1)
	}
}

func run(pebblePath string, n int, levels string, timeout time.Duration) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var cs []int
	for _, f := range strings.Split(levels, ",") {
		c, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || c < 1 {
			return false, fmt.Errorf("-concurrency %q: want numbers ≥ 1", levels)
		}
		cs = append(cs, c)
	}
	dir, err := os.MkdirTemp("", "certflow-compare-")
	if err != nil {
		return false, err
	}
	defer os.RemoveAll(dir)
	_ = os.Mkdir(dir+"/pebble", 0o700)
	_ = os.Mkdir(dir+"/certflow", 0o700)

	fmt.Fprintln(os.Stderr, "starting Pebble and the certflow suite (each issues one warm-up certificate) ...")
	peb, err := loadtest.StartPebble(ctx, pebblePath, dir+"/pebble")
	if err != nil {
		return false, err
	}
	defer peb.Close()
	cf, err := loadtest.StartCertflow(ctx, dir+"/certflow", slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})), nil)
	if err != nil {
		return false, err
	}
	defer cf.Close()

	type pair struct{ pebble, certflow loadtest.Result }
	var results []pair
	for _, c := range cs {
		peb.NextRun()
		pr, err := loadtest.Run(ctx, "pebble", peb, n, c, loadtest.CPUMeter{PIDs: []int{peb.PID()}}, os.Stderr)
		if err != nil {
			return false, err
		}
		fmt.Println(pr)
		cf.NextRun()
		cr, err := loadtest.Run(ctx, "certflow", cf, n, c, loadtest.CPUMeter{}, os.Stderr)
		if err != nil {
			return false, err
		}
		fmt.Println(cr)
		results = append(results, pair{pr, cr})
	}

	fmt.Printf("\n%-5s %12s %12s %7s %14s %14s %16s %16s\n", "c", "pebble/s", "certflow/s", "ratio", "pebble p99", "certflow p99", "pebble CPU/cert", "certflow CPU/cert")
	ok := true
	for _, r := range results {
		ratio := r.certflow.Rate() / r.pebble.Rate()
		fmt.Printf("%-5d %12.1f %12.1f %7.2f %14v %14v %15.4fs %15.4fs\n", r.pebble.Concurrency, r.pebble.Rate(), r.certflow.Rate(), ratio,
			r.pebble.P(0.99).Round(100*time.Microsecond), r.certflow.P(0.99).Round(100*time.Microsecond), r.pebble.CPUPerCert(), r.certflow.CPUPerCert())
	}
	// Issue 7's targets, checked on this run.
	last := results[len(results)-1]
	check := func(what string, met bool) {
		mark := "met"
		if !met {
			mark, ok = "NOT met", false
		}
		fmt.Printf("target %-58s %s\n", what+":", mark)
	}
	check(fmt.Sprintf("certflow ≥ half of Pebble's rate at c=%d", last.certflow.Concurrency), last.certflow.Rate() >= last.pebble.Rate()/2)
	check(fmt.Sprintf("certflow p99 submit→issued < 500ms at c=%d", last.certflow.Concurrency), last.certflow.P(0.99) < 500*time.Millisecond)
	if len(results) > 1 {
		check(fmt.Sprintf("certflow at c=%d not slower than at c=%d", last.certflow.Concurrency, results[0].certflow.Concurrency), last.certflow.Rate() >= results[0].certflow.Rate())
	}
	fmt.Println("\nCPU: Pebble's is its process plus this process (the ACME client, and the idle certflow suite);")
	fmt.Println("certflow's is this process: the whole suite (gateway, services, FerretDB, NATS) and the load client.")
	return ok, nil
}
