// Package events publishes and consumes certflow's lifecycle events on NATS
// JetStream as CloudEvents in binary mode: ce-* headers, protobuf data, and
// Nats-Msg-Id equal to ce-id so JetStream drops duplicates.
package events

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Stream is the JetStream stream holding every lifecycle event.
const Stream = "CERTFLOW"

// StreamSubjects is what the stream captures.
const StreamSubjects = "certflow.>"

// Subjects, one per event type; ce-type is the same string.
const (
	OrderCreated                = "certflow.order.created"
	InstanceBound               = "certflow.instance.bound"
	InstanceReleased            = "certflow.instance.released"
	InstanceIssued              = "certflow.instance.issued"
	InstanceRevoked             = "certflow.instance.revoked"
	InstanceExpired             = "certflow.instance.expired"
	ApplicationCreated          = "certflow.application.created"
	ApplicationSubmitted        = "certflow.application.submitted"
	ApplicationStateChanged     = "certflow.application.state_changed"
	ApplicationFailed           = "certflow.application.failed"
	ApplicationWithdrawn        = "certflow.application.withdrawn"
	ApplicationReissueRequested = "certflow.application.reissue_requested"
	ApplicationRenewalStarted   = "certflow.application.renewal_started"
	ApplicationIssued           = "certflow.application.issued"
	DomainVerified              = "certflow.domain.verified"
	DomainFailed                = "certflow.domain.failed"
	ChallengeCancelled          = "certflow.domain.cancelled"
	DomainEmailChallenge        = "certflow.domain.email_sent"
	CertificateIssued           = "certflow.certificate.issued"
	CertificateRevoked          = "certflow.certificate.revoked"
	CertificateExpiring         = "certflow.certificate.expiring"
	CertificateRenewalDue       = "certflow.certificate.renewal_due"
	CertificateExpired          = "certflow.certificate.expired"
	CertificateKeyExported      = "certflow.certificate.key_exported"
	ReviewCreated               = "certflow.review.created"
	PhoneCallRecorded           = "certflow.review.phone_call_recorded"
	ReviewApproved              = "certflow.review.approved"
	ReviewRejected              = "certflow.review.rejected"
	ReviewCancelled             = "certflow.review.cancelled"
)

// Audit records (pkg/audit) are published on AuditPrefix + the action, for
// example certflow.audit.certificate.key_download: a subject per action, so
// each service may publish only the audit records of its own actions
// (Publishes), and audit teams subscribe to AuditSubjects or to one action.
const (
	AuditPrefix   = "certflow.audit."
	AuditSubjects = AuditPrefix + ">"
)

// AuditSubject is the subject and ce-type of an audit record of action.
func AuditSubject(action string) string { return AuditPrefix + action }

// Event is one lifecycle event as stored in an outbox and sent on the wire.
// It carries no NATS or Mongo types so domain-side code can build it.
type Event struct {
	ID string `bson:"id"`
	// Type is the subject and the ce-type, one of the constants above.
	Type string `bson:"type"`
	// Source is the ce-source, for example //certflow/application.
	Source string `bson:"source"`
	// Subject is the ce-subject: the resource the event is about.
	Subject string    `bson:"subject"`
	Time    time.Time `bson:"time"`
	// Data is the protobuf-encoded event message.
	Data []byte `bson:"data"`
	// Delivery counts deliveries to a consumer, from 1; set on receipt only.
	Delivery int `bson:"-"`
}

// NewID returns a random event id.
func NewID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err))
	}
	return hex.EncodeToString(b[:])
}

// New builds an Event from a message; id and time must be the ones already
// set inside msg (event_id, occurred_at) so the envelope and data agree.
func New(typ, source, subject, id string, at time.Time, msg proto.Message) (Event, error) {
	data, err := proto.Marshal(msg)
	if err != nil {
		return Event{}, fmt.Errorf("marshal %s: %w", typ, err)
	}
	return Event{ID: id, Type: typ, Source: source, Subject: subject, Time: at.UTC(), Data: data}, nil
}

// Stamp sets msg's event_id and occurred_at fields (every certflow event
// has them) and wraps it for an outbox, so envelope and data always agree.
func Stamp(typ, source, subject string, now time.Time, msg proto.Message) (Event, error) {
	id := NewID()
	m := msg.ProtoReflect()
	fields := m.Descriptor().Fields()
	idField, atField := fields.ByName("event_id"), fields.ByName("occurred_at")
	if idField == nil || atField == nil {
		return Event{}, fmt.Errorf("%s has no event_id or occurred_at field", m.Descriptor().FullName())
	}
	m.Set(idField, protoreflect.ValueOfString(id))
	m.Set(atField, protoreflect.ValueOfMessage(timestamppb.New(now).ProtoReflect()))
	return New(typ, source, subject, id, now, msg)
}
