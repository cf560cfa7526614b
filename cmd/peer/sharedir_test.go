package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"peer/store"
)

// share takes folders and files alike, prints one CID per argument (a folder's is the one add
// gives it, hidden files included with --hidden), and search on another node shows the folder
// with its file count.
func TestShareFolderAndSearch(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	initRepo(t, a)
	initRepo(t, b)
	startDaemonProcess(t, a, "--network", "share-folder")
	startDaemonProcess(t, b, "--network", "share-folder", "--bootstrap", daemonAddr(t, a))

	src := filepath.Join(t.TempDir(), "album")
	require.NoError(t, os.MkdirAll(filepath.Join(src, "sub"), 0o755))
	writeRandom(t, filepath.Join(src, "one.jpg"), 70_000, 1)
	writeRandom(t, filepath.Join(src, "sub", "two.jpg"), 3_000, 2)
	writeRandom(t, filepath.Join(src, ".hidden"), 10, 3)
	single := filepath.Join(t.TempDir(), "single.bin")
	writeRandom(t, single, 5_000, 4)

	out, errOut, code := peerCmd(t, a, "add", "--only-hash", "--quiet", "--hidden", src)
	require.Zero(t, code, errOut)
	want := strings.TrimSpace(out)

	out, errOut, code = peerCmd(t, a, "share", "-r", "--hidden", src, single)
	require.Zero(t, code, errOut)
	cids := strings.Fields(out)
	require.Len(t, cids, 2, out)
	require.Equal(t, want, cids[0], "the folder's CID is the one add gives")

	require.Eventually(t, func() bool {
		out, _, code := peerCmd(t, b, "search", "album", "--json")
		return code == 0 && strings.Contains(out, cids[0])
	}, 20*time.Second, 50*time.Millisecond, "the announcement reaches b")
	out, errOut, code = peerCmd(t, b, "search", "album", "--json")
	require.Zero(t, code, errOut)
	var offers []store.Offer
	require.NoError(t, json.Unmarshal([]byte(out), &offers))
	require.Len(t, offers, 1)
	require.True(t, offers[0].Dir)
	require.Equal(t, uint64(3), offers[0].Files)
	require.Equal(t, uint64(73_010), offers[0].Size)
	out, errOut, code = peerCmd(t, b, "search", "album")
	require.Zero(t, code, errOut)
	require.Contains(t, out, "album/ (3 files)")

	_, errOut, code = peerCmd(t, a, "share", filepath.Join(dir, "missing"))
	require.NotZero(t, code)
	require.Contains(t, errOut, "no such file or folder")
}
