//go:build unix

package store_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"peer/store"
)

// bigFiles is the folder TestBigTreeKeepsMemoryFlat adds: 100,000 files of 4 KiB in 1,000
// folders of 100.
const bigFolders, bigPerFolder, bigFileSize = 1000, 100, 4096

// TestBigTreeKeepsMemoryFlat adds, then shares in place, a folder of 100,000 files, each in a
// process of its own (this test binary again, as TestBigTreeChild) so that its peak RSS is that
// process's alone: under 150 MiB each, and the event log grows by one event per folder, not one
// per file. Opt-in (PEER_BIG=1): it writes 400 MB and takes minutes here.
//
//	PEER_BIG=1 go test -run TestBigTreeKeepsMemoryFlat -v -timeout 30m ./store/
func TestBigTreeKeepsMemoryFlat(t *testing.T) {
	if os.Getenv("PEER_BIG") == "" {
		t.Skip("set PEER_BIG=1 to add and share a folder of 100,000 files")
	}
	tree := filepath.Join(t.TempDir(), "tree")
	buf := make([]byte, bigFileSize)
	r := rand.NewChaCha8([32]byte{100})
	for d := range bigFolders {
		dir := filepath.Join(tree, fmt.Sprintf("d%04d", d))
		require.NoError(t, os.MkdirAll(dir, 0o755))
		for f := range bigPerFolder {
			_, _ = r.Read(buf)
			require.NoError(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%03d.bin", f)), buf, 0o644))
		}
	}
	const files = bigFolders * bigPerFolder
	var roots []string
	for _, mode := range []string{"add", "share"} {
		repo := filepath.Join(t.TempDir(), "repo-"+mode)
		_, err := store.Init(repo)
		require.NoError(t, err)
		cmd := exec.Command(os.Args[0], "-test.run", "^TestBigTreeChild$", "-test.v")
		cmd.Env = append(os.Environ(), "PEER_BIG_CHILD="+mode, "PEER_BIG_TREE="+tree, "PEER_BIG_REPO="+repo)
		began := time.Now()
		out, err := cmd.CombinedOutput()
		took := time.Since(began)
		require.NoError(t, err, "%s", out)
		peak := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss // KiB, bytes on macOS
		if runtime.GOOS != "darwin" {
			peak *= 1024
		}
		t.Logf("%s of %d files: peak RSS %.1f MiB, %.1f s in all (%.0f files/s, process start and open included)",
			mode, files, float64(peak)/(1<<20), took.Seconds(), files/took.Seconds())
		require.Less(t, peak, int64(150<<20), "%s: peak RSS", mode)

		s, err := store.Open(repo)
		require.NoError(t, err)
		var evs []store.Event
		require.NoError(t, s.Events(0, func(e store.Event) error { evs = append(evs, e); return nil }))
		require.Len(t, evs, 1, "%s: one event for the folder", mode)
		fs := s.Files()
		require.Len(t, fs, 1)
		require.Equal(t, uint64(files), fs[0].Files)
		roots = append(roots, fs[0].CID)
		require.NoError(t, s.Close())
	}
	require.Equal(t, roots[0], roots[1], "sharing in place gives the root adding gives")
}

// TestBigTreeChild is the process TestBigTreeKeepsMemoryFlat measures: it adds (or shares in
// place) the folder PEER_BIG_TREE into the repo PEER_BIG_REPO.
func TestBigTreeChild(t *testing.T) {
	mode := os.Getenv("PEER_BIG_CHILD")
	if mode == "" {
		t.Skip("run by TestBigTreeKeepsMemoryFlat")
	}
	s, err := store.Open(os.Getenv("PEER_BIG_REPO"))
	require.NoError(t, err)
	defer s.Close()
	f, err := s.AddTree(t.Context(), os.Getenv("PEER_BIG_TREE"), store.AddOptions{Reference: mode == "share"})
	require.NoError(t, err)
	require.Equal(t, uint64(bigFolders*bigPerFolder), f.Files)
}
