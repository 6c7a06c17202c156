package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/wneessen/go-mail"
)

// SendMail delivers one plain-text alert email through cfg's SMTP server.
// STARTTLS follows cfg.StartTLS: "auto" upgrades when the server offers it,
// "require" refuses a server that does not, "off" never upgrades. SMTP auth
// is used when cfg.User is set. Errors name the server's host:port.
func SendMail(ctx context.Context, cfg SMTPConfig, subject, body string) error {
	server := net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port))
	if !cfg.Enabled() {
		return errors.New("alert email not configured: set AGENTOS_SMTP_HOST and AGENTOS_SMTP_TO (or --smtp-host/--smtp-to)")
	}
	policy := mail.TLSOpportunistic
	switch cfg.StartTLS {
	case "require":
		policy = mail.TLSMandatory
	case "off":
		policy = mail.NoTLS
	case "auto", "":
	default:
		return fmt.Errorf("smtp %s: starttls %q is not auto, require or off", server, cfg.StartTLS)
	}
	msg := mail.NewMsg()
	if err := msg.From(cfg.From); err != nil {
		return fmt.Errorf("smtp %s: sender %q: %w", server, cfg.From, err)
	}
	if err := msg.To(cfg.To...); err != nil {
		return fmt.Errorf("smtp %s: recipients %v: %w", server, cfg.To, err)
	}
	msg.Subject(subject)
	msg.SetDate()
	msg.SetMessageID()
	msg.SetBodyString(mail.TypeTextPlain, body)

	opts := []mail.Option{mail.WithPort(cfg.Port), mail.WithTLSPolicy(policy), mail.WithTimeout(15 * time.Second)}
	if cfg.User != "" {
		// Autodiscovery picks the strongest mechanism and never sends a
		// password in the clear over an unencrypted link; a relay on
		// loopback (no TLS) gets PLAIN, which go-mail allows there.
		authType := mail.SMTPAuthAutoDiscover
		if loopbackHost(cfg.Host) {
			authType = mail.SMTPAuthPlain
		}
		opts = append(opts, mail.WithSMTPAuth(authType), mail.WithUsername(cfg.User), mail.WithPassword(cfg.Password))
	}
	client, err := mail.NewClient(cfg.Host, opts...)
	if err != nil {
		return fmt.Errorf("smtp %s: %w", server, err)
	}
	if err := client.DialAndSendWithContext(ctx, msg); err != nil {
		return fmt.Errorf("smtp %s: send alert: %w", server, err)
	}
	return nil
}
