package testnet

import (
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
