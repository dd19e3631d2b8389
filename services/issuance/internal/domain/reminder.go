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

// Plan is the work scheduled on every certificate: expiry reminders at
// offsets before notAfter, a renewal at a fraction of the lifetime, and the
// expiry itself at notAfter.
type Plan struct {
	Reminders []time.Duration
	// RenewAt is the fraction of the lifetime (notBefore to notAfter) after
	// which the certificate is due for renewal; 0 asks for none.
	RenewAt float64
	// Expiry asks for certflow.certificate.expired at notAfter.
	Expiry bool
}

// DefaultRenewAt is the default renewal point: two thirds of the lifetime,
// as ACME clients renew, leaving a third for a customer to act when a
// validation has to be done again.
const DefaultRenewAt = 2.0 / 3

// RenewalTime is when c is due for renewal under the fraction f.
func (c *Certificate) RenewalTime(f float64) time.Time {
	return c.NotBefore.Add(time.Duration(f * float64(c.NotAfter.Sub(c.NotBefore))))
}

// renewalDue says whether a renewal of c is still to be asked for: a
// revoked or replaced certificate needs none.
func (c *Certificate) renewalDue(p Plan) bool {
	return p.RenewAt > 0 && !c.RenewalDone && c.State != Revoked && c.ReplacedBy == ""
}

// expiryDue says whether the expiry of c is still to be announced; a
// revoked certificate ended with its revocation.
func (c *Certificate) expiryDue(p Plan) bool {
	return p.Expiry && !c.ExpiryDone && c.State != Revoked
}

// NextDue is when the next work of p on c is due (ok false: none left).
func (c *Certificate) NextDue(p Plan) (due time.Time, ok bool) {
	due, _, ok = c.NextReminder(p.Reminders)
	consider := func(at time.Time) {
		if !ok || at.Before(due) {
			due, ok = at, true
		}
	}
	if c.renewalDue(p) {
		consider(c.RenewalTime(p.RenewAt))
	}
	if c.expiryDue(p) {
		consider(c.NotAfter)
	}
	return due, ok
}

// Schedule sets ReminderDue, the indexed time of the next work, from
// NextDue.
func (c *Certificate) Schedule(p Plan) {
	c.ReminderDue, _ = c.NextDue(p)
}

// Work is what Take found due on a certificate.
type Work struct {
	// Remind: send the expiry reminder of Offset.
	Remind bool
	Offset time.Duration
	// Renew: ask the application service for the renewal.
	Renew bool
	// Expired: announce that the certificate has expired.
	Expired bool
}

// Any says whether there is anything to send.
func (w Work) Any() bool { return w.Remind || w.Renew || w.Expired }

// Take marks done everything of p due by now on c and returns it, and
// moves ReminderDue to the next. A renewal is asked for even after
// notAfter (a CA that was down must still renew).
func (c *Certificate) Take(p Plan, now time.Time) Work {
	var w Work
	w.Offset, w.Remind = c.TakeReminder(p.Reminders, now)
	if c.renewalDue(p) && !c.RenewalTime(p.RenewAt).After(now) {
		c.RenewalDone, w.Renew = true, true
	}
	if c.expiryDue(p) && !c.NotAfter.After(now) {
		c.ExpiryDone, w.Expired = true, true
	}
	c.Schedule(p)
	return w
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
	c.Schedule(Plan{Reminders: offsets})
	if ok && !now.Before(c.NotAfter) {
		return 0, false
	}
	return offset, ok
}

// MarkReplaced records the certificate issued in c's place: no reminder
// or renewal of c is due after it, only its expiry under p.
func (c *Certificate) MarkReplaced(by string, p Plan) {
	c.ReplacedBy = by
	c.Schedule(p)
}

// DaysLeft is the whole days from now to NotAfter, rounded up.
func (c *Certificate) DaysLeft(now time.Time) int {
	left := c.NotAfter.Sub(now)
	if left <= 0 {
		return 0
	}
	return int((left + 24*time.Hour - 1) / (24 * time.Hour))
}
