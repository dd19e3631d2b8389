package smtptest

import (
	"bufio"
	"errors"
	"net"
	"net/smtp"
	"net/textproto"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestSendMail(t *testing.T) {
	s := Start(t)
	body := "Subject: hi\r\n\r\nline one\r\n.starts with a dot\r\n..two dots\r\n"
	to := []string{"a@example.com", "b@example.com"}
	if err := smtp.SendMail(s.Addr(), nil, "sender@example.com", to, []byte(body)); err != nil {
		t.Fatalf("SendMail = %v; want nil", err)
	}
	msgs := s.WaitFor(t, 1, 5*time.Second)
	if len(msgs) != 1 {
		t.Fatalf("WaitFor(1) = %d messages; want 1", len(msgs))
	}
	m := msgs[0]
	if m.From != "sender@example.com" || !slices.Equal(m.To, to) {
		t.Errorf("message envelope = %q -> %q; want %q -> %q", m.From, m.To, "sender@example.com", to)
	}
	// net/smtp dot-stuffs on the way out; the server must undo it exactly.
	if string(m.Data) != body {
		t.Errorf("message data = %q; want %q", m.Data, body)
	}
}

func TestSendMailSeveral(t *testing.T) {
	s := Start(t)
	for i := range 3 {
		go func() {
			msg := "Subject: " + strings.Repeat("x", i+1) + "\r\n\r\nbody\r\n"
			_ = smtp.SendMail(s.Addr(), nil, "s@example.com", []string{"r@example.com"}, []byte(msg))
		}()
	}
	if got := s.WaitFor(t, 3, 5*time.Second); len(got) != 3 {
		t.Errorf("WaitFor(3) = %d messages; want 3", len(got))
	}
}

func TestRejectRecipient(t *testing.T) {
	s := Start(t)
	s.RejectRecipient("Nobody@example.com")
	err := smtp.SendMail(s.Addr(), nil, "s@example.com", []string{"nobody@example.com"}, []byte("\r\nx\r\n"))
	var te *textproto.Error
	if !errors.As(err, &te) || te.Code != 550 {
		t.Fatalf("SendMail to a rejected recipient = %v; want a 550 reply", err)
	}
	if got := s.Messages(); len(got) != 0 {
		t.Errorf("Messages() = %d after a rejected recipient; want 0", len(got))
	}
}

// TestSession drives the protocol by hand to check the replies to bad
// sequences and the commands net/smtp does not use.
func TestSession(t *testing.T) {
	s := Start(t)
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	tp := textproto.NewConn(c)
	if _, _, err := tp.ReadResponse(220); err != nil {
		t.Fatalf("greeting = %v; want 220", err)
	}
	steps := []struct {
		cmd  string
		want int
	}{
		{"MAIL FROM:<a@example.com>", 503}, // before HELO
		{"FOO", 500},
		{"HELO", 501},
		{"HELO client.example", 250},
		{"RCPT TO:<b@example.com>", 503}, // before MAIL
		{"DATA", 503},
		{"MAIL FROM a@example.com", 501},
		{"MAIL FROM:<a@example.com> BODY=8BITMIME", 250},
		{"MAIL FROM:<a@example.com>", 503}, // nested
		{"DATA", 503},                      // no recipients
		{"RCPT TO:<>", 501},
		{"rcpt to:<b@example.com>", 250},
		{"NOOP", 250},
		{"RSET", 250},
		{"RCPT TO:<b@example.com>", 503}, // RSET ended the transaction
		{"EHLO client.example", 250},
		{"MAIL FROM:<>", 250}, // null reverse-path
		{"RCPT TO:<b@example.com>", 250},
		{"DATA", 354},
	}
	for _, st := range steps {
		if err := tp.PrintfLine("%s", st.cmd); err != nil {
			t.Fatal(err)
		}
		if code, msg, err := tp.ReadResponse(st.want); err != nil {
			t.Fatalf("%s = %d %s; want %d", st.cmd, code, msg, st.want)
		}
	}
	w := bufio.NewWriter(c)
	w.WriteString("Subject: x\r\n\r\n..dot\r\nend\r\n.\r\n")
	w.Flush()
	if code, msg, err := tp.ReadResponse(250); err != nil {
		t.Fatalf("end of DATA = %d %s; want 250", code, msg)
	}
	if err := tp.PrintfLine("QUIT"); err != nil {
		t.Fatal(err)
	}
	if code, msg, err := tp.ReadResponse(221); err != nil {
		t.Fatalf("QUIT = %d %s; want 221", code, msg)
	}
	got := s.Messages()
	if len(got) != 1 || got[0].From != "" || string(got[0].Data) != "Subject: x\r\n\r\n.dot\r\nend\r\n" {
		t.Errorf("Messages() = %+v; want one from <> with the dot unstuffed", got)
	}
}

func TestLongLineRefused(t *testing.T) {
	s := Start(t)
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	tp := textproto.NewConn(c)
	if _, _, err := tp.ReadResponse(220); err != nil {
		t.Fatal(err)
	}
	tp.PrintfLine("NOOP %s", strings.Repeat("x", 5000))
	if code, msg, err := tp.ReadResponse(500); err != nil {
		t.Fatalf("long line = %d %s; want 500", code, msg)
	}
	tp.PrintfLine("NOOP")
	if code, msg, err := tp.ReadResponse(250); err != nil {
		t.Fatalf("NOOP after a long line = %d %s; want 250", code, msg)
	}
}

// failTB records a Fatalf instead of ending the test.
type failTB struct {
	testing.TB
	failed bool
}

func (f *failTB) Helper()               {}
func (f *failTB) Fatalf(string, ...any) { f.failed = true }
func (f *failTB) Cleanup(fn func())     { f.TB.Cleanup(fn) }

func TestWaitForTimesOut(t *testing.T) {
	s := Start(t)
	ft := &failTB{TB: t}
	start := time.Now()
	if got := s.WaitFor(ft, 1, 50*time.Millisecond); got != nil || !ft.failed {
		t.Errorf("WaitFor(1) with no mail = %v, failed %v; want nil and a failed test", got, ft.failed)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("WaitFor took %v; want about its timeout", time.Since(start))
	}
}
