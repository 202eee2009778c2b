package endpoint

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/entraredis/entraredis/entratoken"
	"github.com/entraredis/entraredis/internal/errs"
)

// The TLS ports of Azure's Redis services, named by CheckAddr's errors.
const (
	portCache   = "6380"  // Azure Cache for Redis
	portManaged = "10000" // Azure Managed Redis
)

// CheckAddr checks one Redis address and returns it as host:port. It accepts
// host:port and rediss://host:port URLs (an empty path or "/" only). It
// refuses an address without a port (naming Azure's ports), redis:// URLs
// (Azure's Entra endpoints require TLS), and URLs with user info, which would
// carry a secret that this library replaces with the token anyway.
func CheckAddr(addr string) (hostport string, err error) {
	host, port, err := SplitAddr(addr)
	if err != nil {
		return "", err
	}
	if port == 0 {
		return "", fmt.Errorf(errs.Prefix+"address %q has no port: Azure Cache for Redis listens on %s, Azure Managed Redis on %s (for example %s)", redactURL(addr), portCache, portManaged, net.JoinHostPort(host, portCache))
	}
	return net.JoinHostPort(host, strconv.Itoa(port)), nil
}

// SplitAddr is CheckAddr for tools that default the port (the doctor
// command): it also accepts a host without a port, and then returns port 0.
func SplitAddr(addr string) (host string, port int, err error) {
	in := redactURL(addr)
	if scheme, _, ok := strings.Cut(addr, "://"); ok {
		u, err := url.Parse(addr)
		if err != nil {
			return "", 0, fmt.Errorf(errs.Prefix+"address %q is not a valid URL", in)
		}
		switch strings.ToLower(scheme) {
		case "rediss":
		case "redis":
			return "", 0, fmt.Errorf(errs.Prefix+"address %q: redis:// is plaintext, and Azure requires TLS: use rediss://%s", in, u.Host)
		default:
			return "", 0, fmt.Errorf(errs.Prefix+"address %q: unknown scheme %q: use host:port or rediss://host:port", in, scheme)
		}
		if u.User != nil {
			return "", 0, fmt.Errorf(errs.Prefix+"address %q: remove the user info: it would carry a secret, and the password is the Microsoft Entra token (the user name comes from the token, or Options.Username)", in)
		}
		if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			return "", 0, fmt.Errorf(errs.Prefix+"address %q: only rediss://host:port is read: set the database and other settings in the redis options", in)
		}
		addr = u.Host
	}
	h, p, err := net.SplitHostPort(addr)
	var ae *net.AddrError
	switch {
	case errors.As(err, &ae) && ae.Err == "missing port in address":
		h, p = strings.TrimSuffix(strings.TrimPrefix(addr, "["), "]"), ""
	case err != nil:
		return "", 0, fmt.Errorf(errs.Prefix+"address %q is not host:port: %s", in, strings.TrimPrefix(err.Error(), "address "+addr+": "))
	}
	if h == "" {
		return "", 0, fmt.Errorf(errs.Prefix+"address %q has no host", in)
	}
	if p == "" {
		return h, 0, nil
	}
	if port, err = strconv.Atoi(p); err != nil || port <= 0 || port > 65535 {
		return "", 0, fmt.Errorf(errs.Prefix+"address %q: port %q is not a number from 1 to 65535 (Azure Cache for Redis: %s, Azure Managed Redis: %s)", in, p, portCache, portManaged)
	}
	return h, port, nil
}

// redactURL returns a URL with its user info (a secret) left out, for error messages.
func redactURL(s string) string {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return s
	}
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		if slash := strings.Index(rest, "/"); slash < 0 || at < slash {
			rest = "[redacted]@" + rest[at+1:]
		}
	}
	return scheme + "://" + rest
}

// TLSConfig returns the TLS configuration for the addresses (checked by
// CheckAddr, host:port): a clone of user's, or a new one, with TLS 1.2 at
// least and every certificate checked against the first address's host
// (ServerName), so that cluster nodes named by IP address are verified
// against the host name too. With Options.Plaintext it returns nil, after
// checking that every address is loopback (or that
// Options.AllowPlaintextRemote is set).
func TLSConfig(addrs []string, user *tls.Config, opts entratoken.Options) (*tls.Config, error) {
	if len(addrs) == 0 {
		return nil, errors.New(errs.Prefix + "no address")
	}
	if opts.Plaintext {
		if user != nil {
			return nil, errors.New(errs.Prefix + "Options.Plaintext is set together with a TLSConfig: choose one")
		}
		for _, a := range addrs {
			if h := hostOf(a); !IsLoopback(h) && !opts.AllowPlaintextRemote {
				return nil, &errs.Wrapped{Sentinel: ErrPlaintextRemote, Detail: fmt.Sprintf("host %q: Azure requires TLS, and the token would cross the network in clear; remove Options.Plaintext (or set Options.AllowPlaintextRemote if you really mean it)", h)}
			}
		}
		return nil, nil
	}
	t := &tls.Config{}
	if user != nil {
		t = user.Clone()
	}
	if t.MinVersion < tls.VersionTLS12 {
		t.MinVersion = tls.VersionTLS12
	}
	if t.ServerName == "" {
		t.ServerName = hostOf(addrs[0])
	}
	return t, nil
}

func hostOf(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return host
}

// IsLoopback reports whether host (a name or an IP address, without port)
// is this machine: localhost, a *.localhost name, or a loopback IP.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ErrPlaintextRemote means Options.Plaintext was set for a host that is not
// loopback without Options.AllowPlaintextRemote. The client layers export it.
var ErrPlaintextRemote = errors.New(errs.Prefix + "plaintext refused for a non-loopback host")
