package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

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
func startDaemonProcess(t *testing.T, repo string, extra ...string) (*exec.Cmd, *syncBuffer, *syncBuffer) {
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
	require.Eventually(t, func() bool {
		_, err := os.Stat(filepath.Join(repo, api.AddrFile))
		return err == nil
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
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
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
