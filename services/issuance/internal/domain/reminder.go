package domain

import (
	"slices"
	"time"
)

// DefaultReminders are the expiry reminder offsets before notAfter: 30, 7
// and 1 days.
var DefaultReminders = []time.Duration{30 * 24 * time.Hour, 7 * 24 * time.Hour, 24 * time.Hour}

// NextReminder is the next expiry reminder of c under offsets: when it is
// due (NotAfter minus the offset) and its offset. None is left (ok false)
// for a replaced or revoked certificate, or once every offset is done. An
// offset whose time is not after NotBefore was past at issuance (a
// certificate shorter than it) and is never due.
func (c *Certificate) NextReminder(offsets []time.Duration) (due time.Time, offset time.Duration, ok bool) {
	if c.State == Revoked || c.ReplacedBy != "" {
		return time.Time{}, 0, false
	}
	for _, off := range offsets {
		at := c.NotAfter.Add(-off)
		if off <= 0 || !at.After(c.NotBefore) || slices.Contains(c.Reminded, off) {
			continue
		}
		if !ok || at.Before(due) {
			due, offset, ok = at, off, true
		}
	}
	return due, offset, ok
}

// Schedule sets ReminderDue from NextReminder.
func (c *Certificate) Schedule(offsets []time.Duration) {
	c.ReminderDue, _, _ = c.NextReminder(offsets)
}

// TakeReminder marks done every reminder due by now and returns the one to
// send: the smallest offset among them, so that a CA that was down over
// two reminder times sends the more urgent one, not both. Nothing is sent
// (ok false) if none is due, or at or after NotAfter (expired: the
// offsets are marked done all the same). ReminderDue moves to the next.
func (c *Certificate) TakeReminder(offsets []time.Duration, now time.Time) (offset time.Duration, ok bool) {
	for {
		due, off, more := c.NextReminder(offsets)
		if !more || due.After(now) {
			break
		}
		c.Reminded = append(c.Reminded, off)
		offset, ok = off, true
	}
	c.Schedule(offsets)
	if ok && !now.Before(c.NotAfter) {
		return 0, false
	}
	return offset, ok
}

// MarkReplaced records the certificate issued in c's place; no reminder
// of c is due after it.
func (c *Certificate) MarkReplaced(by string) {
	c.ReplacedBy = by
	c.ReminderDue = time.Time{}
}

// DaysLeft is the whole days from now to NotAfter, rounded up.
func (c *Certificate) DaysLeft(now time.Time) int {
	left := c.NotAfter.Sub(now)
	if left <= 0 {
		return 0
	}
	return int((left + 24*time.Hour - 1) / (24 * time.Hour))
}
