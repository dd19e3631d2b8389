package mail

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/mail"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"github.com/certflow/certflow/pkg/smtptest"
)

func TestSMTPSend(t *testing.T) {
	srv := smtptest.Start(t)
	s, err := NewSMTP(srv.Addr(), "certflow <no-reply@certflow.test>")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	s.Now = func() time.Time { return now }
	m := Mail{
		To:        "Alice <alice@example.com>",
		Subject:   "Grüße\r\nBcc: evil@example.com",
		Body:      "line one\n.leading dot\nvalue: AbC-123_xyz\n",
		MessageID: "n1@certflow",
	}
	if err := s.Send(context.Background(), m); err != nil {
		t.Fatalf("Send = %v; want nil", err)
	}
	got := srv.WaitFor(t, 1, 5*time.Second)[0]
	if got.From != "no-reply@certflow.test" || len(got.To) != 1 || got.To[0] != "alice@example.com" {
		t.Errorf("envelope = %q -> %q; want no-reply@certflow.test -> [alice@example.com]", got.From, got.To)
	}
	msg, err := mail.ReadMessage(bytes.NewReader(got.Data))
	if err != nil {
		t.Fatalf("ReadMessage = %v", err)
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil || subject != "Grüße Bcc: evil@example.com" {
		t.Errorf("Subject = %q, %v; want the line breaks folded away", subject, err)
	}
	if msg.Header.Get("Bcc") != "" {
		t.Errorf("Bcc header = %q; want none (header injection)", msg.Header.Get("Bcc"))
	}
	for k, want := range map[string]string{
		"From":                      `"certflow" <no-reply@certflow.test>`,
		"To":                        `"Alice" <alice@example.com>`,
		"Message-Id":                "<n1@certflow>",
		"Content-Type":              "text/plain; charset=utf-8",
		"Content-Transfer-Encoding": "7bit",
		"Date":                      now.Format(time.RFC1123Z),
	} {
		if v := msg.Header.Get(k); v != want {
			t.Errorf("header %s = %q; want %q", k, v, want)
		}
	}
	body, _ := io.ReadAll(msg.Body)
	if want := "line one\r\n.leading dot\r\nvalue: AbC-123_xyz\r\n"; string(body) != want {
		t.Errorf("body = %q; want %q", body, want)
	}
}

func TestSMTPErrors(t *testing.T) {
	srv := smtptest.Start(t)
	srv.RejectRecipient("gone@example.com")
	// A port nobody listens on: bind one and close it.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := lis.Addr().String()
	lis.Close()

	tests := []struct {
		name          string
		addr, to      string
		wantPermanent bool
	}{
		{"refused mailbox", srv.Addr(), "gone@example.com", true},
		{"bad recipient", srv.Addr(), "not an address", true},
		{"no server", closed, "alice@example.com", false},
	}
	for _, tt := range tests {
		s := &SMTP{Addr: tt.addr, From: "no-reply@certflow.test", DialTimeout: 2 * time.Second}
		err := s.Send(context.Background(), Mail{To: tt.to, Subject: "s", Body: "b"})
		if err == nil || IsPermanent(err) != tt.wantPermanent {
			t.Errorf("%s: Send = %v (permanent %v); want an error, permanent %v", tt.name, err, IsPermanent(err), tt.wantPermanent)
		}
	}
	if n := len(srv.Messages()); n != 0 {
		t.Errorf("server accepted %d messages; want 0", n)
	}
}

func TestIsPermanent(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{&textproto.Error{Code: 550, Msg: "no such user"}, true},
		{&textproto.Error{Code: 421, Msg: "try later"}, false},
		{errors.New("connection reset"), false},
		{Permanent(errors.New("bad address")), true},
		{nil, false},
	}
	for _, tt := range tests {
		if got := IsPermanent(tt.err); got != tt.want {
			t.Errorf("IsPermanent(%v) = %v; want %v", tt.err, got, tt.want)
		}
	}
}

func TestNewSMTPValidates(t *testing.T) {
	for _, tt := range []struct{ addr, from string }{
		{"localhost", "a@example.com"},
		{"localhost:25", "not an address"},
	} {
		if _, err := NewSMTP(tt.addr, tt.from); err == nil {
			t.Errorf("NewSMTP(%q, %q) = nil error; want one", tt.addr, tt.from)
		}
	}
}

func TestComposeEightBit(t *testing.T) {
	msg := Compose(&mail.Address{Address: "a@x.test"}, &mail.Address{Address: "b@x.test"}, Mail{Subject: "s", Body: "ünïcode"}, time.Now())
	if !bytes.Contains(msg, []byte("Content-Transfer-Encoding: 8bit\r\n")) || !bytes.HasSuffix(msg, []byte("\r\n\r\nünïcode\r\n")) {
		t.Errorf("Compose(non-ASCII body) = %q; want 8bit and the body ending in CRLF", msg)
	}
}

func TestLogDriver(t *testing.T) {
	var buf bytes.Buffer
	d := LogDriver{Log: slog.New(slog.NewTextHandler(&buf, nil))}
	if err := d.Send(context.Background(), Mail{To: "a@example.com", Subject: "Domain x verified", Body: "b"}); err != nil {
		t.Fatalf("LogDriver.Send = %v; want nil", err)
	}
	if out := buf.String(); !strings.Contains(out, "Domain x verified") || !strings.Contains(out, "a@example.com") {
		t.Errorf("LogDriver logged %q; want the recipient and subject", out)
	}
}

// TestLogDriverRedacts: a domain validation code in a logged mail is
// replaced, wherever it appears.
func TestLogDriverRedacts(t *testing.T) {
	var buf bytes.Buffer
	d := LogDriver{Log: slog.New(slog.NewJSONHandler(&buf, nil))}
	const code = "K7QD-2MZP-XR4A-9TQW-B3VN-8HJC"
	m := Mail{To: "admin@example.com", Subject: "Confirm control of example.com", Secrets: []string{code},
		Body: "Confirmation code: " + code + "\n  {\"code\": \"" + code + "\"}\n"}
	if err := d.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if strings.Contains(out, code) || strings.Contains(out, "K7QD") || !strings.Contains(out, Redacted) {
		t.Errorf("LogDriver logged %q; want the code redacted", out)
	}
}
