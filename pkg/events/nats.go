package events

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// AckWait is how long a consumer's delivery stays unacknowledged before the
// server delivers it again: what a consumer killed mid-event delays that
// event (and, per application, those queued behind it) by at most.
const AckWait = 30 * time.Second

// CloudEvents binary-mode header names.
const (
	HeaderSpecVersion = "ce-specversion"
	HeaderID          = "ce-id"
	HeaderType        = "ce-type"
	HeaderSource      = "ce-source"
	HeaderTime        = "ce-time"
	HeaderSubject     = "ce-subject"
	HeaderContentType = "content-type"
	ContentType       = "application/protobuf"
)

// Conn is a NATS connection with JetStream and the CERTFLOW stream ensured.
type Conn struct {
	NC *nats.Conn
	JS jetstream.JetStream
	// Chaos, if set (tests), delivers every consumed event twice, shuffled.
	Chaos *Chaos
}

// Credentials say who connects: a user of the permissions table and its
// nkey seed file. Options are added as they are (the embedded server's
// in-process administrator).
type Credentials struct {
	User     string
	SeedFile string
	// CAFile verifies a tls:// server's certificate, issued for
	// nats.certflow.internal by the internal PKI.
	CAFile  string
	Options []nats.Option
}

// NATSServerName is the name in the NATS server's certificate.
const NATSServerName = "nats.certflow.internal"

// Connect connects to url as creds, names the connection, and checks that
// the CERTFLOW stream exists: services may not create or change it.
func Connect(ctx context.Context, url, name string, creds Credentials) (*Conn, error) {
	opts := []nats.Option{nats.Name(name), nats.MaxReconnects(-1), nats.RetryOnFailedConnect(true)}
	if creds.SeedFile != "" {
		o, err := nats.NkeyOptionFromSeed(creds.SeedFile)
		if err != nil {
			return nil, fmt.Errorf("NATS credentials for %s: %w", creds.User, err)
		}
		opts = append(opts, o)
	}
	if creds.User != "" {
		opts = append(opts, nats.CustomInboxPrefix(Inbox(creds.User)))
	}
	if creds.CAFile != "" && strings.HasPrefix(url, "tls://") {
		pem, err := os.ReadFile(creds.CAFile)
		if err != nil {
			return nil, fmt.Errorf("NATS CA bundle: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("NATS CA bundle %s holds no certificate", creds.CAFile)
		}
		opts = append(opts, nats.Secure(&tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool, ServerName: NATSServerName}))
	}
	opts = append(opts, creds.Options...)
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w", url, err)
	}
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(10*time.Second))
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	if _, err := js.Stream(ctx, Stream); err != nil {
		nc.Close()
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil, fmt.Errorf("NATS at %s has no stream %s: create it first (deploy/nats/README.md)", url, Stream)
		}
		return nil, fmt.Errorf("NATS at %s as %q: stream %s: %w (are the credentials right?)", url, creds.User, Stream, err)
	}
	return &Conn{NC: nc, JS: js}, nil
}

// StreamConfig is the CERTFLOW stream's configuration.
func StreamConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:     Stream,
		Subjects: []string{StreamSubjects},
		Storage:  jetstream.FileStorage,
		// Duplicate window: an outbox relay that crashed after publishing and
		// before clearing republishes within this and is deduplicated.
		Duplicates: 10 * time.Minute,
		MaxAge:     30 * 24 * time.Hour,
	}
}

// EnsureStream creates or updates the CERTFLOW stream (an administrator's
// connection: the embedded server's own, or an operator's) with replicas
// copies: 1 on a single server, 3 on a three-node cluster, where the
// stream then survives the loss of any one node.
func EnsureStream(ctx context.Context, js jetstream.JetStream, replicas int) error {
	cfg := StreamConfig()
	cfg.Replicas = max(replicas, 1)
	if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
		return fmt.Errorf("create stream %s: %w", Stream, err)
	}
	return nil
}

// Close drains the connection.
func (c *Conn) Close() { _ = c.NC.Drain() }

// Publish sends ev to its subject and waits for the JetStream ack.
func (c *Conn) Publish(ctx context.Context, ev Event) error {
	msg := ToMsg(ev)
	if _, err := c.JS.PublishMsg(ctx, msg, jetstream.WithMsgID(ev.ID)); err != nil {
		return fmt.Errorf("publish %s %s: %w", ev.Type, ev.ID, err)
	}
	return nil
}

// ToMsg renders ev as a CloudEvents binary-mode NATS message.
func ToMsg(ev Event) *nats.Msg {
	msg := nats.NewMsg(ev.Type)
	msg.Header.Set(HeaderSpecVersion, "1.0")
	msg.Header.Set(HeaderID, ev.ID)
	msg.Header.Set(HeaderType, ev.Type)
	msg.Header.Set(HeaderSource, ev.Source)
	msg.Header.Set(HeaderTime, ev.Time.UTC().Format(time.RFC3339Nano))
	msg.Header.Set(HeaderSubject, ev.Subject)
	msg.Header.Set(HeaderContentType, ContentType)
	msg.Header.Set(jetstream.MsgIDHeader, ev.ID)
	msg.Data = ev.Data
	return msg
}

// FromMsg reads a CloudEvents binary-mode message.
func FromMsg(subject string, h nats.Header, data []byte) (Event, error) {
	if h.Get(HeaderSpecVersion) != "1.0" {
		return Event{}, errors.New("not a CloudEvent: ce-specversion is not 1.0")
	}
	t, err := time.Parse(time.RFC3339Nano, h.Get(HeaderTime))
	if err != nil {
		return Event{}, fmt.Errorf("ce-time: %w", err)
	}
	return Event{
		ID:      h.Get(HeaderID),
		Type:    h.Get(HeaderType),
		Source:  h.Get(HeaderSource),
		Subject: h.Get(HeaderSubject),
		Time:    t,
		Data:    data,
	}, nil
}

// Handler handles one event. Returning an error redelivers it after a delay;
// returning a Permanent error logs and acknowledges it.
type Handler func(ctx context.Context, ev Event) error

type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// MaxRetryDelay caps the wait between deliveries of a failing event.
const MaxRetryDelay = time.Minute

// Backoff is the wait before redelivering an event that failed on its
// delivery-th delivery: base, doubling each time, at most MaxRetryDelay.
func Backoff(base time.Duration, delivery int) time.Duration {
	d := base
	for i := 1; i < delivery && d < MaxRetryDelay; i++ {
		d *= 2
	}
	return min(d, MaxRetryDelay)
}

// Permanent marks err as not worth retrying.
func Permanent(err error) error { return permanent{err} }

// IsPermanent reports whether err (or an error it wraps or joins) was
// marked Permanent.
func IsPermanent(err error) bool {
	var p permanent
	return errors.As(err, &p)
}

// errMalformed is a message that is no event: it is never redelivered.
type errMalformed struct{ err error }

func (e errMalformed) Error() string { return "malformed event: " + e.err.Error() }

// ConsumeOptions configures a durable consumer.
type ConsumeOptions struct {
	// Durable is the consumer name, for example "application".
	Durable  string
	Subjects []string
	// RetryDelay is how long a failed event first waits before redelivery;
	// the wait doubles with each further failure (see Backoff).
	RetryDelay time.Duration
	// MaxDeliver bounds redeliveries (default 50; -1 for no limit).
	MaxDeliver int
	Log        *slog.Logger
}

// consumeBatch is how many messages a consumer pulls at a time, and
// maxAckPending how many JetStream lets it hold unacknowledged: the
// hand-over channel holds that many, so the client's callback does not wait
// (short of redeliveries of messages still queued).
const (
	consumeBatch  = 64
	maxAckPending = 512
)

// Consume runs a durable pull consumer until ctx is done. Handlers must be
// idempotent: JetStream delivers at least once.
func (c *Conn) Consume(ctx context.Context, opts ConsumeOptions, h Handler) error {
	if opts.RetryDelay == 0 {
		opts.RetryDelay = time.Second
	}
	if opts.MaxDeliver == 0 {
		opts.MaxDeliver = 50
	}
	log := opts.Log
	if log == nil {
		log = slog.Default()
	}
	cons, err := c.JS.CreateOrUpdateConsumer(ctx, Stream, jetstream.ConsumerConfig{
		Durable:        opts.Durable,
		FilterSubjects: opts.Subjects,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        AckWait,
		MaxDeliver:     opts.MaxDeliver,
		MaxAckPending:  maxAckPending,
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return fmt.Errorf("consumer %s: %w", opts.Durable, err)
	}
	// apply hands one message to h; settle acknowledges it or asks for a
	// redelivery from what h answered.
	apply := func(m jetstream.Msg) (Event, error) {
		ev, err := FromMsg(m.Subject(), m.Headers(), m.Data())
		if err != nil {
			return ev, errMalformed{err}
		}
		if meta, err := m.Metadata(); err == nil {
			ev.Delivery = int(meta.NumDelivered)
		}
		return ev, h(ctx, ev)
	}
	settle := func(m jetstream.Msg, ev Event, err error) {
		var bad errMalformed
		switch {
		case err == nil:
			_ = m.Ack()
		case errors.As(err, &bad):
			log.Error("dropping malformed event", "subject", m.Subject(), "err", bad.err)
			_ = m.Term()
		case IsPermanent(err):
			log.Error("event not applied", "type", ev.Type, "id", ev.ID, "err", err)
			_ = m.Ack()
		case opts.MaxDeliver > 0 && ev.Delivery >= opts.MaxDeliver:
			log.Error("event failed on its last delivery; giving up", "type", ev.Type, "id", ev.ID, "delivery", ev.Delivery, "err", err)
			_ = m.Term()
		default:
			delay := Backoff(opts.RetryDelay, ev.Delivery)
			log.Warn("event failed; will retry", "type", ev.Type, "id", ev.ID, "delivery", ev.Delivery, "in", delay, "err", err)
			_ = m.NakWithDelay(delay)
		}
	}
	var cc jetstream.ConsumeContext
	if c.Chaos != nil {
		// One goroutine applies and settles; the callback only hands over.
		held := make(chan jetstream.Msg, 1024)
		applied := map[jetstream.Msg]Event{}
		go c.Chaos.run(ctx, held, func(m jetstream.Msg) error {
			ev, err := apply(m)
			applied[m] = ev
			return err
		}, func(m jetstream.Msg, err error) {
			ev := applied[m]
			delete(applied, m)
			settle(m, ev, err)
		}, log)
		cc, err = cons.Consume(func(m jetstream.Msg) { held <- m })
	} else {
		// The callback only hands over; one goroutine applies and settles.
		// A handler held for seconds (the database away, each call waiting
		// out its timeout) must not hold the client's own delivery of pull
		// status and heartbeats: with the handler in the callback, the pull
		// consumer was seen to stop receiving for good after an outage.
		held := make(chan jetstream.Msg, maxAckPending)
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case m := <-held:
					ev, err := apply(m)
					settle(m, ev, err)
				}
			}
		}()
		cc, err = cons.Consume(func(m jetstream.Msg) {
			select {
			case held <- m:
			case <-ctx.Done(): // left unacknowledged: redelivered after AckWait
			}
		},
			jetstream.PullMaxMessages(consumeBatch),
			jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
				log.Warn("event consumer", "durable", opts.Durable, "err", err)
			}))
	}
	if err != nil {
		return fmt.Errorf("consume %s: %w", opts.Durable, err)
	}
	<-ctx.Done()
	cc.Drain()
	return nil
}
