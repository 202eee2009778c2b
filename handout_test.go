package entraredis_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/redis/go-redis/v9"

	"github.com/entraredis/entraredis"
	"github.com/entraredis/entraredis/entraredistest"
	"github.com/entraredis/entraredis/entratoken"
)

// The environment of a child process of TestHandedOutClients.
const (
	envHandoutGroup = "ENTRAREDIS_HANDOUT_GROUP" // "client" or "cluster": the child runs that group's cases
	envHandoutFrom  = "ENTRAREDIS_HANDOUT_FROM"  // index of the first case to run
	envHandoutAddrs = "ENTRAREDIS_HANDOUT_ADDRS" // the parent's endpoint(s), comma-separated
	envHandoutCA    = "ENTRAREDIS_HANDOUT_CA"    // PEM of the endpoint's CA
	envHandoutToken = "ENTRAREDIS_HANDOUT_TOKEN" // a token the endpoint accepts, minted by the parent
)

// redisHandout is what the go-redis clients and connections hand out.
type redisHandout interface {
	Watch(ctx context.Context, fn func(*redis.Tx) error, keys ...string) error
	Subscribe(ctx context.Context, channels ...string) *redis.PubSub
}

// connHandout also hands out pinned connections (Client, not ClusterClient).
type connHandout interface {
	redisHandout
	Conn() *redis.Conn
	EphemeralConn() *redis.Conn
}

// handoutMethod is one method that hands out a connection, and a use of it.
type handoutMethod struct {
	name  string
	conns bool // needs a connHandout
	use   func(ctx context.Context, c redisHandout) error
}

var handoutMethods = []handoutMethod{
	{"Watch", false, func(ctx context.Context, c redisHandout) error {
		return c.Watch(ctx, func(tx *redis.Tx) error {
			_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error { p.Incr(ctx, "{h}n"); return nil })
			return err
		}, "{h}n")
	}},
	{"Conn", true, func(ctx context.Context, c redisHandout) error {
		cn := c.(connHandout).Conn()
		defer cn.Close()
		return cn.Ping(ctx).Err()
	}},
	{"EphemeralConn", true, func(ctx context.Context, c redisHandout) error {
		cn := c.(connHandout).EphemeralConn()
		defer cn.Close()
		return cn.Ping(ctx).Err()
	}},
	{"Subscribe", false, func(ctx context.Context, c redisHandout) error {
		sub := c.Subscribe(ctx, "h")
		defer sub.Close()
		_, err := sub.Receive(ctx)
		return err
	}},
}

// handoutEnv is what a case runs against, in the child: the parent's
// endpoint, a credential for its token, and a new client per case.
type handoutEnv struct {
	addrs []string
	tls   *tls.Config
	cred  azcore.TokenCredential
}

func (e *handoutEnv) client(ctx context.Context) (*entraredis.Client, error) {
	return entraredis.NewClient(ctx, e.cred, &redis.Options{Addr: e.addrs[0], TLSConfig: e.tls.Clone()}, &entraredis.Options{Options: entratoken.Options{Logger: quiet}})
}

func (e *handoutEnv) cluster(ctx context.Context) (*entraredis.ClusterClient, error) {
	return entraredis.NewClusterClient(ctx, e.cred, &redis.ClusterOptions{Addrs: e.addrs, TLSConfig: e.tls.Clone()}, &entraredis.Options{Options: entratoken.Options{Logger: quiet}})
}

// handoutCase is one way to get a client or connection from Client or
// ClusterClient, used once on a new client (so that it must dial).
type handoutCase struct {
	name string
	run  func(ctx context.Context, e *handoutEnv) error
}

// clientCases: Client's own methods, those of the embedded *redis.Client, and
// those of the client WithTimeout returns.
func clientCases() []handoutCase {
	sources := []struct {
		name string
		get  func(*entraredis.Client) connHandout
	}{
		{"Client", func(c *entraredis.Client) connHandout { return c }},
		{"Client.Client", func(c *entraredis.Client) connHandout { return c.Client }},
		{"Client.WithTimeout", func(c *entraredis.Client) connHandout { return c.WithTimeout(5 * time.Second) }},
	}
	var cases []handoutCase
	for _, s := range sources {
		for _, m := range handoutMethods {
			cases = append(cases, handoutCase{s.name + "." + m.name, func(ctx context.Context, e *handoutEnv) error {
				rdb, err := e.client(ctx)
				if err != nil {
					return err
				}
				defer rdb.Close()
				return m.use(ctx, s.get(rdb))
			}})
		}
	}
	return cases
}

// clusterCases: ClusterClient's own Watch and Subscribe, the embedded
// *redis.ClusterClient's, and every method on the node clients that
// ForEachMaster, ForEachShard, ForEachSlave, MasterForKey, SlaveForKey and
// OnNewNode hand out.
func clusterCases() []handoutCase {
	var cases []handoutCase
	own := []struct {
		name string
		get  func(*entraredis.ClusterClient) redisHandout
	}{
		{"ClusterClient", func(c *entraredis.ClusterClient) redisHandout { return c }},
		{"ClusterClient.ClusterClient", func(c *entraredis.ClusterClient) redisHandout { return c.ClusterClient }},
	}
	for _, s := range own {
		for _, m := range handoutMethods {
			if m.conns {
				continue // a cluster client hands out no pinned connection
			}
			cases = append(cases, handoutCase{s.name + "." + m.name, func(ctx context.Context, e *handoutEnv) error {
				rdb, err := e.cluster(ctx)
				if err != nil {
					return err
				}
				defer rdb.Close()
				return m.use(ctx, s.get(rdb))
			}})
		}
	}
	type eachNode = func(ctx context.Context, fn func(ctx context.Context, node *redis.Client) error) error
	forKey := func(get func(context.Context, string) (*redis.Client, error)) eachNode {
		return func(ctx context.Context, fn func(context.Context, *redis.Client) error) error {
			node, err := get(ctx, "{h}n")
			if err != nil {
				return err
			}
			return fn(ctx, node)
		}
	}
	nodes := []struct {
		name string
		each func(rdb *entraredis.ClusterClient) eachNode
	}{
		{"ForEachMaster", func(c *entraredis.ClusterClient) eachNode { return c.ForEachMaster }},
		{"ForEachShard", func(c *entraredis.ClusterClient) eachNode { return c.ForEachShard }},
		{"ForEachSlave", func(c *entraredis.ClusterClient) eachNode { return c.ForEachSlave }},
		{"MasterForKey", func(c *entraredis.ClusterClient) eachNode { return forKey(c.MasterForKey) }},
		{"SlaveForKey", func(c *entraredis.ClusterClient) eachNode { return forKey(c.SlaveForKey) }},
		{"OnNewNode", func(c *entraredis.ClusterClient) eachNode {
			created := make(chan *redis.Client, 16)
			c.OnNewNode(func(node *redis.Client) {
				select {
				case created <- node:
				default:
				}
			})
			return func(ctx context.Context, fn func(context.Context, *redis.Client) error) error {
				if err := c.Ping(ctx).Err(); err != nil { // creates the nodes
					return err
				}
				// Every node created so far; those that did not serve the
				// PING have no connection yet.
				var errs []error
				for n := 0; ; n++ {
					select {
					case node := <-created:
						errs = append(errs, fn(ctx, node))
					default:
						if n == 0 {
							return errors.New("OnNewNode was not called")
						}
						return errors.Join(errs...)
					}
				}
			}
		}},
	}
	for _, n := range nodes {
		for _, m := range handoutMethods {
			cases = append(cases, handoutCase{"ClusterClient." + n.name + ".node." + m.name, func(ctx context.Context, e *handoutEnv) error {
				rdb, err := e.cluster(ctx)
				if err != nil {
					return err
				}
				defer rdb.Close()
				var used atomic.Int64 // ForEach* call fn on goroutines of their own
				err = n.each(rdb)(ctx, func(ctx context.Context, node *redis.Client) error { used.Add(1); return m.use(ctx, node) })
				if err == nil && used.Load() == 0 {
					return errors.New("no node was handed out (the emulated cluster has no replicas)")
				}
				return err
			}})
		}
	}
	return cases
}

var handoutGroups = map[string]func() []handoutCase{"client": clientCases, "cluster": clusterCases}

// handoutResult is what the parent learned of one case.
type handoutResult struct {
	ran     bool
	err     string // the case's error, "" when it worked
	crashed string // the child's output around the crash, "" when it did not crash
}

// TestHandedOutClients (issue 12.2): every go-redis method that hands out a
// client or a connection from Client and ClusterClient, used on a new client
// (so that it must dial), works or returns an error; none panics. The cases
// run in child processes, one case after another, so that a crash (a panic
// in a go-redis goroutine kills the process) fails its case, not the suite;
// after a crash the next child goes on from the following case.
func TestHandedOutClients(t *testing.T) {
	if group := os.Getenv(envHandoutGroup); group != "" {
		runHandoutChild(t, group)
		return
	}
	entraredistest.RequireRedisServer(t)
	srv := entraredistest.NewServer(t, entraredistest.Options{})
	cl := entraredistest.NewCluster(t, entraredistest.ClusterOptions{})
	endpoints := map[string]struct {
		addrs []string
		ca    []byte
		token func() (string, error)
	}{
		"client": {[]string{srv.Addr()}, srv.CAPEM(), func() (string, error) {
			return mintFor(srv.Issuer(), srv.Allow)
		}},
		"cluster": {cl.Addrs(), cl.CAPEM(), func() (string, error) {
			return mintFor(cl.Issuer(), cl.Allow)
		}},
	}
	results := map[string]*handoutResult{}
	for _, group := range []string{"client", "cluster"} {
		cases := handoutGroups[group]()
		ep := endpoints[group]
		token, err := ep.token()
		if err != nil {
			t.Fatal(err)
		}
		for from := 0; from < len(cases); {
			out, runErr := runHandoutGroup(t, group, from, ep.addrs, ep.ca, token)
			last := parseHandout(out, results)
			if runErr == nil {
				break
			}
			if last < 0 {
				t.Fatalf("the %s child failed outside any case: %v\n%s", group, runErr, out)
			}
			r := results[cases[last].name]
			r.crashed = crashExcerpt(out)
			if r.crashed == "" {
				r.crashed = runErr.Error()
			}
			from = last + 1
		}
	}
	for _, group := range []string{"client", "cluster"} {
		for _, c := range handoutGroups[group]() {
			t.Run(c.name, func(t *testing.T) {
				r := results[c.name]
				switch {
				case r == nil || !r.ran:
					t.Fatal("the case did not run")
				case r.crashed != "":
					t.Fatalf("crashed the process:\n%s", r.crashed)
				case r.err != "":
					t.Logf("returned an error (allowed): %s", r.err)
				default:
					t.Log("works")
				}
			})
		}
	}
}

// mintFor mints a one-hour token for a new principal that allow makes an owner.
func mintFor(is *entraredistest.Issuer, allow func(string, entraredistest.Role)) (string, error) {
	oid := fmt.Sprintf("00000000-0000-4000-8000-%012d", time.Now().UnixNano()%1e12)
	allow(oid, entraredistest.RoleOwner)
	return is.Mint(entraredistest.TokenSpec{ObjectID: oid})
}

// runHandoutGroup runs the child for group's cases from index from, and
// returns its output.
func runHandoutGroup(t *testing.T, group string, from int, addrs []string, ca []byte, token string) (string, error) {
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHandedOutClients$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(),
		envHandoutGroup+"="+group, envHandoutFrom+"="+strconv.Itoa(from),
		envHandoutAddrs+"="+strings.Join(addrs, ","), envHandoutCA+"="+string(ca), envHandoutToken+"="+token)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// The lines a child prints around each case.
const (
	handoutStart = "handout-case start "
	handoutDone  = "handout-case done "
)

// parseHandout records the cases of a child's output in results and returns
// the index of the case that started last without finishing, or -1.
func parseHandout(out string, results map[string]*handoutResult) int {
	started := -1
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, handoutStart); ok {
			idx, name, _ := strings.Cut(rest, " ")
			started, _ = strconv.Atoi(idx)
			results[name] = &handoutResult{ran: true}
		} else if rest, ok := strings.CutPrefix(line, handoutDone); ok {
			_, rest, _ = strings.Cut(rest, " ")
			name, verdict, _ := strings.Cut(rest, ": ")
			if r := results[name]; r != nil && verdict != "ok" {
				r.err = verdict
			}
			started = -1
		}
	}
	return started
}

// crashExcerpt returns the panic message and the first functions of the
// panicking goroutine's stack, runtime and testing frames left out.
func crashExcerpt(out string) string {
	i := strings.Index(out, "panic:")
	if i < 0 {
		return ""
	}
	lines := strings.Split(out[i:], "\n")
	keep := []string{lines[0]}
	for _, l := range lines[1:] {
		if len(keep) == 7 {
			break
		}
		if l == "" || strings.HasPrefix(l, "\t") || strings.HasPrefix(l, "panic") || strings.HasPrefix(l, "runtime.") || strings.HasPrefix(l, "testing.") || strings.HasPrefix(l, "goroutine ") {
			continue
		}
		keep = append(keep, "  "+l)
	}
	return strings.Join(keep, "\n")
}

// runHandoutChild runs the cases of group from the index in the
// environment, printing a line before and after each.
func runHandoutChild(t *testing.T, group string) {
	from, err := strconv.Atoi(os.Getenv(envHandoutFrom))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(os.Getenv(envHandoutCA))) {
		t.Fatal("no CA in the environment")
	}
	e := &handoutEnv{
		addrs: strings.Split(os.Getenv(envHandoutAddrs), ","),
		tls:   &tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS12},
		cred:  staticCredential(os.Getenv(envHandoutToken)),
	}
	cases := handoutGroups[group]()
	for i := from; i < len(cases); i++ {
		c := cases[i]
		fmt.Printf("%s%d %s\n", handoutStart, i, c.name)
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		err := c.run(ctx, e)
		cancel()
		verdict := "ok"
		if err != nil {
			verdict = strings.ReplaceAll(err.Error(), "\n", " ")
		}
		fmt.Printf("%s%d %s: %s\n", handoutDone, i, c.name, verdict)
	}
}

// staticCredential hands out one token, valid for an hour.
type staticCredential string

func (c staticCredential) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: string(c), ExpiresOn: time.Now().Add(50 * time.Minute)}, nil
}
