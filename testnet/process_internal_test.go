//go:build unix

package testnet

import (
	"bufio"
	"context"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDownInterruptedStillKills: a down whose context is already canceled (Ctrl-C) still
// kills a daemon that ignores SIGTERM, and waits to see it gone.
func TestDownInterruptedStillKills(t *testing.T) {
	dir := t.TempDir()
	repo := filepath.Join(dir, "node-0")
	// A stand-in daemon: its command line names the repo, and it ignores SIGTERM. It says when
	// the trap is set: a SIGTERM before that would end it.
	cmd := exec.Command("sh", "-c", `trap "" TERM; echo ready; while :; do sleep 1; done`, repo)
	detach(cmd)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	line, rerr := bufio.NewReader(out).ReadString('\n')
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() { kill(cmd.Process.Pid); <-exited })
	require.NoError(t, rerr)
	require.Equal(t, "ready\n", line)
	require.True(t, alive(cmd.Process.Pid, repo))

	m := &Manifest{Dir: dir, Network: DefaultNetwork, Nodes: []ProcNode{{Name: "node-0", Repo: repo, PID: cmd.Process.Pid}}}
	require.NoError(t, m.write())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res, err := Down(ctx, dir, 0)
	require.NoError(t, err, "the daemon is gone once down returns")
	require.Equal(t, DownResult{Killed: 1}, res)
	require.False(t, alive(cmd.Process.Pid, repo))
	back, err := ReadManifest(dir)
	require.NoError(t, err)
	require.NotNil(t, back.Stopped)
}
