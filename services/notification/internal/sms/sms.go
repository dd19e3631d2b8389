// Package sms sends text messages through a provider. There is no real
// provider yet: the only driver is DevRecorder, for development and tests.
// A provider is added as a driver in Open.
package sms

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// Sender sends one text message to a phone number. An error wrapped by
// Permanent will fail the same way on every try; any other error may
// succeed later.
type Sender interface {
	Send(ctx context.Context, to, text string) error
}

type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// Permanent marks err as one that retrying will not fix, such as a number
// the provider rejects.
func Permanent(err error) error { return permanent{err} }

// IsPermanent reports whether err was marked Permanent.
func IsPermanent(err error) bool {
	var p permanent
	return errors.As(err, &p)
}

// DevDriver is the name of the development driver.
const DevDriver = "dev"

// Open returns the sender of a driver by name: "" or DevDriver is a
// DevRecorder logging to log.
func Open(driver string, log *slog.Logger) (Sender, error) {
	switch driver {
	case "", DevDriver:
		return NewDevRecorder(log), nil
	}
	return nil, fmt.Errorf("SMS driver %q: unknown; only %q (development: records and logs, sends nothing) exists", driver, DevDriver)
}

// Message is one text message DevRecorder received.
type Message struct {
	To   string
	Text string
	Time time.Time
}

// DevRecorder is the development driver: it sends nothing, logs each
// message and keeps it in memory for tests. It never fails.
type DevRecorder struct {
	log  *slog.Logger
	mu   sync.Mutex
	msgs []Message
}

// NewDevRecorder returns an empty recorder logging to log (nil: the
// default logger).
func NewDevRecorder(log *slog.Logger) *DevRecorder {
	if log == nil {
		log = slog.Default()
	}
	return &DevRecorder{log: log}
}

// Send implements Sender by recording and logging the message.
func (d *DevRecorder) Send(ctx context.Context, to, text string) error {
	d.mu.Lock()
	d.msgs = append(d.msgs, Message{To: to, Text: text, Time: time.Now()})
	d.mu.Unlock()
	d.log.InfoContext(ctx, "SMS not sent: development recorder (no SMS provider exists yet)", "to", to, "text", text)
	return nil
}

// Messages returns the messages recorded so far, oldest first.
func (d *DevRecorder) Messages() []Message {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.msgs)
}
