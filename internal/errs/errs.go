// Package errs holds what the library's errors share across its packages:
// the one "entraredis: " prefix of every message, a sentinel error with
// details, and the test of a server's error reply.
package errs

import (
	"errors"
	"strings"
)

// Prefix starts every message of the library's errors, once.
const Prefix = "entraredis: "

// Message returns err's message without Prefix, to append it to a message
// that already has it.
func Message(err error) string { return strings.TrimPrefix(err.Error(), Prefix) }

// Wrapped is a sentinel with details: "entraredis: <sentinel>: <detail>: <cause>",
// one prefix whatever the nesting. It matches both the sentinel and the cause.
type Wrapped struct {
	Sentinel error
	Detail   string // may be empty
	Cause    error  // may be nil
}

// Error returns the sentinel's message, then the detail and the cause's.
func (e *Wrapped) Error() string {
	var b strings.Builder
	b.WriteString(e.Sentinel.Error())
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	if e.Cause != nil {
		b.WriteString(": ")
		b.WriteString(Message(e.Cause))
	}
	return b.String()
}

// Unwrap returns the sentinel and the cause.
func (e *Wrapped) Unwrap() []error {
	if e.Cause == nil {
		return []error{e.Sentinel}
	}
	return []error{e.Sentinel, e.Cause}
}

// redisReply is go-redis' redis.Error, matched without importing go-redis.
type redisReply interface {
	error
	RedisError()
}

// ReplyHasPrefix reports whether err is a server reply whose text starts
// with prefix: the go-redis reply in err's chain when there is one (as
// redis.HasErrorPrefix reads it), else err's own text (rueidis' replies). An
// "ERR " before the code is skipped, as go-redis does.
func ReplyHasPrefix(err error, prefix string) bool {
	msg := err.Error()
	var r redisReply
	if errors.As(err, &r) {
		msg = r.Error()
	}
	return strings.HasPrefix(strings.TrimPrefix(msg, "ERR "), prefix)
}
