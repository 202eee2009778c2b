package entratoken

import (
	"fmt"
	"time"
)

// ConnStats are a client layer's per-connection counts, for Status.
type ConnStats struct {
	Current   int // connections authenticated with the token in use
	Older     int // connections still on an older token
	Unmovable int // connections that cannot be moved now (blocked, RESP2-subscribed, retired)
}

// Status is a snapshot of a client's token and its refresher, for health
// checks and dashboards.
type Status struct {
	State               TokenState            // the token's state when the snapshot was taken
	Username            string                // the Redis user name in use; Options.Username before the first token
	ExpiresOn           time.Time             // expiry of the token in use; zero before the first token
	LastRefresh         time.Time             // when the token in use was received
	NextRefresh         time.Time             // when the refresher next asks the credential; zero after Close
	Rotations           int64                 // tokens installed after the first one
	TokenRequests       int64                 // GetToken calls, retries included
	ConsecutiveFailures int                   // failed attempts since the last success
	LastError           error                 // the last failure, nil after a success
	LastErrorAt         time.Time             // when LastError happened
	Connections         int                   // connections subscribed to token updates
	Conns               ConnStats             // the client layer's per-connection counts
	ReauthFailures      int64                 // AUTHs the server refused
	Dial                DialState             // whether new connections are dialed: DialOpen, or held back after the server refused the token in use
	RefusedUntil        time.Time             // with DialRefused: when the next new connection is tried; zero otherwise
	DialRefusals        int64                 // refused authentications of new connections
	Reauths             int64                 // AUTHs with a new token the server accepted on live connections
	RefreshFailures     map[FailureKind]int64 // failed refresh attempts since the start, by kind (FailureKindOf); nil before the first
	DroppedEvents       int64                 // events dropped because a callback was too slow (see Options)
	Closed              bool                  // Close was called: nothing is refreshed any more
}

// Valid reports whether the status has a usable token at now (one that has
// not expired, with the same margin that new connections get), on a client
// that is not closed, that the server has not refused for a new connection
// (Dial is DialOpen): what a health check wants to know.
func (s Status) Valid(now time.Time) bool {
	return s.Dial == DialOpen && s.StateAt(now).Usable()
}

// StateAt returns the state of the snapshot's token at now: the state it
// had when the snapshot was taken is State.
func (s Status) StateAt(now time.Time) TokenState {
	return tokenState(s.Closed, s.LastRefresh, s.ExpiresOn, s.NextRefresh, now)
}

// DialState says whether a client may dial a new connection now: after the
// server refused the token in use for a new connection, new connections are
// held back for a while (Status.Dial shows it).
type DialState int

// The dial states. A new token, or a new connection that authenticated,
// returns to DialOpen.
const (
	DialOpen    DialState = iota // no refusal of the token in use: new connections are dialed
	DialRefused                  // the server refused the token in use for a new connection: none is dialed before Status.RefusedUntil
	DialProbe                    // refused, and the backoff is over: the next dial is let through, alone, to try the token again
)

// String returns the state's name.
func (d DialState) String() string {
	switch d {
	case DialOpen:
		return "open"
	case DialRefused:
		return "refused"
	case DialProbe:
		return "probe"
	}
	return fmt.Sprintf("DialState(%d)", int(d))
}

// TokenState is the state of a client's token at one instant. Every caller
// gets it from one function (tokenState, through Status.StateAt), and decides
// with one switch.
type TokenState int

// The states of a token, in the order a client goes through them.
const (
	StateNoToken TokenState = iota // no token received yet
	StateFresh                     // a usable token; its refresh is not due yet
	StateDue                       // a usable token; the refresher is asking for the next one
	StateExpired                   // the token expired (or is about to) and no new one was received
	StateClosed                    // Close was called
)

// String returns the state's name.
func (s TokenState) String() string {
	switch s {
	case StateNoToken:
		return "no token"
	case StateFresh:
		return "fresh"
	case StateDue:
		return "due"
	case StateExpired:
		return "expired"
	case StateClosed:
		return "closed"
	}
	return fmt.Sprintf("TokenState(%d)", int(s))
}

// Usable reports whether a new connection can authenticate with the token
// in this state (StateFresh or StateDue).
func (s TokenState) Usable() bool { return s == StateFresh || s == StateDue }

// tokenState is the one function that says what state a token is in at now.
// received and expiresOn are zero when no token is held; refreshAt is when
// the refresher starts asking for the next one. A token is expired a little
// before its expiry (a twentieth of its life, at most a second), so that a
// connection does not authenticate with a token that expires during the
// handshake.
func tokenState(closed bool, received, expiresOn, refreshAt, now time.Time) TokenState {
	switch {
	case closed:
		return StateClosed
	case expiresOn.IsZero():
		return StateNoToken
	case !now.Before(expiresOn.Add(-min(time.Second, expiresOn.Sub(received)/20))):
		return StateExpired
	case !now.Before(refreshAt):
		return StateDue
	default:
		return StateFresh
	}
}

// TokenRefreshed describes a token that was just installed. It never holds the token.
type TokenRefreshed struct {
	Username  string    // the Redis user name in use
	ExpiresOn time.Time // the new token's expiry
	RefreshAt time.Time // when the refresher will start asking for the next one
	Attempts  int       // attempts it took, 1 when the first one succeeded
}

// RefreshFailed describes a failed refresh attempt.
type RefreshFailed struct {
	Attempt   int       // consecutive failures, 1 for the first
	Err       error     // why it failed
	NextRetry time.Time // when the refresher tries again
	ExpiresOn time.Time // expiry of the token still in use; zero when there is none
}

// ReauthFailed describes a live connection that the server refused to move to a
// new token. The connection keeps its previous authentication until it expires.
type ReauthFailed struct {
	Err error // the server's reply, explained (see AuthError)
}
