package testkit

import (
	"io"
	"mime"
	"net"
	"net/mail"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// Mail is one message a MailSink accepted: the envelope's sender and
// recipients, the decoded Subject header and the body.
type Mail struct {
	From    string
	To      []string
	Subject string
	Body    string
}

// MailSink is a real SMTP server on 127.0.0.1:0 (no TLS, no auth) that
// hands every message it accepts to Got (32 buffered). It is closed when
// the test ends.
type MailSink struct {
	Host string
	Port int
	Got  chan Mail
}

// StartMailSink starts a MailSink.
func StartMailSink(t testing.TB) *MailSink {
	t.Helper()
	sink := &MailSink{Host: "127.0.0.1", Got: make(chan Mail, 32)}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &sinkSession{sink: sink}, nil }))
	srv.Domain = "localhost"
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	sink.Port = ln.Addr().(*net.TCPAddr).Port
	return sink
}

// Addr is the sink's host:port.
func (s *MailSink) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// WaitMail returns the first mail whose subject contains every part,
// failing the test after limit; the mails passed over on the way are
// returned in skipped.
func (s *MailSink) WaitMail(t testing.TB, limit time.Duration, parts ...string) (m Mail, skipped []Mail) {
	t.Helper()
	deadline := time.After(limit)
	for {
		select {
		case m := <-s.Got:
			ok := true
			for _, p := range parts {
				ok = ok && strings.Contains(m.Subject, p)
			}
			if ok {
				return m, skipped
			}
			skipped = append(skipped, m)
		case <-deadline:
			t.Fatalf("no mail with %q within %s (other mails: %+v)", parts, limit, skipped)
		}
	}
}

type sinkSession struct {
	sink *MailSink
	from string
	to   []string
}

func (s *sinkSession) Reset()        { s.from, s.to = "", nil }
func (s *sinkSession) Logout() error { return nil }

func (s *sinkSession) Mail(from string, _ *smtp.MailOptions) error {
	s.from = from
	return nil
}

func (s *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}

func (s *sinkSession) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	msg, err := mail.ReadMessage(strings.NewReader(string(raw)))
	if err != nil {
		return err
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(msg.Body)
	s.sink.Got <- Mail{From: s.from, To: s.to, Subject: subject, Body: string(body)}
	return nil
}
