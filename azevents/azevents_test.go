package azevents

import (
	"errors"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

const docStarting = "NotificationType|NodeMaintenanceStarting|StartTimeInUTC|2020-10-14T16:26:10|IsReplica|False|IPAddress|52.158.249.185|SSLPort|15001|NonSSLPort|13001"

func TestParseDocumentedExample(t *testing.T) {
	ev, err := Parse(docStarting)
	if err != nil {
		t.Fatal(err)
	}
	want := Event{
		Type:       Starting,
		StartTime:  time.Date(2020, 10, 14, 16, 26, 10, 0, time.UTC),
		IPAddress:  netip.MustParseAddr("52.158.249.185"),
		SSLPort:    15001,
		NonSSLPort: 13001,
	}
	if !reflect.DeepEqual(ev, want) {
		t.Fatalf("Parse = %#v, want %#v", ev, want)
	}
	if ev.StartTime.Location() != time.UTC {
		t.Errorf("StartTime location %v, want UTC", ev.StartTime.Location())
	}
	if got := ev.String(); got != docStarting {
		t.Errorf("String = %q, want the documented message back", got)
	}
}

func TestParseAccepts(t *testing.T) {
	for _, tc := range []struct {
		msg  string
		want Event
	}{
		{"NotificationType|NodeMaintenanceEnded", Event{Type: Ended}},
		{"notificationtype|NodeMaintenanceStart|isreplica|TRUE", Event{Type: Start, IsReplica: true}},
		{"NotificationType|NodeMaintenanceFailover", Event{Type: FailoverComplete}},
		{"NotificationType|NodeMaintenanceScaleComplete|StartTimeInUTC|2021-09-23T12:34:19Z", Event{Type: ScaleComplete, StartTime: time.Date(2021, 9, 23, 12, 34, 19, 0, time.UTC)}},
		{"NotificationType|NodeMaintenanceScheduled|StartTimeInUTC|2021-09-23T12:34:19.25", Event{Type: Scheduled, StartTime: time.Date(2021, 9, 23, 12, 34, 19, 250e6, time.UTC)}},
		{"NotificationType|SomethingNew|IPAddress|2001:db8::1|SSLPort|0|NonSSLPort|65535", Event{Type: "SomethingNew", IPAddress: netip.MustParseAddr("2001:db8::1"), NonSSLPort: 65535}},
		{"NotificationType|NodeMaintenanceStart|Shard|3|Note|", Event{Type: Start, Extra: []Field{{"Shard", "3"}, {"Note", ""}}}},
		{"Shard|3|NotificationType|NodeMaintenanceStart", Event{Type: Start, Extra: []Field{{"Shard", "3"}}}},
	} {
		ev, err := Parse(tc.msg)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.msg, err)
			continue
		}
		if !reflect.DeepEqual(ev, tc.want) {
			t.Errorf("Parse(%q) = %#v, want %#v", tc.msg, ev, tc.want)
		}
		if tc.want.Type.Known() != (tc.want.Type != "SomethingNew") {
			t.Errorf("%q: Known() = %v", tc.want.Type, tc.want.Type.Known())
		}
	}
}

func TestParseRefuses(t *testing.T) {
	for _, tc := range []struct{ msg, field, reason string }{
		{"", "", "empty"},
		{strings.Repeat("a|", MaxLen/2+1), "", "longer than"},
		{"NotificationType", "", "odd number"},
		{"NotificationType|NodeMaintenanceStart|", "", "odd number"},
		{"NotificationType|NodeMaintenanceStart|IsReplica", "", "odd number"},
		{"|NodeMaintenanceStart", "", "empty field name"},
		{"IsReplica|False", "NotificationType", "missing"},
		{"NotificationType|", "NotificationType", "empty"},
		{"NotificationType|A|notificationtype|B", "notificationtype", "repeated"},
		{"NotificationType|A|X|1|x|2", "x", "repeated"},
		{"NotificationType|A|StartTimeInUTC|2020-10-14 16:26:10", "StartTimeInUTC", "not a time"},
		{"NotificationType|A|StartTimeInUTC|2020-1-14T16:26:10", "StartTimeInUTC", "not a time"},
		{"NotificationType|A|StartTimeInUTC|2020-10-14T16:26:10+02:00", "StartTimeInUTC", "not a time"},
		{"NotificationType|A|IsReplica|yes", "IsReplica", "not True or False"},
		{"NotificationType|A|IPAddress|host.example", "IPAddress", "not an IP"},
		{"NotificationType|A|SSLPort|65536", "SSLPort", "not a port"},
		{"NotificationType|A|SSLPort|-1", "SSLPort", "not a port"},
		{"NotificationType|A|NonSSLPort|+80", "NonSSLPort", "not a port"},
		{"NotificationType|A|NonSSLPort|", "NonSSLPort", "not a port"},
		{"NotificationType|A\r\n", "", "control character"},
		{"NotificationType|\xff", "", "not UTF-8"},
		{strings.Repeat("N", 100) + "|A|" + strings.Repeat("N", 100) + "|B", strings.Repeat("N", 64), "repeated"},
	} {
		_, err := Parse(tc.msg)
		var pe *ParseError
		if !errors.As(err, &pe) || !errors.Is(err, ErrMalformed) {
			t.Errorf("Parse(%.40q) = %v, want a *ParseError wrapping ErrMalformed", tc.msg, err)
			continue
		}
		if pe.Field != tc.field || !strings.Contains(pe.Reason, tc.reason) {
			t.Errorf("Parse(%.40q): field %q reason %q, want field %q reason ~%q", tc.msg, pe.Field, pe.Reason, tc.field, tc.reason)
		}
		if !strings.HasPrefix(err.Error(), "entraredis: malformed maintenance event") || strings.Count(err.Error(), "entraredis:") != 1 {
			t.Errorf("error text %q: want one entraredis: prefix", err)
		}
		if pe.Hint() == "" {
			t.Error("empty Hint")
		}
	}
}

func TestMarshalTextNeedsType(t *testing.T) {
	if _, err := (Event{}).MarshalText(); !errors.Is(err, ErrMalformed) {
		t.Fatalf("MarshalText of an event without type: %v", err)
	}
	var ev Event
	if err := ev.UnmarshalText([]byte(docStarting)); err != nil || ev.Type != Starting {
		t.Fatalf("UnmarshalText: %v, %v", ev, err)
	}
	if err := ev.UnmarshalText([]byte("x")); err == nil || ev.Type != Starting {
		t.Fatalf("a failed UnmarshalText must leave the event alone: %v, %v", ev, err)
	}
}

// referenceParse is an independent, lenient reading of the format, written
// after StackExchange.Redis' AzureMaintenanceEvent: pairs taken left to
// right, exact field names, a field whose value does not parse ignored.
// For every message Parse accepts with exact-case names, both must agree.
func referenceParse(msg string) (typ string, start time.Time, replica bool, ip netip.Addr, ssl, nonSSL int) {
	parts := strings.Split(msg, "|")
	for i := 0; i+1 < len(parts); i += 2 {
		k, v := parts[i], parts[i+1]
		if k == "" || v == "" {
			continue
		}
		switch k {
		case "NotificationType":
			typ = v
			if v == "NodeMaintenanceFailover" {
				typ = "NodeMaintenanceFailoverComplete"
			}
		case "StartTimeInUTC":
			if t, err := time.ParseInLocation("2006-01-02T15:04:05.999999999Z", strings.TrimSuffix(v, "Z")+"Z", time.UTC); err == nil {
				start = t
			}
		case "IsReplica":
			if b, err := strconv.ParseBool(strings.ToLower(v)); err == nil && (strings.EqualFold(v, "true") || strings.EqualFold(v, "false")) {
				replica = b
			}
		case "IPAddress":
			if a, err := netip.ParseAddr(v); err == nil {
				ip = a
			}
		case "SSLPort":
			if n, err := strconv.Atoi(v); err == nil {
				ssl = n
			}
		case "NonSSLPort":
			if n, err := strconv.Atoi(v); err == nil {
				nonSSL = n
			}
		}
	}
	return
}

func exactNames(msg string) bool {
	parts := strings.Split(msg, "|")
	for i := 0; i < len(parts); i += 2 {
		if k := knownField(parts[i]); k >= 0 && parts[i] != fieldNames[k] {
			return false
		}
	}
	return true
}

// checkParse is the property both the fuzz test and the differential test
// check: no panic; an accepted message agrees with the reference and
// round-trips through MarshalText; a refused one gives a *ParseError.
func checkParse(t *testing.T, msg string) {
	ev, err := Parse(msg)
	if err != nil {
		var pe *ParseError
		if !errors.As(err, &pe) || !errors.Is(err, ErrMalformed) || len(pe.Field) > 64 {
			t.Fatalf("Parse(%q): error %v is not a proper *ParseError", msg, err)
		}
		return
	}
	if ev.Type == "" {
		t.Fatalf("Parse(%q) accepted an event without type", msg)
	}
	if exactNames(msg) {
		typ, start, replica, ip, ssl, nonSSL := referenceParse(msg)
		if typ != string(ev.Type) || !start.Equal(ev.StartTime) || replica != ev.IsReplica || ip != ev.IPAddress || ssl != ev.SSLPort || nonSSL != ev.NonSSLPort {
			t.Fatalf("Parse(%q) = %#v; the reference reads %q %v %v %v %d %d", msg, ev, typ, start, replica, ip, ssl, nonSSL)
		}
	}
	text, err := ev.MarshalText()
	if err != nil {
		t.Fatalf("MarshalText(Parse(%q)): %v", msg, err)
	}
	again, err := Parse(string(text))
	if err != nil {
		t.Fatalf("Parse(MarshalText(Parse(%q))) = %v (text %q)", msg, err, text)
	}
	if !reflect.DeepEqual(normalize(again), normalize(ev)) {
		t.Fatalf("round trip of %q: %#v, want %#v", msg, again, ev)
	}
}

// normalize makes empty and nil Extra equal.
func normalize(ev Event) Event {
	if len(ev.Extra) == 0 {
		ev.Extra = nil
	}
	return ev
}

var seeds = []string{
	docStarting,
	"NotificationType|NodeMaintenanceEnded|StartTimeInUTC|2020-10-14T16:27:42|IsReplica|True|IPAddress|52.158.249.185|SSLPort|15001|NonSSLPort|13001",
	"NotificationType|NodeMaintenanceFailoverComplete|IsReplica|false|IPAddress|::1",
	"NotificationType|NodeMaintenanceScheduled|StartTimeInUTC|2021-09-23T12:34:19.5Z|Extra|x|Other|",
	"NotificationType|NodeMaintenanceFailover",
	"NotificationType|X|SSLPort|00080",
	"IPAddress|fe80::1%eth0|NotificationType|Y",
	"|||",
	"NotificationType|A|StartTimeInUTC|2020-02-30T00:00:00",
}

func TestParseDifferential(t *testing.T) {
	for _, s := range seeds {
		checkParse(t, s)
	}
	// Every known message with each field's value replaced in turn by a
	// value of another field: both parsers must agree whenever Parse accepts.
	values := []string{"NodeMaintenanceStart", "2020-10-14T16:26:10", "True", "false", "10.0.0.1", "::ffff:1.2.3.4", "15001", "0", "65535", "99999", "", "Z", "1.5"}
	for _, name := range fieldNames {
		for _, v := range values {
			checkParse(t, strings.Replace(docStarting, name+"|", name+"|"+v+"@", 1))
			checkParse(t, "NotificationType|NodeMaintenanceStart|"+name+"|"+v)
		}
	}
	// And the reference agrees on every documented type.
	for _, typ := range Types {
		checkParse(t, strings.Replace(docStarting, string(Starting), string(typ), 1))
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, msg string) {
		checkParse(t, msg)
	})
}
