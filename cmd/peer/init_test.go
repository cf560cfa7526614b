package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"peer/internal/config"
)

// An unknown profile is refused before anything is made.
func TestInitUnknownProfileMakesNothing(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "repo")
	_, errOut, code := runPeer(t, "", "--repo", repo, "init", "--profile", "bogus")
	require.NotZero(t, code)
	require.Contains(t, errOut, "unknown profile")
	require.NoDirExists(t, repo)

	// Nor in a directory that exists (empty, or holding the user's things).
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o600))
	_, _, code = runPeer(t, "", "--repo", dir, "init", "--profile", "bogus")
	require.NotZero(t, code)
	list, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, list, 1)

	_, errOut, code = runPeer(t, "", "--repo", repo, "init", "--profile", "lan")
	require.Zero(t, code, errOut)
	c, err := config.Load(repo)
	require.NoError(t, err)
	require.True(t, c.MDNS)
}

// A failure after the repo was begun removes what init made.
func TestInitUndoesAFailedInit(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "repo")
	require.NoError(t, os.MkdirAll(filepath.Join(repo, config.FileName), 0o700)) // config.json cannot be written
	_, _, code := runPeer(t, "", "--repo", repo, "init")
	require.NotZero(t, code)
	list, err := os.ReadDir(repo)
	require.NoError(t, err)
	require.Len(t, list, 1, "only what was there before: %v", list)
	require.NoFileExists(t, filepath.Join(repo, "identity.key"))
}

// On an existing repo a profile changes nothing without --force, and says what it would change.
func TestInitProfileOnExistingRepoNeedsForce(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "repo")
	id, errOut, code := runPeer(t, "", "--repo", repo, "init")
	require.Zero(t, code, errOut)
	_, errOut, code = runPeer(t, "", "--repo", repo, "config", "set", "conn_high", "500")
	require.Zero(t, code, errOut)
	before, err := os.ReadFile(filepath.Join(repo, config.FileName))
	require.NoError(t, err)

	_, errOut, code = runPeer(t, "", "--repo", repo, "init", "--profile", "lan")
	require.NotZero(t, code)
	require.Contains(t, errOut, "mdns: false → true")
	require.Contains(t, errOut, "--force")
	after, err := os.ReadFile(filepath.Join(repo, config.FileName))
	require.NoError(t, err)
	require.Equal(t, string(before), string(after), "nothing changed")

	id2, errOut, code := runPeer(t, "", "--repo", repo, "init", "--profile", "lan", "--force")
	require.Zero(t, code, errOut)
	require.Equal(t, id, id2)
	require.Contains(t, errOut, "changed mdns: false → true")
	c, err := config.Load(repo)
	require.NoError(t, err)
	require.True(t, c.MDNS)
	require.Equal(t, 500, c.ConnHigh, "other settings are kept")

	// Applied already: nothing to change, so no --force needed.
	_, errOut, code = runPeer(t, "", "--repo", repo, "init", "--profile", "lan")
	require.Zero(t, code, errOut)
}

func TestInitJSON(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "repo")
	for i, created := range []bool{true, false} {
		out, errOut, code := runPeer(t, "", "--repo", repo, "init", "--json")
		require.Zero(t, code, errOut)
		var r map[string]any
		require.NoError(t, json.Unmarshal([]byte(out), &r), out)
		require.Equal(t, created, r["created"], "run %d: false is written, not left out", i)
		require.Equal(t, repo, r["repo"])
		require.Regexp(t, `^12D3KooW`, r["id"])
		require.Len(t, r, 3)
	}
}
