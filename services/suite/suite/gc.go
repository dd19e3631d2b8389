package suite

import (
	"os"
	"runtime/debug"
)

// GCPercent is the garbage collector's target that TuneGC sets for the
// one-process suite.
const GCPercent = 400

// TuneGC sets the garbage collector's target to GCPercent unless the
// environment sets GOGC. The embedded default runs every component in one
// process whose live heap is small (tens of MB) while FerretDB allocates
// for every document it decodes, so at Go's default of 100 the collector
// runs very often: on GET /v1/applications/{id} 400 cut CPU per request by
// about a quarter (README, Benchmarks). The heap may grow to about five
// times the live data before a collection. Commands call it; a library
// should not change its process's collector.
func TuneGC() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(GCPercent)
	}
}
