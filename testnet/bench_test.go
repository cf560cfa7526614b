package testnet_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"peer/testnet"
)

// runBench runs a scenario small and checks that it wrote every file it lists.
func runBench(t *testing.T, opts testnet.BenchOptions) *testnet.Result {
	t.Helper()
	opts.Out = t.TempDir()
	res, err := testnet.Bench(t.Context(), opts)
	require.NoError(t, err)
	for _, f := range []string{"results.json", "events.csv", "summary.csv"} {
		require.Contains(t, res.Files, f)
	}
	for _, f := range res.Files {
		st, err := os.Stat(filepath.Join(opts.Out, f))
		require.NoError(t, err)
		require.Positive(t, st.Size(), f)
	}
	b, err := os.ReadFile(filepath.Join(opts.Out, "results.json"))
	require.NoError(t, err)
	var back testnet.Result
	require.NoError(t, json.Unmarshal(b, &back))
	require.Equal(t, len(res.Events), len(back.Events))
	require.NotEmpty(t, res.Summary)
	return res
}

func count(res *testnet.Result, kind string, ok bool) int {
	n := 0
	for _, e := range res.Events {
		if e.Kind == kind && e.OK == ok {
			n++
		}
	}
	return n
}

func TestBenchDHTFindsEveryProvider(t *testing.T) {
	res := runBench(t, testnet.BenchOptions{Scenario: "dht", Nodes: 8, Keys: 3, Lookups: 12})
	require.Equal(t, 12, count(res, "lookup", true), "every lookup found the provider")
	require.Equal(t, 3, count(res, "provide", true))
	require.Contains(t, res.Files, "dht-lookup-cdf.png")
	require.Positive(t, res.Setup.HeapPerNode)
	for _, e := range res.Events {
		require.Positive(t, e.Millis)
		require.Less(t, e.Millis, 10_000.0)
	}
}

func TestBenchDHTOnMocknetLinks(t *testing.T) {
	const latency = 5 * time.Millisecond
	res := runBench(t, testnet.BenchOptions{Scenario: "dht", Nodes: 6, Keys: 2, Lookups: 6, Latency: latency})
	require.Equal(t, "mocknet", res.Setup.Transport)
	require.Equal(t, 6, count(res, "lookup", true))
	for _, e := range res.Events {
		if e.Kind == "provide" {
			// A lookup may be answered from the node's own provider store; a provide always
			// asks its peers.
			require.GreaterOrEqual(t, e.Millis, float64(2*latency/time.Millisecond), "a provide takes at least a round trip")
		}
	}
}

func TestBenchGossipReachesEveryNode(t *testing.T) {
	res := runBench(t, testnet.BenchOptions{Scenario: "gossip", Nodes: 8, Messages: 3, Latency: 2 * time.Millisecond})
	require.Equal(t, 3*7, count(res, "receipt", true), "each announcement reached the 7 other nodes")
	require.Zero(t, count(res, "receipt", false))
	require.Contains(t, res.Files, "gossip-propagation-cdf.png")
}

func TestBenchTransferFromSeveralSeeders(t *testing.T) {
	res := runBench(t, testnet.BenchOptions{Scenario: "transfer", Nodes: 3, Seeders: 2, FileSize: 3<<20 + 17})
	require.Equal(t, 2, count(res, "fetch", true))
	for _, e := range res.Events {
		require.Positive(t, e.MBps)
		require.Equal(t, int64(3<<20+17), e.Bytes)
		require.Positive(t, e.Peers)
		require.LessOrEqual(t, e.Peers, e.Seeders, "only seeders send blocks")
	}
	require.Contains(t, res.Files, "transfer-throughput.png")
}

func TestBenchChurn(t *testing.T) {
	res := runBench(t, testnet.BenchOptions{
		Scenario: "churn", Nodes: 6, Files: 3, Replicas: 2, FileSize: 64 << 10,
		KillSteps: 2, MaxKill: 0.5, Timeout: 5 * time.Second,
	})
	require.Contains(t, res.Files, "churn-availability.png")
	probes := 0
	for _, e := range res.Events {
		if e.Kind != "probe" {
			continue
		}
		probes++
		if e.Killed == 0 {
			require.True(t, e.OK, "nothing killed: every file is fetchable: %s", e.Err)
		}
		if e.OK {
			require.True(t, e.Available, "a fetched file had a live holder")
		}
	}
	require.Equal(t, 3*3, probes, "3 files probed at 3 steps")
}

func TestBenchRejectsBadOptions(t *testing.T) {
	_, err := testnet.Bench(t.Context(), testnet.BenchOptions{Scenario: "nope"})
	require.ErrorContains(t, err, "unknown scenario")
	_, err = testnet.Bench(t.Context(), testnet.BenchOptions{Scenario: "transfer", Nodes: 3, Seeders: 5})
	require.ErrorContains(t, err, "seeders")
	_, err = testnet.Bench(t.Context(), testnet.BenchOptions{Scenario: "dht", Latency: -1})
	require.ErrorContains(t, err, "negative")
}

// BenchmarkStartNetwork starts and closes a network of 20 nodes; it reports the setup time and
// the Go heap each node holds once the network is ready.
//
//	go test ./testnet -run '^$' -bench StartNetwork -benchtime 3x
func BenchmarkStartNetwork(b *testing.B) {
	for _, tc := range []struct {
		name string
		opts []testnet.Option
	}{
		{"tcp", nil},
		{"mocknet", []testnet.Option{testnet.WithMocknet(0, 0)}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			const n = 20
			b.ReportAllocs()
			var heap uint64
			for b.Loop() {
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				nw, err := testnet.Start(b.Context(), n, tc.opts...)
				require.NoError(b, err)
				runtime.GC()
				runtime.ReadMemStats(&after)
				heap += (after.HeapInuse - min(after.HeapInuse, before.HeapInuse)) / n
				require.NoError(b, nw.Close())
			}
			b.ReportMetric(float64(heap)/float64(b.N)/(1<<20), "MiB-heap/node")
		})
	}
}
