// Package smtptest is a real, minimal SMTP server for tests: it speaks the
// RFC 5321 subset a submitting client needs (EHLO/HELO, MAIL, RCPT, DATA,
// RSET, NOOP, QUIT) on a loopback port and records what it accepts, so code
// that sends mail is tested over the wire instead of against a mock.
//
// It offers no STARTTLS and no AUTH, so Go's net/smtp client sends to it in
// plain text (net/smtp refuses only PLAIN auth without TLS, and none is
// used).
package smtptest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// Message is one accepted mail transaction.
type Message struct {
	// From is the reverse-path of MAIL FROM, without angle brackets ("" for
	// the null path <>).
	From string
	// To holds the forward-paths of the accepted RCPT TO commands.
	To []string
	// Data is the raw message (headers and body) as sent after DATA, with
	// CRLF line endings, dot-unstuffed and without the terminating ".".
	Data []byte
}

// Limits keep a misbehaving client from exhausting the test's memory.
const (
	maxLine       = 1000 // RFC 5321 4.5.3.1.6: text line, CRLF included
	maxMessage    = 10 << 20
	maxRecipients = 100
	idleTimeout   = 30 * time.Second
)

// Server is a running test SMTP server.
type Server struct {
	lis net.Listener

	mu       sync.Mutex
	msgs     []Message
	arrived  chan struct{} // closed and replaced whenever a message is accepted
	rejected map[string]bool
	conns    map[net.Conn]bool
	closed   bool

	wg sync.WaitGroup
}

// Start listens on 127.0.0.1:0 and serves until the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("smtptest: listen: %v", err)
	}
	s := &Server{
		lis:      lis,
		arrived:  make(chan struct{}),
		rejected: map[string]bool{},
		conns:    map[net.Conn]bool{},
	}
	s.wg.Add(1)
	go s.serve()
	t.Cleanup(s.Close)
	return s
}

// Addr is the host:port the server listens on.
func (s *Server) Addr() string { return s.lis.Addr().String() }

// RejectRecipient makes RCPT TO for addr fail with a permanent 550 reply,
// so tests can see how a sender handles a refused mailbox.
func (s *Server) RejectRecipient(addr string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rejected[strings.ToLower(addr)] = true
}

// Messages returns a copy of the messages accepted so far, in order.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.copyLocked()
}

// WaitFor waits until at least n messages have been accepted and returns all
// of them (possibly more than n). It fails the test if fewer than n arrive
// within timeout.
func (s *Server) WaitFor(t testing.TB, n int, timeout time.Duration) []Message {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		s.mu.Lock()
		if len(s.msgs) >= n {
			msgs := s.copyLocked()
			s.mu.Unlock()
			return msgs
		}
		arrived, got := s.arrived, len(s.msgs)
		s.mu.Unlock()
		select {
		case <-arrived:
		case <-timer.C:
			t.Fatalf("smtptest: %d messages arrived within %v; want at least %d", got, timeout, n)
			return nil
		}
	}
}

// Close stops listening, closes open sessions and waits for them to end.
// Tests need not call it: Start registers it with t.Cleanup.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	_ = s.lis.Close()
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *Server) copyLocked() []Message {
	out := make([]Message, len(s.msgs))
	for i, m := range s.msgs {
		out[i] = Message{From: m.From, To: append([]string(nil), m.To...), Data: append([]byte(nil), m.Data...)}
	}
	return out
}

func (s *Server) serve() {
	defer s.wg.Done()
	for {
		c, err := s.lis.Accept()
		if err != nil {
			return // closed
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = c.Close()
			return
		}
		s.conns[c] = true
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			defer func() {
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				_ = c.Close()
			}()
			(&session{srv: s, conn: c, r: bufio.NewReaderSize(c, maxLine), w: bufio.NewWriter(c)}).run()
		}()
	}
}

func (s *Server) accept(m Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs = append(s.msgs, m)
	close(s.arrived)
	s.arrived = make(chan struct{})
}

func (s *Server) isRejected(addr string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rejected[strings.ToLower(addr)]
}

// session is one client connection and its mail transaction state.
type session struct {
	srv  *Server
	conn net.Conn
	r    *bufio.Reader
	w    *bufio.Writer

	greeted bool
	inMail  bool // MAIL FROM accepted
	from    string
	to      []string
}

var errLineTooLong = errors.New("line too long")

func (ss *session) run() {
	ss.reply(220, "smtptest ESMTP ready")
	for {
		line, err := ss.readLine()
		if errors.Is(err, errLineTooLong) {
			ss.reply(500, "5.5.2 line too long")
			continue
		}
		if err != nil {
			return
		}
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO":
			if arg == "" {
				ss.reply(501, "5.5.4 EHLO needs a domain or address literal")
				continue
			}
			ss.greeted = true
			ss.resetTx()
			ss.reply(250, "smtptest greets "+arg, "8BITMIME", "PIPELINING")
		case "HELO":
			if arg == "" {
				ss.reply(501, "5.5.4 HELO needs a domain")
				continue
			}
			ss.greeted = true
			ss.resetTx()
			ss.reply(250, "smtptest greets "+arg)
		case "MAIL":
			ss.mail(arg)
		case "RCPT":
			ss.rcpt(arg)
		case "DATA":
			if arg != "" {
				ss.reply(501, "5.5.4 DATA takes no arguments")
				continue
			}
			if !ss.data() {
				return
			}
		case "RSET":
			ss.resetTx()
			ss.reply(250, "2.0.0 OK")
		case "NOOP":
			ss.reply(250, "2.0.0 OK")
		case "QUIT":
			ss.reply(221, "2.0.0 bye")
			return
		case "VRFY", "EXPN", "HELP":
			ss.reply(502, "5.5.1 command not implemented")
		default:
			ss.reply(500, "5.5.2 command not recognized")
		}
	}
}

func (ss *session) resetTx() {
	ss.inMail, ss.from, ss.to = false, "", nil
}

func (ss *session) mail(arg string) {
	path, ok := pathArg(arg, "FROM:")
	switch {
	case !ss.greeted:
		ss.reply(503, "5.5.1 send EHLO or HELO first")
	case ss.inMail:
		ss.reply(503, "5.5.1 nested MAIL command")
	case !ok:
		ss.reply(501, "5.5.4 syntax: MAIL FROM:<address>")
	default:
		ss.inMail, ss.from = true, path
		ss.reply(250, "2.1.0 OK")
	}
}

func (ss *session) rcpt(arg string) {
	path, ok := pathArg(arg, "TO:")
	switch {
	case !ss.inMail:
		ss.reply(503, "5.5.1 send MAIL FROM first")
	case !ok || path == "":
		ss.reply(501, "5.5.4 syntax: RCPT TO:<address>")
	case len(ss.to) >= maxRecipients:
		ss.reply(452, "4.5.3 too many recipients")
	case ss.srv.isRejected(path):
		ss.reply(550, "5.1.1 mailbox unavailable")
	default:
		ss.to = append(ss.to, path)
		ss.reply(250, "2.1.5 OK")
	}
}

// data reads the message after DATA; it returns false if the connection
// is gone.
func (ss *session) data() bool {
	if !ss.inMail || len(ss.to) == 0 {
		ss.reply(503, "5.5.1 send MAIL FROM and RCPT TO first")
		return true
	}
	ss.reply(354, "end data with <CR><LF>.<CR><LF>")
	var buf []byte
	tooBig := false
	for {
		line, err := ss.readLine()
		if errors.Is(err, errLineTooLong) {
			tooBig = true // keep reading to the terminator, then refuse
			continue
		}
		if err != nil {
			return false
		}
		if line == "." {
			break
		}
		// RFC 5321 4.5.2: the sender doubled every leading dot.
		line = strings.TrimPrefix(line, ".")
		if len(buf)+len(line)+2 > maxMessage {
			tooBig = true
			continue
		}
		buf = append(buf, line...)
		buf = append(buf, '\r', '\n')
	}
	if tooBig {
		ss.resetTx()
		ss.reply(552, "5.3.4 message or line too big")
		return true
	}
	ss.srv.accept(Message{From: ss.from, To: ss.to, Data: buf})
	ss.resetTx()
	ss.reply(250, "2.0.0 OK: queued")
	return true
}

// pathArg parses "FROM:<path> params" (prefix "FROM:") and returns path.
// Parameters such as BODY=8BITMIME are accepted and ignored.
func pathArg(arg, prefix string) (string, bool) {
	if len(arg) < len(prefix) || !strings.EqualFold(arg[:len(prefix)], prefix) {
		return "", false
	}
	rest := strings.TrimLeft(arg[len(prefix):], " ")
	if !strings.HasPrefix(rest, "<") {
		return "", false
	}
	end := strings.IndexByte(rest, '>')
	if end < 0 {
		return "", false
	}
	return rest[1:end], true
}

// readLine reads one CRLF- (or bare LF-) terminated line without its
// ending. Lines longer than maxLine are consumed and reported as
// errLineTooLong.
func (ss *session) readLine() (string, error) {
	_ = ss.conn.SetReadDeadline(time.Now().Add(idleTimeout))
	var line []byte
	long := false
	for {
		chunk, isPrefix, err := ss.r.ReadLine()
		if err != nil {
			if errors.Is(err, io.EOF) && len(line) > 0 {
				err = io.ErrUnexpectedEOF
			}
			return "", err
		}
		if !long {
			line = append(line, chunk...)
			if len(line) > maxLine-2 {
				long = true
			}
		}
		if !isPrefix {
			break
		}
	}
	if long {
		return "", errLineTooLong
	}
	return string(line), nil
}

// reply writes a reply; several texts make a multi-line reply.
func (ss *session) reply(code int, texts ...string) {
	for i, text := range texts {
		sep := "-"
		if i == len(texts)-1 {
			sep = " "
		}
		fmt.Fprintf(ss.w, "%d%s%s\r\n", code, sep, text)
	}
	_ = ss.conn.SetWriteDeadline(time.Now().Add(idleTimeout))
	_ = ss.w.Flush()
}
