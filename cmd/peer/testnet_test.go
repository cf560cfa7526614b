package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"peer/testnet"
)

// downAll stops whatever a test left running in dir. It runs in t.Cleanup, where t.Context() is
// already canceled: with it, Down would not wait for the daemons to die.
func downAll(dir string) { _, _ = testnet.Down(context.Background(), dir, 0) }

func TestTestnetDemo(t *testing.T) {
	out, stderr, code := peerCmd(t, t.TempDir(), "testnet", "demo", "--size", "3MiB")
	require.Zero(t, code, "stdout:\n%s\nstderr:\n%s", out, stderr)
	for _, want := range []string{"shares demo-", "CID bafybei", "found demo-", "fetches it by CID", "SHA-256 of the fetched file matches", "stopped every node", "done in"} {
		require.Contains(t, out, want)
	}
	dir := regexp.MustCompile(`repos in (\S+)\)`).FindStringSubmatch(out)
	require.Len(t, dir, 2, out)
	require.NoDirExists(t, dir[1], "the demo cleans up")
	require.Empty(t, processesUnder(t, dir[1]), "no daemon is left")
}

func TestTestnetUpStatusDown(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tn")
	t.Cleanup(func() { downAll(dir) })

	out, stderr, code := peerCmd(t, "", "testnet", "up", "--nodes", "3", "--dir", dir)
	require.Zero(t, code, stderr)
	require.Contains(t, out, "3 nodes of network \"testnet\"")
	require.Contains(t, out, "node-2")
	require.Len(t, processesUnder(t, dir), 3, "the daemons outlive `up`")

	m, err := testnet.ReadManifest(dir)
	require.NoError(t, err)
	require.Len(t, m.Nodes, 3)
	for _, n := range m.Nodes {
		require.Positive(t, n.PID)
		require.FileExists(t, n.Log)
		require.Contains(t, n.Addrs[0], "/ip4/127.0.0.1/tcp/")
	}

	// Each node is usable with peer --repo.
	idOut, stderr, code := peerCmd(t, m.Nodes[1].Repo, "id", "--json")
	require.Zero(t, code, stderr)
	var id struct {
		ID    string   `json:"id"`
		Addrs []string `json:"addrs"`
	}
	require.NoError(t, json.Unmarshal([]byte(idOut), &id))
	require.Equal(t, m.Nodes[1].ID, id.ID)
	peers, stderr, code := peerCmd(t, m.Nodes[1].Repo, "peers")
	require.Zero(t, code, stderr)
	require.Contains(t, peers, m.Nodes[0].ID)

	out, stderr, code = peerCmd(t, "", "testnet", "status", "--dir", dir)
	require.Zero(t, code, stderr)
	require.Contains(t, out, "3 of 3 nodes running")

	_, stderr, code = peerCmd(t, "", "testnet", "up", "--nodes", "2", "--dir", dir)
	require.NotZero(t, code)
	require.Contains(t, stderr, "already runs")

	out, stderr, code = peerCmd(t, "", "testnet", "down", "--dir", dir)
	require.Zero(t, code, stderr)
	require.Contains(t, out, "stopped 3 nodes")
	require.Empty(t, processesUnder(t, dir), "down leaves no process")

	out, _, code = peerCmd(t, "", "testnet", "status", "--dir", dir)
	require.Zero(t, code)
	require.Contains(t, out, "0 of 3 nodes running")

	// Up again in the same directory, then a down that does not wait for SIGTERM.
	_, stderr, code = peerCmd(t, "", "testnet", "up", "--nodes", "2", "--dir", dir)
	require.Zero(t, code, stderr)
	out, stderr, code = peerCmd(t, "", "testnet", "down", "--dir", dir, "--timeout", "1ns")
	require.Zero(t, code, stderr)
	// Daemons that finish their shutdown before down looks are not killed; those still running
	// are (TestDownInterruptedStillKills covers one that ignores SIGTERM).
	require.Regexp(t, `stopped 2 nodes( \([12] needed SIGKILL\))?;`, out)
	require.Empty(t, processesUnder(t, dir))
}

func TestTestnetNetns(t *testing.T) {
	if err := testnet.CanNetns(); err != nil {
		t.Skip(err)
	}
	dir := filepath.Join(t.TempDir(), "tn")
	t.Cleanup(func() { downAll(dir) })
	out, stderr, code := peerCmd(t, "", "testnet", "up", "--nodes", "3", "--netns", "--dir", dir)
	require.Zero(t, code, stderr)
	require.Contains(t, out, "network namespaces")
	m, err := testnet.ReadManifest(dir)
	require.NoError(t, err)
	for i, n := range m.Nodes {
		require.NotEmpty(t, n.Netns)
		require.FileExists(t, "/var/run/netns/"+n.Netns)
		require.True(t, strings.HasPrefix(n.Addrs[0], "/ip4/10.231.0."), "node %d: %s", i, n.Addrs[0])
	}
	out, stderr, code = peerCmd(t, "", "testnet", "status", "--dir", dir)
	require.Zero(t, code, stderr)
	require.Contains(t, out, "3 of 3 nodes running")
	require.NotContains(t, out, "no answer")

	_, stderr, code = peerCmd(t, "", "testnet", "down", "--dir", dir)
	require.Zero(t, code, stderr)
	require.Empty(t, processesUnder(t, dir))
	for _, n := range m.Nodes {
		require.NoFileExists(t, "/var/run/netns/"+n.Netns, "down removes the namespaces")
	}
}

// With --mdns the nodes of a netns testnet bootstrap off nobody: each finds the others by
// multicast DNS on the namespaces' shared link, as machines on a LAN do.
func TestTestnetNetnsMDNS(t *testing.T) {
	if err := testnet.CanNetns(); err != nil {
		t.Skip(err)
	}
	dir := filepath.Join(t.TempDir(), "tn")
	t.Cleanup(func() {
		downAll(dir)
		if t.Failed() { // what each node found, for whoever reads the failure
			for i := range 3 {
				log, _ := os.ReadFile(filepath.Join(dir, "node-"+strconv.Itoa(i), "daemon.log"))
				t.Logf("node-%d's log:\n%s", i, log)
			}
		}
	})
	out, stderr, code := peerCmd(t, "", "testnet", "up", "--nodes", "3", "--netns", "--mdns", "--dir", dir)
	require.Zero(t, code, stderr)
	require.Contains(t, out, "found by mDNS")
	m, err := testnet.ReadManifest(dir)
	require.NoError(t, err)
	require.True(t, m.MDNS)
	for _, n := range m.Nodes {
		log, err := os.ReadFile(n.Log)
		require.NoError(t, err)
		require.Regexp(t, `discovery started.* bootstrap=0 mdns=true`, string(log), "%s was given no bootstrap peer", n.Name)
	}
	// Every node finds both others.
	require.Eventually(t, func() bool {
		out, _, code := peerCmd(t, "", "testnet", "status", "--dir", dir, "--json")
		var st []testnet.NodeStatus
		if code != 0 || json.Unmarshal([]byte(out), &st) != nil || len(st) != 3 {
			return false
		}
		for _, n := range st {
			if !n.Running || n.Peers < 2 {
				return false
			}
		}
		return true
	}, 20*time.Second, 50*time.Millisecond)
	_, stderr, code = peerCmd(t, "", "testnet", "down", "--dir", dir)
	require.Zero(t, code, stderr)
	require.Empty(t, processesUnder(t, dir))

	// Without namespaces there is no multicast: a clear refusal.
	_, stderr, code = peerCmd(t, "", "testnet", "up", "--nodes", "2", "--mdns", "--dir", filepath.Join(t.TempDir(), "lo"))
	require.NotZero(t, code)
	require.Contains(t, stderr, "mDNS needs network namespaces")
}

func TestTestnetBench(t *testing.T) {
	dir := t.TempDir()
	out, stderr, code := peerCmd(t, "", "testnet", "bench", "--scenario", "dht", "--nodes", "5", "--keys", "2", "--lookups", "5", "--out", dir)
	require.Zero(t, code, stderr)
	require.Contains(t, out, "lookup succeeded")
	for _, f := range []string{"results.json", "events.csv", "summary.csv", "dht-lookup-cdf.png"} {
		require.FileExists(t, filepath.Join(dir, f))
	}

	_, stderr, code = peerCmd(t, "", "testnet", "bench", "--scenario", "nope")
	require.NotZero(t, code)
	require.Contains(t, stderr, "unknown scenario")
	_, stderr, code = peerCmd(t, "", "testnet", "bench", "--scenario", "dht", "--bandwidth", "lots")
	require.NotZero(t, code)
	require.Contains(t, stderr, "--bandwidth")
}

func TestTestnet20Processes(t *testing.T) {
	if testing.Short() {
		t.Skip("20 daemons")
	}
	dir := filepath.Join(t.TempDir(), "tn")
	t.Cleanup(func() { downAll(dir) })
	_, stderr, code := peerCmd(t, "", "testnet", "up", "--nodes", "20", "--dir", dir)
	require.Zero(t, code, stderr)
	_, nodes, err := testnet.Status(t.Context(), dir)
	require.NoError(t, err)
	require.Len(t, nodes, 20)
	for _, n := range nodes {
		require.True(t, n.Running, n.Name)
		require.Empty(t, n.Err, n.Name)
		require.Positive(t, n.Peers, n.Name)
		require.Positive(t, n.RoutingTable, n.Name)
	}
	_, stderr, code = peerCmd(t, "", "testnet", "down", "--dir", dir, "--timeout", "5s")
	require.Zero(t, code, stderr)
	require.Empty(t, processesUnder(t, dir))
}
