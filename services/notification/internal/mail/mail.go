// Package mail sends email: a small Mailer interface with an SMTP driver and
// a development driver that only logs.
package mail

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"strings"
	"time"
)

// Mail is one plain-text message to one recipient.
type Mail struct {
	To      string
	Subject string
	Body    string
	// MessageID, without angle brackets, lets a receiver spot a message
	// sent twice (at-least-once delivery); empty makes none.
	MessageID string
	// Secrets are values in the message only its recipient may see (a
	// domain validation code): drivers that show a message to anyone else,
	// like LogDriver, replace them with Redacted.
	Secrets []string
}

// Redacted stands for a secret a driver does not show.
const Redacted = "[redacted]"

// redact replaces m's secrets in s.
func (m Mail) redact(s string) string {
	for _, secret := range m.Secrets {
		if secret != "" {
			s = strings.ReplaceAll(s, secret, Redacted)
		}
	}
	return s
}

// Mailer sends mail. An error wrapped by Permanent will fail the same way
// on every try; any other error may succeed later.
type Mailer interface {
	Send(ctx context.Context, m Mail) error
}

type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// Permanent marks err as one that retrying will not fix.
func Permanent(err error) error { return permanent{err} }

// IsPermanent reports whether err will fail the same way on every try: it
// was marked Permanent, or the server answered with a 5xx reply (RFC 5321
// 4.2.1: permanent negative completion).
func IsPermanent(err error) bool {
	var p permanent
	if errors.As(err, &p) {
		return true
	}
	var te *textproto.Error
	return errors.As(err, &te) && te.Code >= 500 && te.Code < 600
}

// DefaultDialTimeout bounds connecting to the SMTP server.
const DefaultDialTimeout = 10 * time.Second

// DefaultSendTimeout bounds a whole SMTP conversation when ctx has no
// earlier deadline, so a stuck server cannot hold the event consumer.
const DefaultSendTimeout = 30 * time.Second

// SMTP sends through an SMTP server (a relay or submission server) without
// authentication. If the server offers STARTTLS, the session is upgraded
// and the server's certificate is verified.
type SMTP struct {
	// Addr is host:port of the server.
	Addr string
	// From is the From header and envelope sender, for example
	// "certflow <no-reply@certflow.test>".
	From string
	// Hello is the name sent with EHLO (default "localhost").
	Hello string
	// DialTimeout defaults to DefaultDialTimeout.
	DialTimeout time.Duration
	// TLS configures STARTTLS (default: verify against Addr's host).
	TLS *tls.Config
	// Now is the clock for the Date header (default time.Now).
	Now func() time.Time
}

// NewSMTP returns an SMTP driver; from must be a valid address.
func NewSMTP(addr, from string) (*SMTP, error) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, fmt.Errorf("SMTP address %q: want host:port: %w", addr, err)
	}
	if _, err := mail.ParseAddress(from); err != nil {
		return nil, fmt.Errorf("mail from %q: %w", from, err)
	}
	return &SMTP{Addr: addr, From: from}, nil
}

// Send delivers m in one SMTP session.
func (s *SMTP) Send(ctx context.Context, m Mail) error {
	from, err := mail.ParseAddress(s.From)
	if err != nil {
		return Permanent(fmt.Errorf("sender %q: %w", s.From, err))
	}
	to, err := mail.ParseAddress(m.To)
	if err != nil {
		return Permanent(fmt.Errorf("recipient %q: %w", m.To, err))
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	msg := Compose(from, to, m, now())

	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultSendTimeout)
		defer cancel()
	}
	timeout := s.DialTimeout
	if timeout == 0 {
		timeout = DefaultDialTimeout
	}
	conn, err := (&net.Dialer{Timeout: timeout}).DialContext(ctx, "tcp", s.Addr)
	if err != nil {
		return fmt.Errorf("connect to SMTP server %s: %w", s.Addr, err)
	}
	// net/smtp takes no context: the deadline bounds the conversation, and
	// closing the connection on cancel ends it early.
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()

	host, _, _ := net.SplitHostPort(s.Addr)
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		_ = conn.Close()
		return fmt.Errorf("SMTP server %s: %w", s.Addr, err)
	}
	defer c.Close()
	if err := s.converse(c, host, from.Address, to.Address, msg); err != nil {
		return fmt.Errorf("send to %s via %s: %w", to.Address, s.Addr, err)
	}
	return nil
}

func (s *SMTP) converse(c *smtp.Client, host, from, to string, msg []byte) error {
	hello := s.Hello
	if hello == "" {
		hello = "localhost"
	}
	if err := c.Hello(hello); err != nil {
		return err
	}
	if ok, _ := c.Extension("STARTTLS"); ok {
		cfg := s.TLS
		if cfg == nil {
			cfg = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
		}
		if err := c.StartTLS(cfg); err != nil {
			return fmt.Errorf("starttls: %w", err)
		}
	}
	if err := c.Mail(from); err != nil {
		return err
	}
	if err := c.Rcpt(to); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(msg); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// Compose renders m as an RFC 5322 message with CRLF line endings. The body
// is sent as is (7bit, or 8bit when it has non-ASCII text) rather than
// quoted-printable, so DNS values and file contents in it are never wrapped
// or escaped and can be copied exactly from the raw message.
func Compose(from, to *mail.Address, m Mail, now time.Time) []byte {
	var b bytes.Buffer
	header := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	header("From", from.String())
	header("To", to.String())
	header("Subject", mime.QEncoding.Encode("utf-8", headerValue(m.Subject)))
	header("Date", now.Format(time.RFC1123Z))
	if m.MessageID != "" {
		header("Message-ID", "<"+headerValue(m.MessageID)+">")
	}
	header("MIME-Version", "1.0")
	header("Content-Type", "text/plain; charset=utf-8")
	enc := "7bit"
	for i := 0; i < len(m.Body); i++ {
		if m.Body[i] >= 0x80 {
			enc = "8bit"
			break
		}
	}
	header("Content-Transfer-Encoding", enc)
	b.WriteString("\r\n")
	body := strings.ReplaceAll(m.Body, "\r\n", "\n")
	b.WriteString(strings.ReplaceAll(body, "\n", "\r\n"))
	if !strings.HasSuffix(body, "\n") {
		b.WriteString("\r\n")
	}
	return b.Bytes()
}

// headerValue folds line breaks into spaces so event text cannot add
// headers.
func headerValue(s string) string {
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r == '\r' || r == '\n' }), " ")
}

// LogDriver is the development driver: it logs each mail with slog instead
// of sending it, for running certflow without a mail server. A log is read
// by more people than a mailbox, so the mail's Secrets are redacted. It
// never fails.
type LogDriver struct {
	Log *slog.Logger
}

// Send implements Mailer by logging m.
func (d LogDriver) Send(ctx context.Context, m Mail) error {
	log := d.Log
	if log == nil {
		log = slog.Default()
	}
	log.InfoContext(ctx, "mail not sent: development log driver (set -smtp-addr to send)",
		"to", m.To, "subject", m.redact(m.Subject), "message_id", m.MessageID, "body", m.redact(m.Body), "redacted", len(m.Secrets))
	return nil
}
