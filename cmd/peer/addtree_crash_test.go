package main

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"peer/store"
)

// TestCrashDuringAddTree kills `peer add` of a folder of small files (whose blocks go into one
// pack) at random moments and checks the repo each time: it opens, a folder listed complete has
// every file readable, and the same add then completes.
func TestCrashDuringAddTree(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "repo")
	_, _, code := peerCmd(t, repo, "init")
	require.Zero(t, code)
	tree := filepath.Join(t.TempDir(), "tree")
	want := map[string]string{}
	for i := range 2000 {
		rel := filepath.Join(fmt.Sprintf("d%02d", i%20), fmt.Sprintf("f%04d", i))
		data := fmt.Sprintf("file %d %s", i, strings.Repeat("x", i%3000))
		want[rel] = data
		p := filepath.Join(tree, rel)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(data), 0o644))
	}
	r := rand.New(rand.NewPCG(9, 9))
	const trials = 12
	killed := 0
	for trial := range trials {
		cmd := exec.Command(peerBin, "--repo", repo, "add", "--quiet", tree)
		require.NoError(t, cmd.Start())
		delay := time.Duration(r.IntN(150)) * time.Millisecond
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-time.After(delay):
			_ = cmd.Process.Kill()
			if err := <-done; err != nil {
				killed++
			}
		case <-done:
		}

		s, err := store.Open(repo)
		require.NoError(t, err, "trial %d", trial)
		for _, f := range s.Files() {
			require.Equal(t, store.Complete, f.State)
			for rel, data := range want {
				c, err := s.Resolve(t.Context(), f.Root, strings.Split(rel, string(filepath.Separator)))
				require.NoError(t, err, "trial %d: %s listed complete", trial, rel)
				rc, err := s.Cat(t.Context(), c)
				require.NoError(t, err, "trial %d: %s", trial, rel)
				got, err := io.ReadAll(rc)
				rc.Close()
				require.NoError(t, err, "trial %d: %s listed complete but unreadable", trial, rel)
				require.Equal(t, data, string(got))
			}
		}
		require.NoError(t, s.Close())
	}
	t.Logf("%d of %d adds were killed mid-way", killed, trials)
	require.Positive(t, killed, "the kills must land while add runs")
	_, stderr, code := peerCmd(t, repo, "add", "--quiet", tree)
	require.Zero(t, code, stderr)
	_, stderr, code = peerCmd(t, repo, "gc")
	require.Zero(t, code, stderr)
	s, err := store.Open(repo)
	require.NoError(t, err)
	defer s.Close()
	files := s.Files()
	require.Len(t, files, 1)
	require.Equal(t, uint64(2000), files[0].Files)
}
