package testnet

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"

	"peer/gossip/gossiptest"
	"peer/node"
	"peer/transfer"
)

// benchDHT provides opts.Keys CIDs, each from a random node, then runs opts.Lookups lookups,
// each from a random other node, and measures the time to find the provider.
func benchDHT(ctx context.Context, opts *BenchOptions, res *Result) error {
	nw, err := startMeasured(ctx, opts, res)
	if err != nil {
		return err
	}
	defer nw.Close()
	rng := rand.New(rand.NewPCG(opts.Seed, 0xd47))
	type key struct {
		c    cid.Cid
		prov *Node
	}
	keys := make([]key, opts.Keys)
	for k := range keys {
		sum := sha256.Sum256(fmt.Appendf(nil, "bench dht key %d seed %d", k, opts.Seed))
		m, _ := mh.Encode(sum[:], mh.SHA2_256)
		keys[k] = key{cid.NewCidV1(cid.Raw, m), nw.Nodes[rng.IntN(len(nw.Nodes))]}
		pctx, cancel := context.WithTimeout(ctx, opts.Timeout)
		t0 := time.Now()
		err := keys[k].prov.Discovery().DHT().Provide(pctx, keys[k].c, true)
		cancel()
		ev := Event{Kind: "provide", Node: keys[k].prov.Index, Target: keys[k].c.String(), Millis: millis(time.Since(t0)), OK: err == nil}
		if err != nil {
			ev.Err = err.Error()
		}
		res.Events = append(res.Events, ev)
	}
	opts.logf("provided %d keys; %d lookups", len(keys), opts.Lookups)
	for range opts.Lookups {
		k := keys[rng.IntN(len(keys))]
		from := nw.Nodes[rng.IntN(len(nw.Nodes))]
		for from == k.prov {
			from = nw.Nodes[rng.IntN(len(nw.Nodes))]
		}
		lctx, cancel := context.WithTimeout(ctx, opts.Timeout)
		t0 := time.Now()
		found := false
		for ai := range from.Discovery().FindProviders(lctx, k.c) {
			if ai.ID == k.prov.ID() {
				found = true
				break
			}
		}
		d := time.Since(t0)
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		ev := Event{Kind: "lookup", Node: from.Index, Target: k.c.String(), Millis: millis(d), OK: found}
		if !found {
			ev.Err = "provider not found"
		}
		res.Events = append(res.Events, ev)
	}
	res.Summary = append(latencyStats("lookup", res.Events, "lookup"), latencyStats("provide", res.Events, "provide")...)
	res.Summary = append(res.Summary, Stat{"routing table mean", meanRoutingTable(nw), "peers"})
	return nil
}

func meanRoutingTable(nw *Network) float64 {
	live := nw.Live()
	sum := 0
	for _, n := range live {
		sum += n.Discovery().RoutingTableSize()
	}
	return float64(sum) / float64(max(1, len(live)))
}

// killTarget is how many of n nodes churn has killed after step of steps: maxKill*step/steps of
// them, rounded down so that no step kills more than announced, and never the last node.
func killTarget(maxKill float64, step, steps, n int) int {
	k := int(maxKill*float64(step)/float64(steps)*float64(n) + 1e-9)
	return max(0, min(k, n-1))
}

// benchGossip measures announcement propagation with gossiptest.MeasurePropagation: a mocknet
// of gossip nodes (degree 6) with opts.Latency links (defaultGossipLatency unless given).
func benchGossip(ctx context.Context, opts *BenchOptions, res *Result) error {
	opts.logf("gossip: %d nodes, %d announcements", opts.Nodes, opts.Messages)
	pr, err := gossiptest.MeasurePropagation(ctx, gossiptest.PropagationOptions{
		Nodes: opts.Nodes, Latency: opts.Latency, Messages: opts.Messages, Timeout: opts.Timeout, Seed: opts.Seed,
	})
	if err != nil {
		return err
	}
	res.Setup = Setup{Transport: "mocknet", Seconds: pr.Setup.Seconds()}
	for _, d := range pr.Delays {
		res.Events = append(res.Events, Event{Kind: "receipt", Node: -1, Millis: millis(d), OK: true})
	}
	for range pr.Lost {
		res.Events = append(res.Events, Event{Kind: "receipt", Node: -1, OK: false, Err: "not received within the timeout"})
	}
	res.Summary = latencyStats("receipt", res.Events, "receipt")
	res.Summary = append(res.Summary, Stat{"lost", float64(pr.Lost), ""})
	return nil
}

// writeRandomFile writes size deterministic pseudo-random bytes to path and returns their sha256.
func writeRandomFile(path string, size int64, seed uint64) ([32]byte, error) {
	f, err := os.Create(path)
	if err != nil {
		return [32]byte{}, err
	}
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16), byte(seed >> 24), 'p', 'e', 'e', 'r'})
	h := sha256.New()
	buf := make([]byte, 1<<20)
	for left := size; left > 0; {
		n := min(left, int64(len(buf)))
		_, _ = r.Read(buf[:n])
		h.Write(buf[:n])
		if _, err := f.Write(buf[:n]); err != nil {
			f.Close()
			return [32]byte{}, err
		}
		left -= n
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum, f.Close()
}

func fileSHA256(path string) ([32]byte, error) {
	var sum [32]byte
	f, err := os.Open(path)
	if err != nil {
		return sum, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return sum, fmt.Errorf("reading %s: %w", path, err)
	}
	copy(sum[:], h.Sum(nil))
	return sum, nil
}

func rateOption(rate int64) Option {
	return WithNodeOptions(func(_ int, o *node.Options) {
		if rate > 0 {
			o.Transfer = append(o.Transfer, transfer.WithRateLimit(rate))
		}
	})
}

// benchTransfer fetches, for s = 1 .. opts.Seeders, a new file shared by nodes 1..s on node 0,
// and measures the throughput.
func benchTransfer(ctx context.Context, opts *BenchOptions, res *Result) error {
	nw, err := startMeasured(ctx, opts, res, rateOption(opts.SeederRate))
	if err != nil {
		return err
	}
	defer nw.Close()
	files, err := os.MkdirTemp("", "peer-bench-files-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(files)
	fetcher := nw.Nodes[0]
	for s := 1; s <= opts.Seeders; s++ {
		src := filepath.Join(files, fmt.Sprintf("file-%d.bin", s))
		want, err := writeRandomFile(src, opts.FileSize, opts.Seed*1000+uint64(s))
		if err != nil {
			return err
		}
		var root cid.Cid
		for _, seeder := range nw.Nodes[1 : s+1] {
			f, err := seeder.Share(ctx, src, node.ShareOptions{})
			if err != nil {
				return fmt.Errorf("node %d sharing: %w", seeder.Index, err)
			}
			root = f.Root
		}
		out := filepath.Join(files, fmt.Sprintf("fetched-%d.bin", s))
		fctx, cancel := context.WithTimeout(ctx, opts.Timeout)
		t0 := time.Now()
		fr, err := fetcher.Fetch(fctx, root, node.FetchOptions{Output: out})
		d := time.Since(t0)
		cancel()
		ev := Event{Kind: "fetch", Node: 0, Target: root.String(), Seeders: s, Millis: millis(d), Bytes: opts.FileSize}
		if err == nil {
			got, herr := fileSHA256(out)
			switch {
			case herr != nil:
				err = herr
			case got != want:
				err = errors.New("fetched file differs from the shared one")
			}
		}
		if err != nil {
			ev.Err = err.Error()
		} else {
			ev.OK = true
			ev.MBps = float64(opts.FileSize) / 1e6 / d.Seconds()
		}
		for _, ps := range fr.Stats.Peers {
			if ps.Blocks > 0 {
				ev.Peers++
			}
		}
		res.Events = append(res.Events, ev)
		opts.logf("%d seeders: %.1f MB/s, blocks from %d of them (%v)", s, ev.MBps, ev.Peers, d.Round(time.Millisecond))
		if err := fetcher.Remove(ctx, root); err != nil {
			return err
		}
		os.Remove(out)
	}
	for _, e := range res.Events {
		res.Summary = append(res.Summary, Stat{fmt.Sprintf("throughput, %d seeders", e.Seeders), e.MBps, "MB/s"})
	}
	return nil
}

// benchChurn shares opts.Files files, each on opts.Replicas random nodes, then kills the nodes
// in a random order and, at each of opts.KillSteps+1 steps, has a fresh probe node try to fetch
// every file.
func benchChurn(ctx context.Context, opts *BenchOptions, res *Result) error {
	nw, err := startMeasured(ctx, opts, res, rateOption(opts.SeederRate))
	if err != nil {
		return err
	}
	defer nw.Close()
	files, err := os.MkdirTemp("", "peer-bench-files-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(files)
	rng := rand.New(rand.NewPCG(opts.Seed, 0xc4))
	n := opts.Nodes
	type shared struct {
		root    cid.Cid
		sum     [32]byte
		holders []int
	}
	all := make([]shared, opts.Files)
	for i := range all {
		src := filepath.Join(files, fmt.Sprintf("churn-%d.bin", i))
		sum, err := writeRandomFile(src, opts.FileSize, opts.Seed*7919+uint64(i))
		if err != nil {
			return err
		}
		all[i].sum = sum
		all[i].holders = rng.Perm(n)[:opts.Replicas]
		for _, h := range all[i].holders {
			f, err := nw.Nodes[h].Share(ctx, src, node.ShareOptions{})
			if err != nil {
				return fmt.Errorf("node %d sharing: %w", h, err)
			}
			all[i].root = f.Root
		}
	}
	// Wait until every provide went out, so that availability depends on the kills alone.
	wctx, cancel := context.WithTimeout(ctx, opts.Timeout+time.Duration(n)*100*time.Millisecond)
	err = waitFor(wctx, func() bool {
		for _, nd := range nw.Nodes[:n] {
			if s := nd.Discovery().Stats(); s.Pending > 0 || s.Provided < uint64(s.Roots) {
				return false
			}
		}
		return true
	})
	cancel()
	if err != nil {
		return fmt.Errorf("waiting for provides: %w", err)
	}
	most := killTarget(opts.MaxKill, opts.KillSteps, opts.KillSteps, n)
	opts.logf("%d files on %d nodes each; killing up to %d of %d nodes (%.0f%%, at most %.0f%%)", opts.Files, opts.Replicas, most, n, 100*float64(most)/float64(n), opts.MaxKill*100)
	order := rng.Perm(n)
	killed := 0
	for step := 0; step <= opts.KillSteps; step++ {
		for target := killTarget(opts.MaxKill, step, opts.KillSteps, n); killed < target; killed++ {
			if err := nw.Kill(order[killed]); err != nil {
				return err
			}
		}
		frac := float64(killed) / float64(n)
		live := nw.Live()
		boot := live[rng.IntN(len(live))]
		probe, err := nw.startNode(ctx, &peer.AddrInfo{ID: boot.ID(), Addrs: boot.Host().Addrs()})
		if err != nil {
			return fmt.Errorf("starting probe: %w", err)
		}
		var mu sync.Mutex
		var wg sync.WaitGroup
		sem := make(chan struct{}, 8)
		okCount, avail := 0, 0
		for i, f := range all {
			alive := slices.ContainsFunc(f.holders, func(h int) bool { return nw.Nodes[h].Alive() })
			if alive {
				avail++
			}
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				out := filepath.Join(files, fmt.Sprintf("probe-%d-%d.bin", step, i))
				fctx, cancel := context.WithTimeout(ctx, opts.Timeout)
				t0 := time.Now()
				_, err := probe.Fetch(fctx, f.root, node.FetchOptions{Output: out, Timeout: opts.Timeout})
				d := time.Since(t0)
				cancel()
				if err == nil {
					if got, herr := fileSHA256(out); herr != nil || got != f.sum {
						err = fmt.Errorf("fetched file differs from the shared one (%v)", herr)
					}
				}
				os.Remove(out)
				ev := Event{Kind: "probe", Node: probe.Index, Target: f.root.String(), Killed: frac, Millis: millis(d), Bytes: opts.FileSize, OK: err == nil, Available: alive}
				if err != nil {
					ev.Err = err.Error()
				}
				mu.Lock()
				res.Events = append(res.Events, ev)
				if err == nil {
					okCount++
				}
				mu.Unlock()
			}()
		}
		wg.Wait()
		if err := nw.Kill(probe.Index); err != nil {
			return err
		}
		opts.logf("%3.0f%% killed: %d/%d fetched, %d with a live holder", frac*100, okCount, len(all), avail)
		res.Summary = append(res.Summary,
			Stat{fmt.Sprintf("fetchable, %.0f%% killed", frac*100), float64(okCount) / float64(len(all)), "fraction"},
			Stat{fmt.Sprintf("with a live holder, %.0f%% killed", frac*100), float64(avail) / float64(len(all)), "fraction"})
	}
	return nil
}

// waitFor polls cond every 20 ms until it holds or ctx ends.
func waitFor(ctx context.Context, cond func() bool) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}
