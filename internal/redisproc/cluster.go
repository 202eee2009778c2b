package redisproc

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Cluster defaults used when the corresponding ClusterConfig field is zero.
const (
	DefaultMasters      = 3
	DefaultAnnounceIP   = "127.0.0.1"
	DefaultNodeTimeout  = 5 * time.Second
	DefaultReadyTimeout = 30 * time.Second
	// Slots is the number of hash slots of a Redis Cluster.
	Slots = 16384
)

// ClusterConfig configures StartCluster.
type ClusterConfig struct {
	// RedisServer is the path of redis-server; default Find(""). Version 7.0 or
	// newer is required (CLUSTER ADDSLOTSRANGE).
	RedisServer string
	// Masters is the number of master nodes (no replicas); default 3.
	Masters int
	// Users are the ACL users created on every node; the default user is disabled.
	Users []User
	// AnnounceIP is the cluster-announce-ip of every node; default "127.0.0.1".
	AnnounceIP string
	// AnnouncePorts are the cluster-announce-port of each node (for example the
	// port of a TLS endpoint in front of the node, bound by the caller before the
	// start). Empty (default): every node announces its own port. Otherwise it
	// must have Masters entries, each > 0.
	AnnouncePorts []int
	// NodeTimeout is cluster-node-timeout; default 5s.
	NodeTimeout time.Duration
	// ExtraConfig lines are appended to every node's redis.conf.
	ExtraConfig []string
	// StartTimeout bounds each node's start (until PING answers); default 15s.
	StartTimeout time.Duration
	// ReadyTimeout bounds the cluster formation (until every node reports
	// cluster_state:ok and sees every master); default 30s.
	ReadyTimeout time.Duration
	// StopTimeout is the wait after SIGTERM before SIGKILL; default 5s.
	StopTimeout time.Duration
}

// Cluster is a running Redis Cluster of master nodes. Node i serves the slots
// [i*16384/n, (i+1)*16384/n - 1].
type Cluster struct {
	nodes []*Process
}

// StartCluster starts cfg.Masters redis-server nodes in cluster mode, assigns the
// 16384 slots evenly, joins the nodes with CLUSTER MEET and waits until every node
// reports cluster_state:ok and knows every master as connected. On error every
// node already started is closed. The caller must Close the cluster.
func StartCluster(cfg ClusterConfig) (*Cluster, error) {
	if cfg.Masters == 0 {
		cfg.Masters = DefaultMasters
	}
	if cfg.Masters < 1 || cfg.Masters > 64 {
		return nil, fmt.Errorf("redisproc: Masters = %d, want 1..64", cfg.Masters)
	}
	if cfg.AnnounceIP == "" {
		cfg.AnnounceIP = DefaultAnnounceIP
	}
	if len(cfg.AnnouncePorts) != 0 && len(cfg.AnnouncePorts) != cfg.Masters {
		return nil, fmt.Errorf("redisproc: %d AnnouncePorts for %d masters", len(cfg.AnnouncePorts), cfg.Masters)
	}
	for _, p := range cfg.AnnouncePorts {
		if p <= 0 || p > 65535 {
			return nil, fmt.Errorf("redisproc: invalid announce port %d", p)
		}
	}
	if cfg.NodeTimeout <= 0 {
		cfg.NodeTimeout = DefaultNodeTimeout
	}
	if cfg.ReadyTimeout <= 0 {
		cfg.ReadyTimeout = DefaultReadyTimeout
	}
	bin, err := Find(cfg.RedisServer)
	if err != nil {
		return nil, fmt.Errorf("redisproc: %w", err)
	}
	if major, minor, _, err := Version(bin); err != nil {
		return nil, err
	} else if major < 7 {
		return nil, fmt.Errorf("redisproc: %s is version %d.%d; a cluster needs redis-server 7.0 or newer", bin, major, minor)
	}

	c := &Cluster{}
	for i := 0; i < cfg.Masters; i++ {
		cs := &clusterSettings{announceIP: cfg.AnnounceIP, nodeTimeout: cfg.NodeTimeout}
		if len(cfg.AnnouncePorts) > 0 {
			cs.announcePort = cfg.AnnouncePorts[i]
		}
		p, err := start(Config{
			RedisServer:  bin,
			Users:        cfg.Users,
			ExtraConfig:  cfg.ExtraConfig,
			StartTimeout: cfg.StartTimeout,
			StopTimeout:  cfg.StopTimeout,
		}, cs)
		if err != nil {
			return nil, errors.Join(fmt.Errorf("redisproc: cluster node %d: %w", i, err), c.Close())
		}
		c.nodes = append(c.nodes, p)
	}

	ctx, cancel := context.WithTimeout(context.Background(), cfg.ReadyTimeout)
	defer cancel()
	if err := c.form(ctx, cfg); err != nil {
		return nil, errors.Join(err, c.Close())
	}
	return c, nil
}

// SlotRange returns the first and last slot assigned to node i of n.
func SlotRange(i, n int) (first, last int) {
	return i * Slots / n, (i+1)*Slots/n - 1
}

func (c *Cluster) form(ctx context.Context, cfg ClusterConfig) error {
	n := len(c.nodes)
	for i, p := range c.nodes {
		if _, err := p.Do(ctx, "CLUSTER", "SET-CONFIG-EPOCH", strconv.Itoa(i+1)); err != nil {
			return fmt.Errorf("redisproc: cluster node %d: %w", i, err)
		}
		first, last := SlotRange(i, n)
		if _, err := p.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", strconv.Itoa(first), strconv.Itoa(last)); err != nil {
			return fmt.Errorf("redisproc: cluster node %d: %w", i, err)
		}
	}
	for i, p := range c.nodes[1:] {
		if _, err := c.nodes[0].Do(ctx, "CLUSTER", "MEET", "127.0.0.1", strconv.Itoa(p.Port()), strconv.Itoa(p.BusPort())); err != nil {
			return fmt.Errorf("redisproc: cluster meet node %d: %w", i+1, err)
		}
	}
	return c.WaitReady(ctx)
}

// WaitReady waits until every node reports cluster_state:ok and lists every master
// of the cluster as connected (no fail, pfail, handshake or noaddr flag), or until
// ctx ends.
func (c *Cluster) WaitReady(ctx context.Context) error {
	var last error
	for {
		last = c.check(ctx)
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("redisproc: cluster not ready: %w (last check: %w)", ctx.Err(), last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (c *Cluster) check(ctx context.Context) error {
	n := len(c.nodes)
	for i, p := range c.nodes {
		v, err := p.Do(ctx, "CLUSTER", "INFO")
		if err != nil {
			return err
		}
		info, _ := v.(string)
		if !strings.Contains(info, "cluster_state:ok") {
			return fmt.Errorf("node %d: cluster_state is not ok", i)
		}
		v, err = p.Do(ctx, "CLUSTER", "NODES")
		if err != nil {
			return err
		}
		nodes, _ := v.(string)
		masters := 0
		for _, line := range strings.Split(strings.TrimSpace(nodes), "\n") {
			f := strings.Fields(line)
			if len(f) < 8 {
				continue
			}
			flags := f[2]
			if !strings.Contains(flags, "master") {
				continue
			}
			for _, bad := range []string{"fail", "handshake", "noaddr"} {
				if strings.Contains(flags, bad) {
					return fmt.Errorf("node %d sees a master with flags %s", i, flags)
				}
			}
			if f[7] != "connected" {
				return fmt.Errorf("node %d sees a master %s", i, f[7])
			}
			masters++
		}
		if masters != n {
			return fmt.Errorf("node %d sees %d of %d masters", i, masters, n)
		}
	}
	return nil
}

// Nodes returns the nodes; node i serves SlotRange(i, len(Nodes())).
func (c *Cluster) Nodes() []*Process { return append([]*Process(nil), c.nodes...) }

// Close closes every node (see Process.Close) and returns their errors joined.
func (c *Cluster) Close() error {
	var errs []error
	for _, p := range c.nodes {
		errs = append(errs, p.Close())
	}
	return errors.Join(errs...)
}
