package events_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/certflow/certflow/pkg/events"
	"github.com/certflow/certflow/pkg/testenv"
)

// forged is a well-formed certflow.domain.verified event.
func forged(t *testing.T, id string) events.Event {
	return events.Event{ID: id, Type: events.DomainVerified, Source: "certflow/verification", Subject: "challenges/x", Time: time.Now(), Data: []byte{}}
}

// inStream reports whether the stream holds an event with id.
func inStream(t *testing.T, admin *events.Conn, id string) bool {
	t.Helper()
	return inStreamOn(t, admin, events.DomainVerified, id)
}

// inStreamOn reports whether the last event on subject has id.
func inStreamOn(t *testing.T, admin *events.Conn, subject, id string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := admin.JS.Stream(ctx, events.Stream)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := s.GetLastMsgForSubject(ctx, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	return msg.Header.Get(events.HeaderID) == id
}

// TestOnlyTheOwnerPublishes: the server refuses a forged
// certflow.domain.verified from every user but the verification service,
// and the stream never holds it.
func TestOnlyTheOwnerPublishes(t *testing.T) {
	url := testenv.NATS(t)
	admin := testenv.Conn(t, url)
	for _, user := range events.Users() {
		t.Run(user, func(t *testing.T) {
			c := testenv.ConnAs(t, url, user)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			id := "forged-by-" + user
			err := c.Publish(ctx, forged(t, id))
			if user == "verification" {
				if err != nil || !inStream(t, admin, id) {
					t.Fatalf("verification publishing its own event = %v; want it stored", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("%s published certflow.domain.verified; want the server to refuse", user)
			}
			if inStream(t, admin, id) {
				t.Fatalf("the stream holds the event %s forged by %s", id, user)
			}
		})
	}
}

// TestAuditRecordsOnlyFromTheirService: an audit record of an action is
// accepted only from the service that does that action, so no service (nor
// a reader) can write another's trail.
func TestAuditRecordsOnlyFromTheirService(t *testing.T) {
	url := testenv.NATS(t)
	admin := testenv.Conn(t, url)
	owners := map[string]string{
		"application.submit": "application", "review.approve": "verification", "certificate.key_download": "issuance",
	}
	for action, owner := range owners {
		subject := events.AuditSubject(action)
		for _, user := range events.Users() {
			t.Run(action+"/"+user, func(t *testing.T) {
				c := testenv.ConnAs(t, url, user)
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				id := action + "-by-" + user
				err := c.Publish(ctx, events.Event{ID: id, Type: subject, Source: "//certflow/" + user, Subject: "x/y", Time: time.Now(), Data: []byte{}})
				if user == owner {
					if err != nil || !inStreamOn(t, admin, subject, id) {
						t.Fatalf("%s publishing %s = %v; want it stored", user, subject, err)
					}
					return
				}
				if err == nil || inStreamOn(t, admin, subject, id) {
					t.Fatalf("%s published %s (%v); want the server to refuse", user, subject, err)
				}
			})
		}
	}
}

// TestAnonymousRefused: a connection without credentials, or with a key
// the server does not know, is refused.
func TestAnonymousRefused(t *testing.T) {
	url := testenv.NATS(t)
	if nc, err := nats.Connect(url); err == nil {
		nc.Close()
		t.Fatal("anonymous connection accepted")
	} else if !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("anonymous connection: %v; want an authorization violation", err)
	}
	// A seed of another server's users: valid nkey, unknown here.
	other := testenv.NATS(t)
	opt, err := nats.NkeyOptionFromSeed(testenv.NATSSeed(t, other, "verification"))
	if err != nil {
		t.Fatal(err)
	}
	if nc, err := nats.Connect(url, opt); err == nil {
		nc.Close()
		t.Fatal("a key unknown to the server was accepted")
	}
}

// TestReaderReads: the read-only user follows every event through its own
// consumer, but cannot take a service's consumer or publish.
func TestReaderReads(t *testing.T) {
	url := testenv.NATS(t)
	verifier := testenv.ConnAs(t, url, "verification")
	reader := testenv.ConnAs(t, url, events.Reader)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := verifier.Publish(ctx, forged(t, "genuine-1")); err != nil {
		t.Fatal(err)
	}
	cons, err := reader.JS.CreateOrUpdateConsumer(ctx, events.Stream, jetstream.ConsumerConfig{Durable: "audit-team", FilterSubject: events.StreamSubjects, AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatalf("reader creating its own consumer: %v", err)
	}
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for m := range batch.Messages() {
		got++
		if err := m.Ack(); err != nil {
			t.Fatalf("reader ack: %v", err)
		}
	}
	if got != 1 {
		t.Fatalf("reader fetched %d events; want 1", got)
	}
	short, cancel2 := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel2()
	if _, err := reader.JS.CreateOrUpdateConsumer(short, events.Stream, jetstream.ConsumerConfig{Durable: "application", FilterSubject: events.StreamSubjects}); err == nil {
		t.Fatal("reader took the application service's consumer name")
	}
	if err := reader.NC.Publish("certflow.application.issued", []byte("x")); err == nil {
		_ = reader.NC.Flush()
		if !errors.Is(reader.NC.LastError(), nats.ErrPermissionViolation) {
			t.Fatalf("reader core publish: last error %v; want a permissions violation", reader.NC.LastError())
		}
	}
	// Services may not change or delete the stream either.
	if err := verifier.JS.DeleteStream(short, events.Stream); err == nil {
		t.Fatal("a service deleted the stream")
	}
}
