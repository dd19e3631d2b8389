// Package domain is the notification service's model: what was sent to whom
// because of which event, and the text of each message.
package domain

import (
	"time"
)

// State is where a notification's delivery is.
type State string

// Notification states. PENDING is internal: the record is written before
// the send so a redelivered event finds it; the API shows it as
// STATE_UNSPECIFIED.
const (
	Pending State = "PENDING"
	Sent    State = "SENT"
	Failed  State = "FAILED"
)

// Channel is how a notification is delivered.
type Channel string

// Channels.
const (
	Email Channel = "EMAIL"
	SMS   Channel = "SMS"
)

// MaxAttempts is how many times a send is tried (one per delivery of the
// event) before the notification is recorded as FAILED.
const MaxAttempts = 5

// Notification is one message sent because of a lifecycle event.
type Notification struct {
	Channel     Channel
	Recipient   string
	Subject     string
	Body        string
	EventType   string
	EventID     string
	Application string // applications/{id}
	State       State
	// Error is the last send error (the reason for FAILED).
	Error      string
	Attempts   int
	CreateTime time.Time
	SendTime   time.Time
}

// NewEmail returns a PENDING email notification of msg to recipient.
func NewEmail(recipient string, msg Message, eventType, eventID, application string, now time.Time) Notification {
	return Notification{
		Channel:     Email,
		Recipient:   recipient,
		Subject:     msg.Subject,
		Body:        msg.Body,
		EventType:   eventType,
		EventID:     eventID,
		Application: application,
		State:       Pending,
		CreateTime:  now.UTC(),
	}
}

// NewSMS returns a PENDING SMS notification of text to phone. An SMS has
// no subject.
func NewSMS(phone, text, eventType, eventID, application string, now time.Time) Notification {
	n := NewEmail(phone, Message{Body: text}, eventType, eventID, application, now)
	n.Channel = SMS
	return n
}

// Done reports whether the notification needs no more sending.
func (n *Notification) Done() bool { return n.State == Sent || n.State == Failed }

// MarkSent records a successful send.
func (n *Notification) MarkSent(now time.Time) {
	n.Attempts++
	n.State, n.Error, n.SendTime = Sent, "", now.UTC()
}

// MarkAttemptFailed records a failed send. A permanent failure (the server
// refused the message) or the MaxAttempts-th failure ends in FAILED;
// otherwise the notification stays PENDING for another try, and retry is
// true.
func (n *Notification) MarkAttemptFailed(cause string, permanent bool) (retry bool) {
	n.Attempts++
	n.Error = cause
	if permanent || n.Attempts >= MaxAttempts {
		n.State = Failed
		return false
	}
	return true
}

// Contact is whom to write to about an application: the applicant's email
// as last seen on one of the application's events.
type Contact struct {
	// Application is the application id (not its name).
	Application string
	Account     string
	Email       string
	// Phone is the applicant's mobile number, from the events that carry
	// it; empty when none has: expiry reminders then go by email only.
	Phone string
	// Seen is the time of the event the email came from; an older event
	// never overwrites a newer one.
	Seen time.Time
}
