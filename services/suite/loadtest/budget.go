package loadtest

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"sort"
	"strings"
	"time"

	"github.com/google/pprof/profile"

	"github.com/certflow/certflow/pkg/tally"
)

// Profiler records a CPU profile of this process in memory.
type Profiler struct{ buf bytes.Buffer }

// Start begins profiling.
func (p *Profiler) Start() error { return pprof.StartCPUProfile(&p.buf) }

// Stop ends profiling and returns CPU time by the pprof label
// "component" (the suite labels each component's goroutines; samples
// without a label are the Go runtime: GC, the scheduler, timers).
func (p *Profiler) Stop() (map[string]time.Duration, error) {
	pprof.StopCPUProfile()
	prof, err := profile.Parse(&p.buf)
	if err != nil {
		return nil, err
	}
	idx := -1
	for i, st := range prof.SampleType {
		if st.Type == "cpu" {
			idx = i
		}
	}
	if idx < 0 {
		return nil, fmt.Errorf("profile has no cpu samples")
	}
	out := map[string]time.Duration{}
	for _, s := range prof.Sample {
		c := "runtime (GC, scheduler; unlabelled)"
		if v := s.Label["component"]; len(v) > 0 {
			c = v[0]
		}
		out[c] += time.Duration(s.Value[idx])
	}
	return out, nil
}

// WriteBudget prints, per certificate, the counters' growth (database
// commands by service, gRPC calls by method, events by subject) and CPU by
// component.
func WriteBudget(w io.Writer, n int, counts []tally.Count, cpu map[string]time.Duration) {
	per := func(v int64) float64 { return float64(v) / float64(n) }
	groups := map[string][]tally.Count{}
	totals := map[string]int64{}
	for _, c := range counts {
		kind, _, _ := strings.Cut(c.Key, " ")
		groups[kind] = append(groups[kind], c)
		totals[kind] += c.N
	}
	for _, kind := range []string{"db", "grpc", "event"} {
		title := map[string]string{"db": "database commands", "grpc": "gRPC calls served", "event": "events published"}[kind]
		fmt.Fprintf(w, "%s per lifecycle: %.1f\n", title, per(totals[kind]))
		for _, c := range groups[kind] {
			fmt.Fprintf(w, "  %-70s %6.2f\n", strings.TrimPrefix(c.Key, kind+" "), per(c.N))
		}
	}
	var names []string
	var total time.Duration
	for k, v := range cpu {
		names = append(names, k)
		total += v
	}
	sort.Slice(names, func(i, j int) bool { return cpu[names[i]] > cpu[names[j]] })
	fmt.Fprintf(w, "CPU per lifecycle: %.1f ms\n", float64(total.Microseconds())/1000/float64(n))
	for _, k := range names {
		fmt.Fprintf(w, "  %-40s %7.1f ms  %5.1f%%\n", k, float64(cpu[k].Microseconds())/1000/float64(n), 100*float64(cpu[k])/float64(total))
	}
}

// WriteTo ends profiling and writes the profile to path (for go tool pprof).
func (p *Profiler) WriteTo(path string) error {
	pprof.StopCPUProfile()
	return os.WriteFile(path, p.buf.Bytes(), 0o644)
}
