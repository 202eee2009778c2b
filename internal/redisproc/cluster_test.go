package redisproc

import (
	"errors"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestCluster(t *testing.T) {
	t.Parallel() // slow (cluster formation, failed start): overlap with the rest
	requireRedis(t)
	// Stand-ins for the TLS endpoints in front of the nodes: bound before the
	// start, their ports are what the topology must name.
	var announce []int
	for i := 0; i < 3; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		announce = append(announce, ln.Addr().(*net.TCPAddr).Port)
	}
	start := time.Now()
	c, err := StartCluster(ClusterConfig{Users: testUsers, AnnouncePorts: announce})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("cluster of 3 ready in %v", time.Since(start))
	closed := false
	defer func() {
		if !closed {
			c.Close()
		}
	}()
	nodes := c.Nodes()
	if len(nodes) != 3 {
		t.Fatalf("%d nodes", len(nodes))
	}
	for i, p := range nodes {
		if p.AnnouncePort() != announce[i] || p.BusPort() == 0 || p.BusPort() == p.Port() {
			t.Fatalf("node %d: port %d announce %d bus %d", i, p.Port(), p.AnnouncePort(), p.BusPort())
		}
	}

	// Every node's CLUSTER SLOTS names 127.0.0.1 and the announced ports, with the even split.
	for i, p := range nodes {
		v, err := p.Do(ctxT(t), "CLUSTER", "SLOTS")
		if err != nil {
			t.Fatal(err)
		}
		ranges, _ := v.([]any)
		if len(ranges) != 3 {
			t.Fatalf("node %d: CLUSTER SLOTS has %d ranges: %v", i, len(ranges), v)
		}
		got := map[int][2]int64{}
		for _, r := range ranges {
			r := r.([]any)
			master := r[2].([]any)
			if master[0] != "127.0.0.1" {
				t.Fatalf("node %d: slot owner host %v, want 127.0.0.1", i, master[0])
			}
			got[int(master[1].(int64))] = [2]int64{r[0].(int64), r[1].(int64)}
		}
		for j := range nodes {
			first, last := SlotRange(j, 3)
			if got[announce[j]] != [2]int64{int64(first), int64(last)} {
				t.Fatalf("node %d: CLUSTER SLOTS %v, want announce port %d to serve %d-%d", i, got, announce[j], first, last)
			}
		}
	}

	// A key on its owner works as the owner role; elsewhere it is MOVED to the announced port.
	v, err := nodes[0].Do(ctxT(t), "CLUSTER", "KEYSLOT", "somekey")
	if err != nil {
		t.Fatal(err)
	}
	slot := int(v.(int64))
	owner := -1
	for j := range nodes {
		if first, last := SlotRange(j, 3); slot >= first && slot <= last {
			owner = j
		}
	}
	if v, err := as(t, nodes[owner], "owner", "owner pass with spaces", "SET", "somekey", "1"); err != nil || v != "OK" {
		t.Fatalf("SET on owner: %v %v", v, err)
	}
	other := nodes[(owner+1)%3]
	_, err = as(t, other, "owner", "owner pass with spaces", "GET", "somekey")
	want := "MOVED " + strconv.Itoa(slot) + " 127.0.0.1:" + strconv.Itoa(announce[owner])
	if err == nil || err.Error() != want {
		t.Fatalf("GET on non-owner: %v, want %q", err, want)
	}
	// ACL applies on cluster nodes too.
	if _, err := as(t, other, "", "", "PING"); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Fatalf("unauthenticated PING: %v", err)
	}

	// A restarted node keeps its port, identity and slots (nodes.conf) and the
	// cluster recovers.
	id0, err := nodes[1].Do(ctxT(t), "CLUSTER", "MYID")
	if err != nil {
		t.Fatal(err)
	}
	port1 := nodes[1].Port()
	if err := nodes[1].Restart(); err != nil {
		t.Fatal(err)
	}
	if id1, err := nodes[1].Do(ctxT(t), "CLUSTER", "MYID"); err != nil || id1 != id0 || nodes[1].Port() != port1 {
		t.Fatalf("after restart: id %v (was %v), port %d (was %d), err %v", id1, id0, nodes[1].Port(), port1, err)
	}
	if err := c.WaitReady(ctxT(t)); err != nil {
		t.Fatalf("cluster after node restart: %v", err)
	}

	var pids []int
	var dirs []string
	for _, p := range nodes {
		pids, dirs = append(pids, p.Pid()), append(dirs, p.Dir())
		if _, err := os.Stat(p.Dir() + "/nodes.conf"); err != nil {
			t.Fatalf("nodes.conf: %v", err)
		}
	}
	closed = true
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	for i := range pids {
		if err := syscall.Kill(pids[i], 0); !errors.Is(err, syscall.ESRCH) {
			t.Fatalf("node %d pid %d alive after Close: %v", i, pids[i], err)
		}
		if _, err := os.Stat(dirs[i]); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("node %d dir remains: %v", i, err)
		}
	}
}

func TestClusterConfigErrors(t *testing.T) {
	for _, cfg := range []ClusterConfig{
		{Masters: -1},
		{Masters: 3, AnnouncePorts: []int{1, 2}},
		{Masters: 2, AnnouncePorts: []int{1, 0}},
		{RedisServer: "/nonexistent/redis-server"},
	} {
		if c, err := StartCluster(cfg); err == nil {
			c.Close()
			t.Errorf("StartCluster(%+v) succeeded", cfg)
		}
	}
}
