package entraredistest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/redis/go-redis/v9"

	"github.com/entraredis/entraredis/internal/redisproc"
)

// clusterClient returns a go-redis cluster client on c's seed addresses that
// authenticates each new connection with a fresh token of cred.
func clusterClient(t *testing.T, c *Cluster, cred *Credential, tlsCfg *tls.Config) *redis.ClusterClient {
	t.Helper()
	cl := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs:     c.Addrs(),
		TLSConfig: tlsCfg,
		CredentialsProviderContext: func(ctx context.Context) (string, string, error) {
			tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://redis.azure.com/.default"}})
			return cred.ObjectID(), tok.Token, err
		},
		DialTimeout:  5 * time.Second,
		ReadTimeout:  5 * time.Second,
		WriteTimeout: 5 * time.Second,
		MaxRedirects: 3,
	})
	t.Cleanup(func() { cl.Close() })
	return cl
}

// TestCluster starts one 3-master cluster and runs every cluster check on it
// in order (a start takes a few seconds); the last subtest closes it.
func TestCluster(t *testing.T) {
	start := time.Now()
	c := NewCluster(t, ClusterOptions{})
	t.Logf("NewCluster took %v", time.Since(start))
	if n := len(c.Addrs()); n != 3 {
		t.Fatalf("%d nodes, want 3", n)
	}
	for i, a := range c.Addrs() {
		if host, _, _ := net.SplitHostPort(a); host != "localhost" {
			t.Fatalf("Addrs()[%d] = %s, want localhost:PORT", i, a)
		}
	}

	t.Run("WritesReachEveryMasterWithVerifiedCertificates", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		var verified, badVerify atomic.Int64
		tlsCfg := c.TLSConfig()
		if tlsCfg.ServerName != "localhost" || tlsCfg.InsecureSkipVerify || tlsCfg.MinVersion != tls.VersionTLS12 {
			t.Fatalf("TLSConfig: ServerName %q InsecureSkipVerify %v MinVersion %x", tlsCfg.ServerName, tlsCfg.InsecureSkipVerify, tlsCfg.MinVersion)
		}
		tlsCfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if cs.ServerName == "localhost" && len(cs.VerifiedChains) > 0 {
				verified.Add(1)
			} else {
				badVerify.Add(1)
			}
			return nil
		}
		before := c.NodeStats()
		cl := clusterClient(t, c, c.Credential(), tlsCfg)

		const keys = 60
		want := make([]int64, 3)
		for i := 0; i < keys; i++ {
			key := "cluster-key-" + strconv.Itoa(i)
			if err := cl.Set(ctx, key, i, 0).Err(); err != nil {
				t.Fatalf("SET %s: %v", key, err)
			}
			slot, err := cl.ClusterKeySlot(ctx, key).Result()
			if err != nil {
				t.Fatalf("CLUSTER KEYSLOT %s: %v", key, err)
			}
			for n := range want {
				if first, last := redisproc.SlotRange(n, 3); int(slot) >= first && int(slot) <= last {
					want[n]++
				}
			}
		}
		for n, w := range want {
			if w == 0 {
				t.Fatalf("no key hashes to node %d: the test keys do not exercise every master", n)
			}
		}
		// Per master, over the endpoints (addresses from the topology: IPs).
		got := map[string]int64{}
		ch := make(chan [2]string, 3)
		err := cl.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
			n, err := m.DBSize(ctx).Result()
			ch <- [2]string{m.Options().Addr, strconv.FormatInt(n, 10)}
			return err
		})
		close(ch)
		if err != nil {
			t.Fatalf("ForEachMaster DBSIZE: %v", err)
		}
		for kv := range ch {
			n, _ := strconv.ParseInt(kv[1], 10, 64)
			got[kv[0]] = n
		}
		for n, addr := range c.TopologyAddrs() {
			if got[addr] != want[n] {
				t.Errorf("node %d (%s): DBSIZE %d, want %d (all: %v)", n, addr, got[addr], want[n], got)
			}
		}
		if len(got) != 3 {
			t.Errorf("masters seen by the client: %v, want the 3 topology addresses %v", got, c.TopologyAddrs())
		}
		for n, s := range c.NodeStats() {
			if s.Auths-before[n].Auths < 1 || s.Commands-before[n].Commands < want[n] {
				t.Errorf("node %d endpoint: %+v (before %+v), want >= 1 auth and >= %d commands", n, s, before[n], want[n])
			}
		}
		if verified.Load() < 3 || badVerify.Load() != 0 {
			t.Errorf("TLS handshakes verified against localhost: %d, other: %d", verified.Load(), badVerify.Load())
		}
		if s := c.Stats(); s.RefusedAuths != 0 {
			t.Errorf("refused auths %d", s.RefusedAuths)
		}
	})

	t.Run("NoServerNameFailsOnTopologyIPs", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		tlsCfg := c.TLSConfig()
		tlsCfg.ServerName = "" // the trap: verify against the dialed host
		cl := clusterClient(t, c, c.Credential(), tlsCfg)
		err := cl.Set(ctx, "trap", "1", 0).Err()
		if err == nil {
			t.Fatal("SET succeeded without ServerName; want a certificate name error for 127.0.0.1")
		}
		var hErr x509.HostnameError
		// Go words it "cannot validate certificate for 127.0.0.1 because it doesn't
		// contain any IP SANs"; with IP SANs it would be "certificate is valid for
		// ..., not 127.0.0.1", the wording Azure users see.
		if !errors.As(err, &hErr) || hErr.Host != "127.0.0.1" {
			t.Fatalf("error %q (%T), want an x509.HostnameError for host 127.0.0.1", err, err)
		}
		t.Logf("as expected: %v", err)
	})

	t.Run("ReaderGetsNOPERM", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		cl := clusterClient(t, c, c.NewCredential(CredentialOptions{Role: RoleReader}), c.TLSConfig())
		if err := cl.Get(ctx, "cluster-key-1").Err(); err != nil {
			t.Fatalf("reader GET: %v", err)
		}
		err := cl.Set(ctx, "cluster-key-1", "x", 0).Err()
		if err == nil || !strings.HasPrefix(err.Error(), "NOPERM") {
			t.Fatalf("reader SET: %v, want NOPERM", err)
		}
	})

	t.Run("ExpiryClosesNodeConnections", func(t *testing.T) {
		cred := c.NewCredential(CredentialOptions{Lifetime: 2 * time.Second})
		before := c.NodeStats()
		conns := make([]*rawConn, 0, 3)
		var exp time.Time
		for _, addr := range c.Addrs() {
			d := &net.Dialer{Timeout: 5 * time.Second}
			nc, err := tls.DialWithDialer(d, "tcp", addr, c.TLSConfig())
			if err != nil {
				t.Fatalf("dial %s: %v", addr, err)
			}
			t.Cleanup(func() { nc.Close() })
			rc := newRawConn(t, nc)
			tok, err := cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{"https://redis.azure.com/.default"}})
			if err != nil {
				t.Fatal(err)
			}
			exp = tok.ExpiresOn
			if r := rc.do("AUTH", cred.ObjectID(), tok.Token); r != "+OK\r\n" {
				t.Fatalf("AUTH on %s: %q", addr, r)
			}
			if r := rc.do("PING"); r != "+PONG\r\n" {
				t.Fatalf("PING on %s: %q", addr, r)
			}
			conns = append(conns, rc)
		}
		t0 := time.Now()
		for n, rc := range conns {
			if _, err := rc.waitClosed(t0, 6*time.Second); err != nil {
				t.Fatalf("node %d: %v", n, err)
			}
			// exp has whole-second precision; the close must come at exp, not before.
			if now := time.Now(); now.Before(exp.Truncate(time.Second).Add(-200*time.Millisecond)) || now.After(exp.Add(2*time.Second)) {
				t.Errorf("node %d: closed at %v, token exp %v", n, now.Format(time.StampMilli), exp.Format(time.StampMilli))
			}
		}
		after := c.NodeStats()
		for n := range after {
			if d := after[n].ExpiryCloses - before[n].ExpiryCloses; d != 1 {
				t.Errorf("node %d: %d expiry closes, want 1", n, d)
			}
		}
	})

	t.Run("CloseLeavesNothing", func(t *testing.T) {
		var pids []int
		var dirs []string
		for _, p := range c.rc.Nodes() {
			pids, dirs = append(pids, p.Pid()), append(dirs, p.Dir())
		}
		addrs := c.TopologyAddrs()
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		for i := range pids {
			if err := syscall.Kill(pids[i], 0); !errors.Is(err, syscall.ESRCH) {
				t.Errorf("node %d: redis-server pid %d still exists: %v", i, pids[i], err)
			}
			if _, err := os.Stat(dirs[i]); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("node %d: dir %s remains: %v", i, dirs[i], err)
			}
			if nc, err := net.DialTimeout("tcp", addrs[i], time.Second); err == nil {
				nc.Close()
				t.Errorf("node %d: endpoint %s still accepts", i, addrs[i])
			}
		}
		if err := c.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
	})
}

func TestClusterOptionsErrors(t *testing.T) {
	if _, err := StartCluster(ClusterOptions{RedisServer: "/nonexistent/redis-server"}); !errors.Is(err, redisproc.ErrNotFound) {
		t.Errorf("missing redis-server: %v, want ErrNotFound", err)
	}
	if _, err := StartCluster(ClusterOptions{Masters: -1}); err == nil {
		t.Error("Masters -1 accepted")
	}
}
