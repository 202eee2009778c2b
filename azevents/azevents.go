package azevents

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Channel is the pub/sub channel Azure Cache for Redis publishes its
// maintenance notifications on.
const Channel = "AzureRedisEvents"

// MaxLen is the longest notification Parse accepts, in bytes. Real ones are
// about 150 bytes.
const MaxLen = 4096

// Type is a notification's NotificationType. Parse keeps a type it does not
// know as sent (Type.Known reports false for it).
type Type string

// The notification types Azure Cache for Redis publishes, in the order of a
// maintenance.
const (
	// Scheduled: a maintenance is planned, up to about 15 minutes ahead.
	Scheduled Type = "NodeMaintenanceScheduled"
	// Starting: about 20 seconds before the maintenance of the node.
	Starting Type = "NodeMaintenanceStarting"
	// Start: the maintenance is imminent (less than 5 seconds); the node
	// closes its connections.
	Start Type = "NodeMaintenanceStart"
	// FailoverComplete: a replica has been promoted to primary; new
	// connections reach the new primary.
	FailoverComplete Type = "NodeMaintenanceFailoverComplete"
	// Ended: the node's maintenance is over (its replica can serve reads again).
	Ended Type = "NodeMaintenanceEnded"
	// ScaleComplete: a scaling operation has completed.
	ScaleComplete Type = "NodeMaintenanceScaleComplete"
)

// legacyFailover is the name early Azure releases used for FailoverComplete
// (StackExchange.Redis maps it too); Parse turns it into FailoverComplete.
const legacyFailover = "NodeMaintenanceFailover"

// Types lists the known types in the order of a maintenance.
var Types = []Type{Scheduled, Starting, Start, FailoverComplete, Ended, ScaleComplete}

// Known reports whether t is one of the types this package documents.
func (t Type) Known() bool {
	switch t {
	case Scheduled, Starting, Start, FailoverComplete, Ended, ScaleComplete:
		return true
	}
	return false
}

// Announces reports whether t announces a maintenance to come or in
// progress (Scheduled, Starting, Start); Tracker keeps such an event as the
// next maintenance until an Ended (or ScaleComplete) event for the same node.
func (t Type) Announces() bool { return t == Scheduled || t == Starting || t == Start }

// The known field names, as Azure spells them. Parse matches them ignoring
// ASCII case.
const (
	FieldNotificationType = "NotificationType"
	FieldStartTimeInUTC   = "StartTimeInUTC"
	FieldIsReplica        = "IsReplica"
	FieldIPAddress        = "IPAddress"
	FieldSSLPort          = "SSLPort"
	FieldNonSSLPort       = "NonSSLPort"
)

// timeLayout is StartTimeInUTC's format (.NET's sortable "s" format, in UTC,
// without a zone); fractional seconds are accepted and written when present.
const timeLayout = "2006-01-02T15:04:05.999999999"

// Field is one pair of a notification that Event has no field for.
type Field struct {
	Name, Value string
}

// Event is one maintenance notification. The zero value of a field means it
// was absent.
type Event struct {
	Type       Type       // NotificationType (required)
	StartTime  time.Time  // StartTimeInUTC, in UTC: when the announced maintenance starts (or the event happened)
	IsReplica  bool       // IsReplica: the node is a replica
	IPAddress  netip.Addr // IPAddress of the node; invalid when absent
	SSLPort    int        // SSLPort: the node's own TLS port (15000 + 2×shard on Azure)
	NonSSLPort int        // NonSSLPort: the node's own plaintext port
	Extra      []Field    // fields this package does not know, in their order
}

// ErrMalformed is wrapped by every error of Parse.
var ErrMalformed = errors.New("entraredis: malformed maintenance event")

// ParseError says why Parse refused a notification. It never holds the
// whole message: Field is the offending field's name (at most 64 bytes,
// empty when the message as a whole is wrong).
type ParseError struct {
	Field  string // the field at fault, or "" for the message as a whole
	Reason string // what is wrong
}

func (e *ParseError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("%v: %s", ErrMalformed, e.Reason)
	}
	return fmt.Sprintf("%v: field %q: %s", ErrMalformed, e.Field, e.Reason)
}

// Unwrap returns ErrMalformed.
func (e *ParseError) Unwrap() error { return ErrMalformed }

// Hint says what to do about it.
func (e *ParseError) Hint() string {
	return "the notification on " + Channel + " does not follow Azure's documented format; it was dropped and counted (a newer Azure format may need a newer entraredis)"
}

func malformed(field, reason string) error {
	if len(field) > 64 {
		field = field[:64]
		for !utf8.ValidString(field) {
			field = field[:len(field)-1]
		}
	}
	return &ParseError{Field: field, Reason: reason}
}

// Parse reads one notification strictly: at most MaxLen bytes of UTF-8
// without control characters; an even number of '|'-separated items, read
// as name|value pairs; non-empty, distinct names (ignoring ASCII case);
// NotificationType present and non-empty; StartTimeInUTC as
// 2006-01-02T15:04:05 (fractional seconds and a trailing Z accepted);
// IsReplica True or False (any case); IPAddress an IPv4 or IPv6 address;
// SSLPort and NonSSLPort decimal numbers from 0 to 65535. Unknown fields go
// to Extra; an unknown type is kept as sent; the legacy type
// NodeMaintenanceFailover becomes FailoverComplete. Every error wraps
// ErrMalformed and is a *ParseError. Parse never panics.
func Parse(msg string) (Event, error) {
	var ev Event
	if len(msg) > MaxLen {
		return ev, malformed("", fmt.Sprintf("longer than %d bytes", MaxLen))
	}
	if msg == "" {
		return ev, malformed("", "empty")
	}
	if !utf8.ValidString(msg) {
		return ev, malformed("", "not UTF-8")
	}
	for i := 0; i < len(msg); i++ {
		if c := msg[i]; c < 0x20 || c == 0x7f {
			return ev, malformed("", "control character at byte "+strconv.Itoa(i))
		}
	}
	if strings.Count(msg, "|")%2 == 0 {
		return ev, malformed("", "odd number of items: not name|value pairs")
	}
	var seen [6]bool // known fields seen, in the order of the Field constants
	rest := msg
	for rest != "" {
		name, after, _ := strings.Cut(rest, "|")
		value, next, _ := strings.Cut(after, "|")
		rest = next
		if name == "" {
			return Event{}, malformed("", "empty field name")
		}
		k := knownField(name)
		if k < 0 {
			for _, f := range ev.Extra {
				if strings.EqualFold(f.Name, name) {
					return Event{}, malformed(name, "repeated")
				}
			}
			ev.Extra = append(ev.Extra, Field{Name: name, Value: value})
			continue
		}
		if seen[k] {
			return Event{}, malformed(name, "repeated")
		}
		seen[k] = true
		if err := ev.set(k, name, value); err != nil {
			return Event{}, err
		}
	}
	if !seen[0] {
		return Event{}, malformed(FieldNotificationType, "missing")
	}
	return ev, nil
}

var fieldNames = [6]string{FieldNotificationType, FieldStartTimeInUTC, FieldIsReplica, FieldIPAddress, FieldSSLPort, FieldNonSSLPort}

// knownField returns the index of name in fieldNames (ignoring ASCII case), or -1.
func knownField(name string) int {
	for i, f := range fieldNames {
		if strings.EqualFold(name, f) {
			return i
		}
	}
	return -1
}

func (ev *Event) set(k int, name, value string) error {
	switch k {
	case 0:
		if value == "" {
			return malformed(name, "empty")
		}
		if value == legacyFailover {
			value = string(FailoverComplete)
		}
		ev.Type = Type(value)
	case 1:
		t, err := parseTime(value)
		if err != nil {
			return malformed(name, "not a time like 2006-01-02T15:04:05")
		}
		ev.StartTime = t
	case 2:
		switch {
		case strings.EqualFold(value, "true"):
			ev.IsReplica = true
		case strings.EqualFold(value, "false"):
			ev.IsReplica = false
		default:
			return malformed(name, "not True or False")
		}
	case 3:
		a, err := netip.ParseAddr(value)
		if err != nil {
			return malformed(name, "not an IP address")
		}
		ev.IPAddress = a
	case 4, 5:
		p, ok := parsePort(value)
		if !ok {
			return malformed(name, "not a port number (0 to 65535)")
		}
		if k == 4 {
			ev.SSLPort = p
		} else {
			ev.NonSSLPort = p
		}
	}
	return nil
}

func parseTime(v string) (time.Time, error) {
	v = strings.TrimSuffix(v, "Z")
	return time.Parse(timeLayout, v) // fixed-width fields: "2006-1-2" is refused
}

func parsePort(v string) (int, bool) {
	if v == "" || len(v) > 5 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, n <= 65535
}

// MarshalText returns the wire form of ev, known fields first, in Azure's
// order, then Extra; absent fields are left out. Parse(string(text))
// gives ev back for any ev that Parse returned.
func (ev Event) MarshalText() ([]byte, error) {
	if ev.Type == "" {
		return nil, malformed(FieldNotificationType, "missing")
	}
	var b []byte
	add := func(name, value string) {
		if len(b) > 0 {
			b = append(b, '|')
		}
		b = append(b, name...)
		b = append(b, '|')
		b = append(b, value...)
	}
	add(FieldNotificationType, string(ev.Type))
	if !ev.StartTime.IsZero() {
		add(FieldStartTimeInUTC, ev.StartTime.UTC().Format(timeLayout))
	}
	add(FieldIsReplica, map[bool]string{true: "True", false: "False"}[ev.IsReplica])
	if ev.IPAddress.IsValid() {
		add(FieldIPAddress, ev.IPAddress.String())
	}
	if ev.SSLPort != 0 {
		add(FieldSSLPort, strconv.Itoa(ev.SSLPort))
	}
	if ev.NonSSLPort != 0 {
		add(FieldNonSSLPort, strconv.Itoa(ev.NonSSLPort))
	}
	for _, f := range ev.Extra {
		add(f.Name, f.Value)
	}
	return b, nil
}

// UnmarshalText is Parse.
func (ev *Event) UnmarshalText(text []byte) error {
	e, err := Parse(string(text))
	if err != nil {
		return err
	}
	*ev = e
	return nil
}

// String returns the wire form (MarshalText), or "" for an event without a type.
func (ev Event) String() string {
	b, _ := ev.MarshalText()
	return string(b)
}

// LogValue logs the event as a group of its fields.
func (ev Event) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("type", string(ev.Type))}
	if !ev.StartTime.IsZero() {
		attrs = append(attrs, slog.Time("start", ev.StartTime))
	}
	attrs = append(attrs, slog.Bool("replica", ev.IsReplica))
	if ev.IPAddress.IsValid() {
		attrs = append(attrs, slog.String("ip", ev.IPAddress.String()))
	}
	if ev.SSLPort != 0 {
		attrs = append(attrs, slog.Int("ssl_port", ev.SSLPort))
	}
	if ev.NonSSLPort != 0 {
		attrs = append(attrs, slog.Int("non_ssl_port", ev.NonSSLPort))
	}
	for _, f := range ev.Extra {
		attrs = append(attrs, slog.String(f.Name, f.Value))
	}
	return slog.GroupValue(attrs...)
}
