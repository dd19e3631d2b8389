package domain

import (
	"slices"
	"testing"
	"time"
)

const day = 24 * time.Hour

func TestNextReminder(t *testing.T) {
	nb := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	long := Certificate{NotBefore: nb, NotAfter: nb.Add(199 * day)}
	tests := []struct {
		name    string
		cert    Certificate
		offsets []time.Duration
		want    time.Duration // the offset; 0: none due
	}{
		{"fresh 199-day certificate: 30 days first", long, DefaultReminders, 30 * day},
		{"30 days sent: 7 next", with(long, func(c *Certificate) { c.Reminded = []time.Duration{30 * day} }), DefaultReminders, 7 * day},
		{"30 and 7 sent: 1 next", with(long, func(c *Certificate) { c.Reminded = []time.Duration{30 * day, 7 * day} }), DefaultReminders, day},
		{"all sent", with(long, func(c *Certificate) { c.Reminded = DefaultReminders }), DefaultReminders, 0},
		{"10-day certificate: 30 days was past at issuance", Certificate{NotBefore: nb, NotAfter: nb.Add(10 * day)}, DefaultReminders, 7 * day},
		{"exactly 30 days long: 30 days is at issuance, not after it", Certificate{NotBefore: nb, NotAfter: nb.Add(30 * day)}, DefaultReminders, 7 * day},
		{"12-hour certificate: every offset past at issuance", Certificate{NotBefore: nb, NotAfter: nb.Add(12 * time.Hour)}, DefaultReminders, 0},
		{"replaced", with(long, func(c *Certificate) { c.MarkReplaced("certificates/new", Plan{Reminders: DefaultReminders}) }), DefaultReminders, 0},
		{"revoked", with(long, func(c *Certificate) { c.State = Revoked }), DefaultReminders, 0},
		{"offsets in any order", long, []time.Duration{day, 14 * day}, 14 * day},
		{"no offsets configured", long, nil, 0},
	}
	for _, tt := range tests {
		due, off, ok := tt.cert.NextReminder(tt.offsets)
		if tt.want == 0 {
			if ok {
				t.Errorf("%s: NextReminder = %v (%v); want none", tt.name, due, off)
			}
			continue
		}
		if !ok || off != tt.want || !due.Equal(tt.cert.NotAfter.Add(-tt.want)) {
			t.Errorf("%s: NextReminder = %v, %v, %v; want %v at %v", tt.name, due, off, ok, tt.want, tt.cert.NotAfter.Add(-tt.want))
		}
	}
}

func TestTakeReminder(t *testing.T) {
	nb := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	na := nb.Add(100 * day)
	tests := []struct {
		name       string
		reminded   []time.Duration
		now        time.Time
		want       time.Duration // 0: nothing to send
		wantMarked []time.Duration
		wantNext   time.Time
	}{
		{"before the first", nil, na.Add(-31 * day), 0, nil, na.Add(-30 * day)},
		{"at 30 days", nil, na.Add(-30 * day), 30 * day, []time.Duration{30 * day}, na.Add(-7 * day)},
		{"at 30 days again (sent)", []time.Duration{30 * day}, na.Add(-29 * day), 0, []time.Duration{30 * day}, na.Add(-7 * day)},
		{"down over 30 and 7: only 7 goes out", nil, na.Add(-6 * day), 7 * day, []time.Duration{30 * day, 7 * day}, na.Add(-day)},
		{"last one", []time.Duration{30 * day, 7 * day}, na.Add(-time.Hour), day, []time.Duration{30 * day, 7 * day, day}, time.Time{}},
		{"expired: nothing sent, all done", nil, na, 0, []time.Duration{30 * day, 7 * day, day}, time.Time{}},
	}
	for _, tt := range tests {
		c := Certificate{NotBefore: nb, NotAfter: na, Reminded: slices.Clone(tt.reminded)}
		off, ok := c.TakeReminder(DefaultReminders, tt.now)
		if ok != (tt.want != 0) || off != tt.want {
			t.Errorf("%s: TakeReminder = %v, %v; want %v", tt.name, off, ok, tt.want)
		}
		if !slices.Equal(c.Reminded, tt.wantMarked) || !c.ReminderDue.Equal(tt.wantNext) {
			t.Errorf("%s: after TakeReminder reminded %v, next %v; want %v, %v", tt.name, c.Reminded, c.ReminderDue, tt.wantMarked, tt.wantNext)
		}
	}
}

func TestDaysLeft(t *testing.T) {
	na := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	c := Certificate{NotAfter: na}
	for _, tt := range []struct {
		now  time.Time
		want int
	}{
		{na.Add(-30 * day), 30},
		{na.Add(-30*day + time.Second), 30},
		{na.Add(-day), 1},
		{na.Add(-time.Minute), 1},
		{na, 0},
		{na.Add(day), 0},
	} {
		if got := c.DaysLeft(tt.now); got != tt.want {
			t.Errorf("DaysLeft(%v before notAfter) = %d; want %d", na.Sub(tt.now), got, tt.want)
		}
	}
}

func with(c Certificate, f func(*Certificate)) Certificate { f(&c); return c }
