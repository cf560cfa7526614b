package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/stretchr/testify/require"

	"peer/node/api"
	"peer/store"
)

// treeListing lists a tree as `diff -r` compares it, with Lstat: every name, its kind, a file's
// bytes (hashed), a link's target (the link itself, never followed), empty folders included.
func treeListing(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	require.NoError(t, filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		require.NoError(t, err)
		rel, err := filepath.Rel(root, p)
		require.NoError(t, err)
		st, err := os.Lstat(p)
		require.NoError(t, err)
		switch {
		case st.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			require.NoError(t, err)
			out[rel] = "link " + target
		case st.IsDir():
			out[rel] = "dir"
		case st.Mode().IsRegular():
			b, err := os.ReadFile(p)
			require.NoError(t, err)
			out[rel] = fmt.Sprintf("file %d %x", len(b), sha256.Sum256(b))
		default:
			t.Fatalf("%s: unexpected kind %v", p, st.Mode())
		}
		return nil
	}))
	return out
}

// makeBigAlbum writes a tree of about 24 MiB: nested folders, an empty one, symbolic links,
// names in several scripts, files of one block and of several.
func makeBigAlbum(t *testing.T) (string, int64) {
	t.Helper()
	root := filepath.Join(t.TempDir(), "album")
	var total int64
	for i := range 48 {
		dir := filepath.Join(root, fmt.Sprintf("disc %d", i%4), "ünïcødé 日本語")
		if i%2 == 1 {
			dir = filepath.Join(root, fmt.Sprintf("disc %d", i%4))
		}
		require.NoError(t, os.MkdirAll(dir, 0o755))
		size := 512 << 10
		if i%8 == 0 {
			size = 2<<20 + 12345 // several blocks
		}
		writeRandom(t, filepath.Join(dir, fmt.Sprintf("%02d – Ελληνικά.flac", i)), size, uint64(i+1))
		total += int64(size)
	}
	require.NoError(t, os.MkdirAll(filepath.Join(root, "extras", "empty"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, "cover.jpg"), []byte("jpeg"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(root, "empty.txt"), nil, 0o644))
	require.NoError(t, os.Symlink("cover.jpg", filepath.Join(root, "folder.jpg")))
	require.NoError(t, os.Symlink("../nowhere", filepath.Join(root, "extras", "dangling")))
	return root, total + 4
}

// TestFolderFetchAcrossThreeDaemonsResumesAfterKill: a folder shared in place on a, fetched on
// c (which knows only b, which knows a), comes out identical to the source; the fetching daemon
// killed with SIGKILL midway and started again completes it, receiving only what it lacked, and
// the fetched folder is then held in place and served on.
func TestFolderFetchAcrossThreeDaemonsResumesAfterKill(t *testing.T) {
	dir := t.TempDir()
	a, b, c := filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "c")
	for _, r := range []string{a, b, c} {
		initRepo(t, r)
	}
	// The seeder is throttled, so the kill lands while the fetch is under way.
	_, errOut, code := peerCmd(t, a, "config", "set", "upload_limit", "6000000")
	require.Zero(t, code, errOut)
	const network = "treefetch"
	startDaemonProcess(t, a, "--network", network)
	startDaemonProcess(t, b, "--network", network, "--bootstrap", daemonAddr(t, a))
	cCmd, _, _ := startDaemonProcess(t, c, "--network", network, "--bootstrap", daemonAddr(t, b))

	src, size := makeBigAlbum(t)
	out, errOut, code := peerCmd(t, a, "share", src)
	require.Zero(t, code, errOut)
	root := strings.TrimSpace(out)
	target := filepath.Join(t.TempDir(), "got")
	part := store.PartPath(target, cid.MustParse(root))

	fetch := exec.Command(peerBin, "--repo", c, "fetch", root, "-o", target, "--json")
	stdout, err := fetch.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, fetch.Start())
	var done int64
	sc := bufio.NewScanner(stdout)
	deadline := time.Now().Add(2 * time.Minute)
	for sc.Scan() && time.Now().Before(deadline) {
		var ev api.FetchEvent
		require.NoError(t, json.Unmarshal(sc.Bytes(), &ev), sc.Text())
		require.NotEqual(t, "done", ev.Type, "the fetch ended before the kill")
		if ev.Progress != nil && ev.Progress.BytesDone >= size/4 {
			done = ev.Progress.BytesDone
			break
		}
	}
	require.Positive(t, done, "progress was reported")
	before := countEvents(t, c)
	require.NoError(t, cCmd.Process.Kill())
	_ = cCmd.Wait()
	require.Error(t, fetch.Wait(), "the interrupted fetch fails")
	_, err = os.Lstat(target)
	require.ErrorIs(t, err, fs.ErrNotExist, "nothing under the final name")
	st, err := os.Lstat(part)
	require.NoError(t, err, "the partial tree stays")
	require.True(t, st.IsDir())

	startDaemonProcess(t, c, "--network", network, "--bootstrap", daemonAddr(t, b))
	out, errOut, code = peerCmd(t, c, "fetch", root, "-o", target, "--json")
	require.Zero(t, code, errOut)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var ev api.FetchEvent
	require.NoError(t, json.Unmarshal([]byte(lines[len(lines)-1]), &ev))
	require.Equal(t, "done", ev.Type, out)
	t.Logf("killed at %d of %d bytes; the resumed fetch found %d in place and received %d", done, size, ev.Resumed, ev.Received)
	require.GreaterOrEqual(t, ev.Resumed, done, "what the first run wrote and verified is found in place")
	require.Less(t, ev.Received, size, "only what was missing is sent again")
	require.LessOrEqual(t, ev.Received, size-done+3<<20, "not much more than what was missing")
	require.Equal(t, treeListing(t, src), treeListing(t, target), "the tree is the source's")
	_, err = os.Lstat(part)
	require.ErrorIs(t, err, fs.ErrNotExist, "no partial tree is left")
	require.LessOrEqual(t, countEvents(t, c)-before, 12, "a handful of events, none per file")

	// The fetched folder is held where it was written, and served from there.
	out, errOut, code = peerCmd(t, c, "ls", "--json")
	require.Zero(t, code, errOut)
	var files []api.File
	require.NoError(t, json.Unmarshal([]byte(out), &files))
	var held *api.File
	for i := range files {
		if files[i].CID == root {
			held = &files[i]
		}
	}
	require.NotNil(t, held)
	require.Equal(t, target, held.Path)
	require.True(t, held.Dir)
	again := filepath.Join(t.TempDir(), "again")
	out, errOut, code = peerCmd(t, b, "fetch", root, "-o", again)
	require.Zero(t, code, errOut, out)
	require.Equal(t, treeListing(t, src), treeListing(t, again))
}
