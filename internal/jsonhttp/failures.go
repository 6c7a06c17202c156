package jsonhttp

import "errors"

// Failures says what a caller makes of each way Do can fail; Map applies
// it to Do's error. A nil func leaves that kind of error as Do returned it.
type Failures struct {
	// Transport is given a *TransportError's cause (a context error, a
	// net.Error).
	Transport func(cause error) error
	// Status is given a non-2xx answer.
	Status func(r Response) error
	// Decode is given why a 2xx answer did not decode into out.
	Decode func(cause error) error
	// Build is given why the call could not be built (nothing was sent).
	Build func(err error) error
}

// Map turns err, an error of Do, into the caller's own error; nil stays
// nil.
func (f Failures) Map(err error) error {
	var (
		te *TransportError
		se *StatusError
		de *DecodeError
	)
	switch {
	case err == nil:
		return nil
	case errors.As(err, &te):
		if f.Transport != nil {
			return f.Transport(te.Err)
		}
	case errors.As(err, &se):
		if f.Status != nil {
			return f.Status(se.Response)
		}
	case errors.As(err, &de):
		if f.Decode != nil {
			return f.Decode(de.Err)
		}
	default:
		if f.Build != nil {
			return f.Build(err)
		}
	}
	return err
}

// Retryable reports whether err, an error of Do, is worth sending the call
// again for: the round trip failed (a *TransportError) or the server
// answered 5xx.
func Retryable(err error) bool {
	var te *TransportError
	var se *StatusError
	return errors.As(err, &te) || errors.As(err, &se) && se.Status >= 500
}
