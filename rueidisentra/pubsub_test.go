package rueidisentra_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/entraredis/entraredis/entratoken"
)

// TestPubSubAcrossRotations: a subscriber (Receive) and a publisher sending a
// numbered message every 5 ms across ten rotations: on RESP3 the subscribed
// connection is re-authenticated in place, so nothing is lost, duplicated or
// reconnected.
func TestPubSubAcrossRotations(t *testing.T) {
	const life = 2 * time.Second // a rotation every second
	forEachTopology(t, life, func(t *testing.T, tg target) {
		c := tg.c(t, rueidis.ClientOption{}, entratoken.Options{})
		// On a cluster, PUBLISH reaches the subscriber's node over the cluster
		// bus from whichever node got it, in no guaranteed order: use sharded
		// pub/sub there, served by the channel's node alone.
		subscribe := c.B().Subscribe().Channel("numbers").Build()
		publish := func(msg string) rueidis.Completed { return c.B().Publish().Channel("numbers").Message(msg).Build() }
		if tg.name == "cluster" {
			subscribe = c.B().Ssubscribe().Channel("numbers").Build()
			publish = func(msg string) rueidis.Completed { return c.B().Spublish().Channel("numbers").Message(msg).Build() }
		}
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()

		var mu sync.Mutex
		var got []int
		subscribed := make(chan struct{})
		recvDone := make(chan error, 1)
		go func() {
			var once sync.Once
			recvDone <- c.Receive(ctx, subscribe, func(m rueidis.PubSubMessage) {
				n, err := strconv.Atoi(m.Message)
				if err != nil {
					t.Errorf("message %q", m.Message)
					return
				}
				if n < 0 {
					once.Do(func() { close(subscribed) })
					return
				}
				mu.Lock()
				got = append(got, n)
				mu.Unlock()
			})
		}()
		// Probe until the subscription is live: messages before it would be lost by design.
		for ready := false; !ready; {
			if err := c.Do(ctx, publish("-1")).Error(); err != nil {
				t.Fatal(err)
			}
			select {
			case <-subscribed:
				ready = true
			case <-time.After(20 * time.Millisecond):
			}
		}

		before, st0 := tg.stats(), status(t, c)
		sent := 0
		for status(t, c).Rotations-st0.Rotations < 10 && sent < 10_000 {
			if err := c.Do(ctx, publish(strconv.Itoa(sent))).Error(); err != nil {
				t.Fatalf("publish %d: %v", sent, err)
			}
			sent++
			time.Sleep(5 * time.Millisecond)
		}
		// Wait for the last messages, then stop the subscriber.
		deadline := time.Now().Add(5 * time.Second)
		for {
			mu.Lock()
			n := len(got)
			mu.Unlock()
			if n >= sent || time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
		if err := <-recvDone; err != nil && ctx.Err() == nil {
			t.Fatalf("Receive: %v", err)
		}
		after, st := tg.stats(), status(t, c)
		mu.Lock()
		defer mu.Unlock()
		seen := make(map[int]int, len(got))
		dup, order := 0, 0
		for i, n := range got {
			seen[n]++
			if seen[n] > 1 {
				dup++
			}
			if i > 0 && n != got[i-1]+1 {
				order++
			}
		}
		lost := 0
		for i := range sent {
			if seen[i] == 0 {
				lost++
			}
		}
		t.Logf("%s: %d rotations, %d sent, %d received, %d lost, %d duplicated, %d out of order, %d reconnects, %d re-AUTHs, %d closed for expiry",
			tg.name, st.Rotations-st0.Rotations, sent, len(got), lost, dup, order, after.Accepted-before.Accepted, after.ReAuths-before.ReAuths, after.ExpiryCloses-before.ExpiryCloses)
		if st.Rotations-st0.Rotations < 10 {
			t.Fatalf("only %d rotations", st.Rotations-st0.Rotations)
		}
		if lost != 0 || dup != 0 || order != 0 {
			t.Fatalf("%d lost, %d duplicated, %d out of order of %d", lost, dup, order, sent)
		}
		if n := after.Accepted - before.Accepted; n != 0 {
			t.Fatalf("%d reconnects", n)
		}
		if n := after.ExpiryCloses - before.ExpiryCloses; n != 0 {
			t.Fatalf("%d connections closed for expiry", n)
		}
		if n := after.ReAuths - before.ReAuths; n < 9 { // the last rotation's may come after the end
			t.Fatalf("%d re-AUTHs in 10 rotations", n)
		}
	})
}
