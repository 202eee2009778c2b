package main

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/entraredis/entraredis"
	"github.com/entraredis/entraredis/entraredistest"
	"github.com/entraredis/entraredis/entratoken"
)

type scaleRow struct {
	Topology      string
	Conns         int64 // connections open when the rotation came
	Spread        time.Duration
	AllReauthed   time.Duration // from the token's installation to the last connection's re-AUTH
	ReAuths       int64
	Dials         int64 // during the rotation
	ExpiryCloses  int64
	TokenRequests int64
	Errs          int64
	FirstErrs     []string // the first errors of the load, if any
	PlainBytes    float64  // heap per connection, plain go-redis with a static password
	OursBytes     float64  // heap per connection, entraredis
	// live heap per connection allocated under entraredis' root package and
	// under go-redis' streaming credentials code (exact allocation profile)
	ProfEntraredis, ProfStreaming float64
	// progress of the re-authentication: from the installation until half,
	// 90% and 99% of the connections were re-authenticated
	T50, T90, T99 time.Duration
	Note          string
	NewAuths      int64  // connections opened (and authenticated) after the rotation, until the wait ended
	Listeners     int    // connections subscribed to entraredis' token updates at the rotation
	PerNode       string // cluster: re-AUTHs and open connections per node when the wait ended
}

// endpoint is what the scale run needs of a Server or a Cluster.
type endpoint interface {
	Stats() entraredistest.Stats
	Credential() *entraredistest.Credential
	Issuer() *entraredistest.Issuer
	Close() error
}

func runScale(ctx context.Context, cfg config, logf func(string, ...any)) ([]scaleRow, error) {
	var rows []scaleRow
	row, err := scaleOne(ctx, cfg, false, logf)
	if err != nil {
		return rows, fmt.Errorf("standalone: %w", err)
	}
	rows = append(rows, row)
	if cfg.ScaleCluster {
		row, err := scaleOne(ctx, cfg, true, logf)
		if err != nil {
			return rows, fmt.Errorf("cluster: %w", err)
		}
		rows = append(rows, row)
	}
	return rows, nil
}

func heap() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// waitFor polls cond every 10 ms until it holds or d passes.
func waitFor(ctx context.Context, d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

func scaleOne(ctx context.Context, cfg config, cluster bool, logf func(string, ...any)) (scaleRow, error) {
	row := scaleRow{Topology: "standalone"}
	var (
		ep      endpoint
		srv     *entraredistest.Server
		cl      *entraredistest.Cluster
		perNode = cfg.ScaleConns
		nodes   = 1
		err     error
	)
	if cluster {
		row.Topology = "cluster (3 masters)"
		cl, err = entraredistest.StartCluster(entraredistest.ClusterOptions{TokenLifetime: cfg.ScaleToken})
		if err != nil {
			return row, err
		}
		ep = cl
		nodes = len(cl.Addrs())
		perNode = (cfg.ScaleConns + nodes - 1) / nodes
	} else {
		srv, err = startServer(cfg.ScaleToken)
		if err != nil {
			return row, err
		}
		ep = srv
	}
	defer ep.Close()
	cred := ep.Credential()
	pass, err := staticPassword(ep.Issuer(), cred.ObjectID())
	if err != nil {
		return row, err
	}
	want := int64(perNode * nodes)
	closed := func() bool { return ep.Stats().Open == 0 }

	// fill opens the connections: perNode goroutines per node each hold a
	// connection with a blocking WAIT (no replicas, so it waits out its
	// timeout), so that the pool dials them all. MinIdleConns is not used: our
	// client copies it to its second (Conn/Watch/pub-sub) pool too.
	fill := func(rdb redis.UniversalClient) error {
		hold := func(ctx context.Context, n redis.Cmdable, k int) error {
			var wg sync.WaitGroup
			errs := make(chan error, k)
			for range k {
				wg.Go(func() {
					// A connection refused under the burst of handshakes
					// is not fatal: the count of open connections decides.
					_ = n.(interface {
						Do(context.Context, ...any) *redis.Cmd
					}).Do(ctx, "WAIT", 1, cfg.ScaleHold.Milliseconds()).Err()
				})
			}
			wg.Wait()
			close(errs)
			return <-errs
		}
		if c, ok := rdb.(interface {
			ForEachMaster(context.Context, func(context.Context, *redis.Client) error) error
		}); ok && cluster {
			return c.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error { return hold(ctx, n, perNode) })
		}
		return hold(ctx, rdb, perNode)
	}

	// Memory: plain go-redis with a static password, then ours, each holding
	// the same number of connections.
	measure := func(mk func() (redis.UniversalClient, func(), error)) (float64, providerHeap, redis.UniversalClient, func(), error) {
		var ph providerHeap
		if !waitFor(ctx, cfg.ScaleTimeout, closed) {
			return 0, ph, nil, nil, fmt.Errorf("connections of the previous client still open: %d", ep.Stats().Open)
		}
		h0 := heap()
		rdb, closeFn, err := mk()
		if err != nil {
			return 0, ph, nil, nil, err
		}
		// The client exists: profile only the opening of the connections.
		var n int64
		ph, err = withExactProfile(func() error {
			if err := fill(rdb); err != nil {
				return err
			}
			// Every WAIT has returned: its connection is idle in the pool.
			n = ep.Stats().Open
			if n < want*9/10 {
				return fmt.Errorf("only %d of %d connections opened (raise -scale-hold)", n, want)
			}
			return nil
		})
		if err != nil {
			closeFn()
			return 0, ph, nil, nil, err
		}
		h1 := heap()
		ph.Entraredis /= n
		ph.Streaming /= n
		return (float64(h1) - float64(h0)) / float64(n), ph, rdb, closeFn, nil
	}
	plainMk := func() (redis.UniversalClient, func(), error) {
		var c redis.UniversalClient
		if cluster {
			c = redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs(), TLSConfig: cl.TLSConfig(), Protocol: cfg.Protocol,
				PoolSize: perNode, DialTimeout: 30 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second, Username: cred.ObjectID(), Password: pass})
		} else {
			c = redis.NewClient(&redis.Options{Addr: srv.Addr(), TLSConfig: srv.TLSConfig(), Protocol: cfg.Protocol,
				PoolSize: perNode, DialTimeout: 30 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second, Username: cred.ObjectID(), Password: pass})
		}
		return c, func() { c.Close() }, nil
	}
	oursOpts := &entraredis.Options{Options: entratoken.Options{Logger: quiet}}
	var oursC *entraredis.Client
	var oursCC *entraredis.ClusterClient
	oursMk := func() (redis.UniversalClient, func(), error) {
		if cluster {
			c, err := entraredis.NewClusterClient(ctx, cred, &redis.ClusterOptions{Addrs: cl.Addrs(), TLSConfig: cl.TLSConfig(), Protocol: cfg.Protocol,
				PoolSize: perNode, PoolFIFO: true, DialTimeout: 30 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second}, oursOpts)
			if err != nil {
				return nil, nil, err
			}
			oursCC = c
			return c, func() { c.Close() }, nil
		}
		c, err := entraredis.NewClient(ctx, cred, &redis.Options{Addr: srv.Addr(), TLSConfig: srv.TLSConfig(), Protocol: cfg.Protocol,
			PoolSize: perNode, PoolFIFO: true, DialTimeout: 30 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second}, oursOpts)
		if err != nil {
			return nil, nil, err
		}
		oursC = c
		return c, func() { c.Close() }, nil
	}
	status := func() entraredis.Status {
		if oursCC != nil {
			return oursCC.Status()
		}
		return oursC.Status()
	}

	pb, _, _, pclose, err := measure(plainMk)
	if err != nil {
		return row, fmt.Errorf("plain: %w", err)
	}
	pclose()
	ob, ph, rdb, oclose, err := measure(oursMk)
	if err != nil {
		return row, fmt.Errorf("entraredis: %w", err)
	}
	defer oclose()
	row.PlainBytes, row.OursBytes = pb, ob
	row.ProfEntraredis = float64(ph.Entraredis) // already per connection
	row.ProfStreaming = float64(ph.Streaming)
	if status().Rotations > 0 {
		row.Note = "a rotation came while the connections were being opened and measured; the rotation timed here is the next one"
	}

	// Keep every connection active (the pool is FIFO, set above: each command
	// takes the connection idle the longest) and wait for one rotation.
	lctx, stopLoad := context.WithCancel(ctx)
	var load *loadResult
	var lwg sync.WaitGroup
	lwg.Go(func() {
		load = runLoad(lctx, rdb, cfg.ScaleLoad, 2*cfg.ScaleTimeout+cfg.ScaleToken, time.Now(), "scale")
	})
	defer func() { stopLoad(); lwg.Wait() }()

	st0 := ep.Stats()
	var nodes0 []entraredistest.Stats
	if cluster {
		nodes0 = cl.NodeStats()
	}
	req0 := cred.Requests()
	rot0 := status().Rotations
	if !waitFor(ctx, cfg.ScaleToken+cfg.ScaleTimeout, func() bool { return status().Rotations > rot0 }) {
		return row, fmt.Errorf("no rotation within %v", cfg.ScaleToken+cfg.ScaleTimeout)
	}
	// When the token was installed and its hand-out began (OnTokenRefreshed
	// is queued and may run late under this load: no clock for this).
	rotAt := status().LastRefresh
	atRot := ep.Stats()
	row.Conns = atRot.Open
	row.Listeners = status().Connections
	var last time.Time
	var cut int64 = -1 // re-AUTHs counted when the next rotation came first
	ok := waitFor(ctx, cfg.ScaleTimeout, func() bool {
		s := ep.Stats()
		// On the new token: re-authenticated in place, or opened since the
		// rotation (a connection go-redis closed after a failed re-auth is
		// replaced by a new one, which authenticates with the new token).
		done := (s.ReAuths - st0.ReAuths) + (s.Auths - atRot.Auths)
		if status().Rotations > rot0+1 {
			cut = done
			return true
		}
		since := time.Since(rotAt)
		if row.T50 == 0 && done*2 >= row.Conns {
			row.T50 = since
		}
		if row.T90 == 0 && done*10 >= row.Conns*9 {
			row.T90 = since
		}
		if row.T99 == 0 && done*100 >= row.Conns*99 {
			row.T99 = since
		}
		if done >= row.Conns {
			last = time.Now()
			return true
		}
		return false
	})
	end := ep.Stats()
	row.ReAuths = end.ReAuths - st0.ReAuths
	row.NewAuths = end.Auths - atRot.Auths
	if cluster {
		var per []string
		for i, n := range cl.NodeStats() {
			per = append(per, fmt.Sprintf("node %d: %d re-AUTHs, %d open", i, n.ReAuths-nodes0[i].ReAuths, n.Open))
		}
		row.PerNode = strings.Join(per, "; ")
	}
	switch {
	case !ok:
		row.Note = fmt.Sprintf("only %d of %d connections re-authenticated within %v", row.ReAuths, row.Conns, cfg.ScaleTimeout)
	case cut >= 0:
		row.Note = fmt.Sprintf("the next rotation came %v after this one, when %d of %d connections had been counted on the new token", time.Since(rotAt).Round(time.Millisecond), cut, row.Conns)
	default:
		row.AllReauthed = last.Sub(rotAt)
	}
	row.Spread = scaleSpread(cfg.ScaleToken)
	stopLoad()
	lwg.Wait()
	end = ep.Stats()
	row.Dials = end.Accepted - st0.Accepted
	row.ExpiryCloses = end.ExpiryCloses - st0.ExpiryCloses
	row.TokenRequests = cred.Requests() - req0
	row.Errs = load.errs
	row.FirstErrs = load.firstErrs
	logf("scale %-20s %d conns: all re-authenticated %v after the rotation (spread %v), %d dials, %d expiry closes, %d token requests, %d errors; heap/conn plain %.0f B, entraredis %.0f B (profile: entraredis %.0f B, go-redis streaming %.0f B); 50/90/99%%: %v/%v/%v",
		row.Topology, row.Conns, row.AllReauthed, row.Spread, row.Dials, row.ExpiryCloses, row.TokenRequests, row.Errs, row.PlainBytes, row.OursBytes, row.ProfEntraredis, row.ProfStreaming, row.T50, row.T90, row.T99)
	return row, nil
}

// scaleSpread is the hand-out window entraredis uses for tokens of life: the
// default ReauthSpread capped at a quarter of the refresh margin (half the
// life), see options.go timingFor.
func scaleSpread(life time.Duration) time.Duration {
	const refreshBefore, reauthSpread = 10 * time.Minute, 10 * time.Second // entratoken.Options' defaults
	margin := min(refreshBefore, life/2)
	return min(reauthSpread, margin/4)
}
