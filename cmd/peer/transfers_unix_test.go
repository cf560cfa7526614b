//go:build unix

package main

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestResumedTransferWaitsForItsSeeder: a daemon killed mid-fetch and started again while its
// only seeder does not answer (stopped with SIGSTOP: connections hang, the bootstrap times out,
// the provider is in dial backoff) keeps its transfer and completes it once the seeder answers
// again, instead of failing it for want of providers.
func TestResumedTransferWaitsForItsSeeder(t *testing.T) {
	dir := t.TempDir()
	seed, leech := filepath.Join(dir, "seed"), filepath.Join(dir, "leech")
	initRepo(t, seed)
	initRepo(t, leech)
	_, errOut, code := peerCmd(t, seed, "config", "set", "upload_limit", "8MB")
	require.Zero(t, code, errOut)
	seedCmd, _, _ := startDaemonProcess(t, seed, "--network", "patient")
	addr := daemonAddr(t, seed)
	leechCmd, _, _ := startDaemonProcess(t, leech, "--network", "patient", "--bootstrap", addr)
	const size = 16 << 20
	root, data := shareRandom(t, seed, "p.iso", size, 81)
	target := filepath.Join(t.TempDir(), "p.iso")
	id := detach(t, leech, root, target)
	require.Eventually(t, func() bool { return transfersOf(t, leech)[id].BytesDone >= size/4 }, 60*time.Second, 20*time.Millisecond)
	require.NoError(t, leechCmd.Process.Signal(syscall.SIGKILL))
	_ = leechCmd.Wait()

	require.NoError(t, seedCmd.Process.Signal(syscall.SIGSTOP))
	resumed := false
	t.Cleanup(func() {
		if !resumed {
			_ = seedCmd.Process.Signal(syscall.SIGCONT)
		}
	})
	_, _, stderr := startDaemonProcess(t, leech, "--network", "patient", "--bootstrap", addr)
	// The first try of the resumed fetch has ended: failed (what a daemon did before it waited)
	// or to be tried again.
	require.Eventually(t, func() bool {
		return strings.Contains(stderr.String(), "bootstrap found no peer") &&
			(transfersOf(t, leech)[id].State == "failed" || strings.Contains(stderr.String(), "transfer tried again"))
	}, 90*time.Second, 20*time.Millisecond, "stderr:\n%s", stderr)
	require.NoError(t, seedCmd.Process.Signal(syscall.SIGCONT))
	resumed = true
	waitState(t, leech, id, "done", 120*time.Second)
	sameFile(t, target, data)
}
