package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"peer/node/api"
)

// TestFolderFetchOfManyFilesKeepsMemoryFlat fetches a folder of 100,000 files (1,000 folders of
// 100 files of 1 KiB) between two daemons and reports the fetching daemon's peak RSS and how many
// events the fetch added to its log. Opt-in, since it writes 200,000 files:
//
//	PEER_TREE_100K=1 go test -run FolderFetchOfManyFilesKeepsMemoryFlat -v -timeout 30m ./cmd/peer
func TestFolderFetchOfManyFilesKeepsMemoryFlat(t *testing.T) {
	if os.Getenv("PEER_TREE_100K") == "" {
		t.Skip("set PEER_TREE_100K=1 to fetch a folder of 100,000 files")
	}
	const folders, perFolder, size = 1000, 100, 1 << 10
	dir := t.TempDir()
	a, c := filepath.Join(dir, "a"), filepath.Join(dir, "c")
	initRepo(t, a)
	initRepo(t, c)
	startDaemonProcess(t, a, "--network", "many")
	cCmd, _, _ := startDaemonProcess(t, c, "--network", "many", "--bootstrap", daemonAddr(t, a))

	src := filepath.Join(t.TempDir(), "many")
	buf := make([]byte, size)
	for d := range folders {
		sub := filepath.Join(src, fmt.Sprintf("d%04d", d))
		require.NoError(t, os.MkdirAll(sub, 0o755))
		for f := range perFolder {
			copy(buf, fmt.Sprintf("file %d of folder %d\n", f, d))
			require.NoError(t, os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%03d", f)), buf, 0o644))
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 25*time.Minute)
	defer cancel()
	share, err := exec.CommandContext(ctx, peerBin, "--repo", a, "share", src).Output()
	require.NoError(t, err)
	root := strings.TrimSpace(string(share))

	before := countEvents(t, c)
	idle := peakRSSMiB(t, cCmd.Process.Pid)
	target := filepath.Join(t.TempDir(), "got")
	start := time.Now()
	out, err := exec.CommandContext(ctx, peerBin, "--repo", c, "fetch", root, "-o", target, "--json").Output()
	require.NoError(t, err, "%s", out)
	took := time.Since(start)
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var ev api.FetchEvent
	require.NoError(t, json.Unmarshal([]byte(lines[len(lines)-1]), &ev))
	require.Equal(t, "done", ev.Type)
	peak := peakRSSMiB(t, cCmd.Process.Pid)
	events := countEvents(t, c) - before
	t.Logf("%d files fetched in %s (%.0f files/s); fetching daemon's peak RSS %.1f MiB (%.1f MiB before the fetch); %d events added",
		folders*perFolder, took.Round(time.Millisecond), float64(folders*perFolder)/took.Seconds(), peak, idle, events)
	require.Less(t, peak, 150.0, "peak RSS under 150 MiB")
	require.LessOrEqual(t, events, 12, "a handful of events, none per file")
	n := 0
	require.NoError(t, filepath.WalkDir(target, func(_ string, e os.DirEntry, err error) error {
		if err == nil && e.Type().IsRegular() {
			n++
		}
		return err
	}))
	require.Equal(t, folders*perFolder, n)
}
