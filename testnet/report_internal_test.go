package testnet

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestResultsOfAFailedRunAreWritten: a run in which nothing succeeded still writes its files
// (a quantile of no samples must not reach results.json as NaN).
func TestResultsOfAFailedRunAreWritten(t *testing.T) {
	evs := []Event{{Kind: "lookup", Node: 1, Err: "provider not found"}, {Kind: "lookup", Node: 2, Err: "provider not found"}}
	r := &Result{Scenario: "dht", Nodes: 3, Events: evs, Summary: latencyStats("lookup", evs, "lookup")}
	require.Equal(t, []Stat{{"lookup count", 2, ""}, {"lookup succeeded", 0, ""}}, r.Summary)
	dir := t.TempDir()
	require.NoError(t, r.write(dir))
	require.FileExists(t, filepath.Join(dir, "results.json"))

	evs = append(evs, Event{Kind: "lookup", Millis: 7, OK: true})
	require.Len(t, latencyStats("lookup", evs, "lookup"), 6, "with a success, the quantiles too")
}

// A plot's title says what it was measured under: latency, bandwidth, file size, seeder rate.
func TestPlotTitlesCarryTheConditions(t *testing.T) {
	r := &Result{Scenario: "transfer", Nodes: 5, Latency: "0s", Setup: Setup{Transport: "tcp"},
		Options: BenchOptions{FileSize: 64 << 20, SeederRate: 25e6}}
	require.Equal(t, "Fetch throughput\n5 nodes, loopback tcp, 64 MiB files, seeders capped at 25 MB/s", r.title("Fetch throughput"))
	r = &Result{Scenario: "churn", Nodes: 20, Latency: "10ms", Bandwidth: 12.5e6, Setup: Setup{Transport: "mocknet"},
		Options: BenchOptions{FileSize: 256 << 10}}
	require.Equal(t, "Churn\n20 nodes, mocknet, 10ms latency, 12.5 MB/s, 256 KiB files, seeders uncapped", r.title("Churn"))
	r = &Result{Scenario: "gossip", Nodes: 8, Latency: "20ms", Setup: Setup{Transport: "mocknet"}}
	require.Equal(t, "Gossip\n8 nodes, mocknet, 20ms latency, unlimited bandwidth", r.title("Gossip"))

	dir := t.TempDir()
	r.Events = []Event{{Kind: "receipt", Millis: 20, OK: true}, {Kind: "receipt", Millis: 25, OK: true}}
	require.NoError(t, r.write(dir), "a title of two lines plots")
	require.FileExists(t, filepath.Join(dir, "gossip-propagation-cdf.png"))
}

// results.json keeps zero values: the first churn step killed 0 nodes, and says so.
func TestResultsKeepZeroValues(t *testing.T) {
	r := &Result{Scenario: "churn", Nodes: 4, Options: BenchOptions{Replicas: 2},
		Events: []Event{{Kind: "probe", Node: 4, Killed: 0, OK: true, Available: true}}}
	dir := t.TempDir()
	require.NoError(t, r.write(dir))
	b, err := os.ReadFile(filepath.Join(dir, "results.json"))
	require.NoError(t, err)
	var back struct {
		Events []map[string]any `json:"events"`
	}
	require.NoError(t, json.Unmarshal(b, &back))
	require.Len(t, back.Events, 1)
	for _, k := range []string{"killed", "seeders", "peers", "bytes", "mbps", "error", "target", "available"} {
		require.Contains(t, back.Events[0], k)
	}
	require.Equal(t, 0.0, back.Events[0]["killed"])
}
