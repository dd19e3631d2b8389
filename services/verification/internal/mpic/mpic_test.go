package mpic

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/certflow/certflow/pkg/certpolicy"
	"github.com/certflow/certflow/services/verification/internal/domain"
)

func TestDecide(t *testing.T) {
	ok := func(name, rir string) domain.PerspectiveResult {
		return domain.PerspectiveResult{Perspective: name, RIR: rir, Corroborates: true}
	}
	no := func(name, why string) domain.PerspectiveResult {
		return domain.PerspectiveResult{Perspective: name, Detail: why}
	}
	five := certpolicy.PerspectiveQuorum(time.Date(2026, time.December, 15, 0, 0, 0, 0, time.UTC))
	four := certpolicy.PerspectiveQuorum(time.Date(2026, time.December, 2, 0, 0, 0, 0, time.UTC))
	tests := []struct {
		name    string
		q       certpolicy.Quorum
		results []domain.PerspectiveResult
		want    string // "" = corroborated; else a part of the cause
	}{
		{"all five agree", five, []domain.PerspectiveResult{ok("a", "ARIN"), ok("b", "RIPE"), ok("c", "APNIC"), ok("d", "LACNIC"), ok("e", "AFRINIC")}, ""},
		{"one disagrees", five, []domain.PerspectiveResult{ok("a", "ARIN"), no("b", "no TXT"), ok("c", "APNIC"), ok("d", "LACNIC"), ok("e", "AFRINIC")}, ""},
		{"one down", five, []domain.PerspectiveResult{ok("a", "ARIN"), ok("b", "RIPE"), no("c", "unreachable: connection refused"), ok("d", "LACNIC"), ok("e", "AFRINIC")}, ""},
		{"two disagree", five, []domain.PerspectiveResult{ok("a", "ARIN"), no("b", "no TXT"), ok("c", "APNIC"), no("d", "wrong value"), ok("e", "AFRINIC")},
			"2 of 5 remote perspectives disagree, at most 1 may: b (no TXT); d (wrong value)"},
		{"one disagrees, one down", five, []domain.PerspectiveResult{ok("a", "ARIN"), no("b", "no TXT"), no("c", "unreachable: timeout"), ok("d", "LACNIC"), ok("e", "AFRINIC")},
			"b (no TXT); c (unreachable: timeout)"},
		{"too few for 2026-12-15", five, []domain.PerspectiveResult{ok("a", "ARIN"), ok("b", "RIPE"), ok("c", "APNIC"), ok("d", "LACNIC")},
			"4 remote perspective(s) configured, the Baseline Requirements require 5 from 2026-12-15"},
		{"four enough before 2026-12-15", four, []domain.PerspectiveResult{ok("a", "ARIN"), ok("b", "RIPE"), ok("c", "APNIC"), no("d", "x")}, ""},
		{"one RIR only", five, []domain.PerspectiveResult{ok("a", "ARIN"), ok("b", "ARIN"), ok("c", "ARIN"), ok("d", "ARIN"), no("e", "x")},
			"the corroborating perspectives are in 1 RIR(s) (ARIN), at least 2"},
		{"two RIRs suffice", five, []domain.PerspectiveResult{ok("a", "ARIN"), ok("b", "ARIN"), ok("c", "RIPE"), ok("d", "ARIN"), ok("e", "ARIN")}, ""},
		{"none required", certpolicy.PerspectiveQuorum(time.Date(2025, time.January, 1, 0, 0, 0, 0, time.UTC)), nil, ""},
	}
	for _, tt := range tests {
		err := Decide(tt.q, tt.results, "domain control of x.test")
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: Decide = %v; want corroborated", tt.name, err)
		case tt.want != "" && (!errors.Is(err, ErrNotCorroborated) || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: Decide = %v; want ErrNotCorroborated containing %q", tt.name, err, tt.want)
		}
	}
}
