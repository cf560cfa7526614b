package main

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/stretchr/testify/require"

	"peer/internal/nettest"
	"peer/node/api"
	"peer/store"
)

// syncBuffer is a bytes.Buffer safe to read while a process writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startDaemonProcess runs `peer daemon` on repo with free loopback ports and waits (bounded) for
// its API address file.
func startDaemonProcess(t testing.TB, repo string, extra ...string) (*exec.Cmd, *syncBuffer, *syncBuffer) {
	t.Helper()
	args := append([]string{"--repo", repo, "daemon", "--listen", "/ip4/127.0.0.1/tcp/0", "--api", "127.0.0.1:0"}, extra...)
	cmd := exec.Command(peerBin, args...)
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		close(exited)
	})
	// Wait until this daemon answers (a killed predecessor may have left a stale address file).
	require.Eventually(t, func() bool {
		c, err := api.ForRepo(repo)
		return err == nil && c.Health(t.Context()) == nil && strings.Contains(stdout.String(), "API")
	}, 30*time.Second, 10*time.Millisecond, "the daemon writes its API address; stderr:\n%s", stderr)
	return cmd, stdout, stderr
}

func TestDaemonProcess(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "repo")
	out, errOut, code := peerCmd(t, repo, "init")
	require.Zero(t, code, errOut)
	id := strings.TrimSpace(out)

	// Without a daemon, `peer id` answers from the key, with no addresses.
	out, errOut, code = peerCmd(t, repo, "id", "--json")
	require.Zero(t, code, errOut)
	var offline api.ID
	require.NoError(t, json.Unmarshal([]byte(out), &offline))
	require.Equal(t, id, offline.ID)
	require.Empty(t, offline.Addrs)
	_, errOut, code = peerCmd(t, repo, "peers")
	require.NotZero(t, code)
	require.Contains(t, errOut, "no daemon is running")

	cmd, stdout, stderr := startDaemonProcess(t, repo)
	require.Contains(t, stdout.String(), "peer ID "+id)

	out, errOut, code = peerCmd(t, repo, "id", "--json")
	require.Zero(t, code, errOut)
	var online api.ID
	require.NoError(t, json.Unmarshal([]byte(out), &online))
	require.Equal(t, id, online.ID)
	require.NotEmpty(t, online.Addrs)
	for _, a := range online.Addrs {
		require.True(t, strings.HasPrefix(a, "/ip4/127.0.0.1/tcp/"), a)
		require.True(t, strings.HasSuffix(a, "/p2p/"+id), a)
		require.NotContains(t, a, "/tcp/0/", "the real port is reported")
	}

	out, errOut, code = peerCmd(t, repo, "status", "--json")
	require.Zero(t, code, errOut)
	var st api.Status
	require.NoError(t, json.Unmarshal([]byte(out), &st))
	require.Equal(t, id, st.ID)

	out, errOut, code = peerCmd(t, repo, "peers", "--json")
	require.Zero(t, code, errOut)
	require.JSONEq(t, "[]", out)

	// A second daemon on the same repo refuses, naming the lock.
	_, errOut, code = peerCmd(t, repo, "daemon", "--listen", "/ip4/127.0.0.1/tcp/0", "--api", "127.0.0.1:0")
	require.NotZero(t, code)
	require.Contains(t, errOut, "in use")
	require.Contains(t, errOut, "daemon")

	// SIGTERM: clean shutdown, exit 0, lock released, address file removed.
	require.NoError(t, terminate(t, cmd.Process))
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		require.NoError(t, err, "exit 0; stderr:\n%s", stderr)
	case <-time.After(30 * time.Second):
		t.Fatalf("daemon did not stop; stderr:\n%s", stderr)
	}
	_, err := os.Stat(filepath.Join(repo, api.AddrFile))
	require.ErrorIs(t, err, os.ErrNotExist)
	s, err := store.Open(repo)
	require.NoError(t, err, "the lock is released")
	require.NoError(t, s.Close())
}

func TestDaemonConnectsTwoProcesses(t *testing.T) {
	repoA, repoB := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	for _, r := range []string{repoA, repoB} {
		_, errOut, code := peerCmd(t, r, "init")
		require.Zero(t, code, errOut)
	}
	startDaemonProcess(t, repoA, "--network", "cli")
	out, errOut, code := peerCmd(t, repoA, "id", "--json")
	require.Zero(t, code, errOut)
	var a api.ID
	require.NoError(t, json.Unmarshal([]byte(out), &a))

	// B bootstraps off A: its DHT starts with A in the routing table.
	startDaemonProcess(t, repoB, "--network", "cli", "--bootstrap", a.Addrs[0])
	out, errOut, code = peerCmd(t, repoB, "status", "--json")
	require.Zero(t, code, errOut)
	var st api.Status
	require.NoError(t, json.Unmarshal([]byte(out), &st))
	require.Equal(t, 1, st.Peers)
	require.Equal(t, 1, st.DHT.RoutingTable)
	require.Equal(t, "/peer/cli/kad/1.0.0", st.DHT.Protocol)

	out, errOut, code = peerCmd(t, repoB, "peers")
	require.Zero(t, code, errOut)
	require.Contains(t, out, a.ID)
	out, errOut, code = peerCmd(t, repoB, "connect", a.Addrs[0])
	require.Zero(t, code, errOut)
	require.Contains(t, out, "connected to "+a.ID)
}

func TestConfigCommand(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "repo")
	_, errOut, code := peerCmd(t, repo, "init")
	require.Zero(t, code, errOut)
	out, _, code := peerCmd(t, repo, "config", "get", "api")
	require.Zero(t, code)
	require.Equal(t, "127.0.0.1:5040\n", out)
	_, errOut, code = peerCmd(t, repo, "config", "set", "bootstrap", "/ip4/127.0.0.1/tcp/4040/p2p/12D3KooWQi1G759xSxZ9v5mtiGmeCiS13r5WBV2KLfkZZjiqG3BP")
	require.Zero(t, code, errOut)
	_, errOut, code = peerCmd(t, repo, "config", "set", "mdns", "true")
	require.Zero(t, code, errOut)
	_, errOut, code = peerCmd(t, repo, "config", "set", "reprovide", "1h")
	require.Zero(t, code, errOut)
	out, _, code = peerCmd(t, repo, "config", "show")
	require.Zero(t, code)
	var c map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &c))
	require.Equal(t, true, c["mdns"])
	require.Equal(t, "1h0m0s", c["reprovide"])
	require.Len(t, c["bootstrap"], 1)

	_, errOut, code = peerCmd(t, repo, "config", "set", "no_such_key", "1")
	require.NotZero(t, code)
	require.Contains(t, errOut, "unknown setting")
	_, errOut, code = peerCmd(t, repo, "config", "set", "dht_mode", "sometimes")
	require.NotZero(t, code)
	require.Contains(t, errOut, "dht_mode")
}

func initRepo(tb testing.TB, repo string) {
	tb.Helper()
	out, err := exec.Command(peerBin, "--repo", repo, "init").CombinedOutput()
	require.NoError(tb, err, "%s", out)
}

func stopDaemon(tb testing.TB, cmd *exec.Cmd) {
	tb.Helper()
	require.NoError(tb, terminate(tb, cmd.Process))
	require.NoError(tb, cmd.Wait())
}

// BenchmarkDaemonStartToReady measures a daemon process from exec to ready: API answering and
// the DHT bootstrapped off a local peer (Start returns only then; the API says "starting" before).
// Target: under 1 s. It also reports the RSS at ready.
//
//	go test -run '^$' -bench DaemonStartToReady -benchtime 10x ./cmd/peer
func BenchmarkDaemonStartToReady(b *testing.B) {
	bootRepo, repo := filepath.Join(b.TempDir(), "boot"), filepath.Join(b.TempDir(), "node")
	for _, r := range []string{bootRepo, repo} {
		initRepo(b, r)
	}
	boot := exec.Command(peerBin, "--repo", bootRepo, "daemon", "--network", "bench", "--listen", "/ip4/127.0.0.1/tcp/0", "--api", "127.0.0.1:0")
	require.NoError(b, boot.Start())
	defer stopDaemon(b, boot)
	var bootClient *api.Client
	require.Eventually(b, func() bool {
		c, err := api.ForRepo(bootRepo)
		bootClient = c
		return err == nil
	}, 30*time.Second, time.Millisecond)
	id, err := bootClient.ID(b.Context())
	require.NoError(b, err)

	var rss float64
	b.ResetTimer()
	for range b.N {
		cmd := exec.Command(peerBin, "--repo", repo, "daemon", "--network", "bench", "--listen", "/ip4/127.0.0.1/tcp/0", "--api", "127.0.0.1:0", "--bootstrap", id.Addrs[0])
		require.NoError(b, cmd.Start())
		var c *api.Client
		require.Eventually(b, func() bool {
			var err error
			c, err = api.ForRepo(repo)
			return err == nil
		}, 30*time.Second, time.Millisecond)
		st, err := c.Status(b.Context())
		require.NoError(b, err)
		b.StopTimer()
		require.Equal(b, 1, st.DHT.RoutingTable, "bootstrapped off the local peer")
		rss = max(rss, rssMiB(b, cmd.Process.Pid))
		stopDaemon(b, cmd)
		b.StartTimer()
	}
	b.ReportMetric(rss, "MiB-rss-at-ready")
}

// BenchmarkDaemonIdleRSS reports the resident memory of a daemon left idle for 5 s after start
// (connected to one local peer). Target: at most 60 MiB.
//
//	go test -run '^$' -bench DaemonIdleRSS -benchtime 1x ./cmd/peer
func BenchmarkDaemonIdleRSS(b *testing.B) {
	for range b.N {
		repoA, repoB := filepath.Join(b.TempDir(), "a"), filepath.Join(b.TempDir(), "b")
		for _, r := range []string{repoA, repoB} {
			initRepo(b, r)
		}
		a := exec.Command(peerBin, "--repo", repoA, "daemon", "--listen", "/ip4/127.0.0.1/tcp/0", "--api", "127.0.0.1:0")
		require.NoError(b, a.Start())
		var ca *api.Client
		require.Eventually(b, func() bool {
			var err error
			ca, err = api.ForRepo(repoA)
			return err == nil
		}, 30*time.Second, time.Millisecond)
		id, err := ca.ID(b.Context())
		require.NoError(b, err)
		bn := exec.Command(peerBin, "--repo", repoB, "daemon", "--listen", "/ip4/127.0.0.1/tcp/0", "--api", "127.0.0.1:0", "--bootstrap", id.Addrs[0])
		require.NoError(b, bn.Start())
		require.Eventually(b, func() bool {
			_, err := api.ForRepo(repoB)
			return err == nil
		}, 30*time.Second, time.Millisecond)
		<-time.After(5 * time.Second) // the idle window being measured
		b.ReportMetric(rssMiB(b, bn.Process.Pid), "MiB-idle-rss")
		stopDaemon(b, bn)
		stopDaemon(b, a)
	}
}

// The daemon runs one P more than the CPUs it may use, unless GOMAXPROCS says otherwise.
func TestDaemonProcs(t *testing.T) {
	require.Equal(t, 3, daemonProcs("", 2))
	require.Equal(t, 9, daemonProcs("", 8))
	require.Equal(t, 2, daemonProcs("2", 2), "an explicit GOMAXPROCS is the user's choice")
	require.Equal(t, 1, daemonProcs("1", 1))
}

// TestDaemonAPIAnswersWhileBootstrapHangs: a bootstrap peer that never answers holds the daemon's
// start for its bootstrap timeout; meanwhile the API is up and says the daemon is starting, and
// commands wait for it or say so, never "no daemon is running". A repo held by another process
// whose API does not answer is not "no daemon" either.
func TestDaemonAPIAnswersWhileBootstrapHangs(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "repo")
	initRepo(t, repo)

	s, err := store.Open(repo) // held, as by a daemon whose API is not up
	require.NoError(t, err)
	_, errOut, code := peerCmd(t, repo, "peers")
	require.NotZero(t, code)
	require.NotContains(t, errOut, "no daemon is running")
	require.Contains(t, errOut, "in use")
	require.Contains(t, errOut, "pid")
	require.NoError(t, s.Close())

	hang, _ := nettest.HangingListener(t)
	_, pub, err := crypto.GenerateEd25519Key(rand.Reader)
	require.NoError(t, err)
	pid, err := peer.IDFromPublicKey(pub)
	require.NoError(t, err)
	boot := hang.String() + "/p2p/" + pid.String()

	cmd := exec.Command(peerBin, "--repo", repo, "daemon", "--listen", "/ip4/127.0.0.1/tcp/0", "--api", "127.0.0.1:0", "--network", "hang", "--bootstrap", boot)
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { stopDaemon(t, cmd) })

	started := time.Now()
	var health error
	require.Eventually(t, func() bool {
		c, err := api.ForRepo(repo)
		if err != nil {
			return false
		}
		health = c.Health(t.Context())
		return health != nil && !errors.Is(health, api.ErrNoDaemon)
	}, 3*time.Second, 10*time.Millisecond, "the API is up before the bootstrap ends; stderr:\n%s", stderr)
	require.ErrorIs(t, health, api.ErrStarting)
	require.NotContains(t, stdout.String(), "daemon ready", "seen while the daemon starts")
	t.Logf("API answered 'starting' %s after the start", time.Since(started).Round(time.Millisecond))

	// A command that cannot wait long enough says the daemon is starting.
	saved := daemonStartWait
	daemonStartWait = 100 * time.Millisecond
	var out, errb bytes.Buffer
	code = run(t.Context(), []string{"--repo", repo, "peers"}, nil, &out, &errb)
	daemonStartWait = saved
	require.NotZero(t, code)
	require.Contains(t, errb.String(), "starting")
	require.NotContains(t, errb.String(), "no daemon is running")
	require.NotContains(t, stdout.String(), "daemon ready", "still starting")

	// One that waits gets its answer once the daemon is up.
	outS, errOut, code := peerCmd(t, repo, "peers", "--json")
	require.Zero(t, code, errOut)
	require.JSONEq(t, "[]", outS)
	t.Logf("the daemon was ready %s after the start", time.Since(started).Round(time.Millisecond))
}
