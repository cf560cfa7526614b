package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"peer/store"
)

// makeAlbum writes a small tree: files at two depths, an empty folder, a symbolic link, a
// unicode name and a hidden file.
func makeAlbum(t *testing.T) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "album")
	for name, data := range map[string]string{
		"cover.jpg":                "jpeg bytes",
		"disc 1/01 – Ünïcode.flac": "flac one",
		"disc 1/02.flac":           "flac two",
		".DS_Store":                "hidden",
	} {
		p := filepath.Join(root, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(data), 0o644))
	}
	require.NoError(t, os.MkdirAll(filepath.Join(root, "extras"), 0o755))
	require.NoError(t, os.Symlink("cover.jpg", filepath.Join(root, "folder.jpg")))
	return root
}

func countEvents(t *testing.T, repo string) int {
	t.Helper()
	out, errOut, code := peerCmd(t, repo, "events", "--json")
	require.Zero(t, code, errOut)
	return strings.Count(out, "\n")
}

func TestCLIAddFolders(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "repo")
	_, _, code := peerCmd(t, repo, "init")
	require.Zero(t, code)
	album := makeAlbum(t)
	single := filepath.Join(t.TempDir(), "notes.txt")
	require.NoError(t, os.WriteFile(single, []byte("notes"), 0o644))
	want, err := store.HashTree(t.Context(), album, store.AddOptions{})
	require.NoError(t, err)

	// Only hashing stores nothing and gives the same CID.
	out, errOut, code := peerCmd(t, repo, "add", "-n", "-q", album)
	require.Zero(t, code, errOut)
	require.Equal(t, want.Root.String()+"\n", out)

	// Folders and files in one batch, -r accepted, one root CID per argument.
	before := countEvents(t, repo)
	out, errOut, code = peerCmd(t, repo, "add", "-r", "--quiet", album, single)
	require.Zero(t, code, errOut)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 2)
	require.Equal(t, want.Root.String(), lines[0])
	root := lines[0]
	require.Equal(t, before+2, countEvents(t, repo), "one event per argument, not per file")

	// --hidden includes .DS_Store: another root.
	out, errOut, code = peerCmd(t, repo, "add", "-q", "-n", "--hidden", album)
	require.Zero(t, code, errOut)
	require.NotEqual(t, root, strings.TrimSpace(out))

	// peer ls: the folder is one entry with its file count and total size.
	out, errOut, code = peerCmd(t, repo, "ls")
	require.Zero(t, code, errOut)
	require.Contains(t, out, "album/ (3 files)")
	out, errOut, code = peerCmd(t, repo, "ls", "--json")
	require.Zero(t, code, errOut)
	var files []store.File
	require.NoError(t, json.Unmarshal([]byte(out), &files))
	var folder store.File
	for _, f := range files {
		if f.CID == root {
			folder = f
		}
	}
	require.True(t, folder.Dir)
	require.Equal(t, uint64(3), folder.Files)
	require.Equal(t, uint64(len("jpeg bytes")+len("flac one")+len("flac two")), folder.Size)

	checkFolderCommands(t, repo, root)
}

// checkFolderCommands checks ls CID[/path], cat CID/path and /ipfs/ paths on an added album.
func checkFolderCommands(t *testing.T, repo, root string) {
	t.Helper()
	out, errOut, code := peerCmd(t, repo, "ls", root)
	require.Zero(t, code, errOut)
	require.Regexp(t, `(?m)^\S+\s+10 B\s+file\s+cover\.jpg$`, out)
	require.Regexp(t, `(?m)^\S+\s+-\s+dir\s+disc 1/$`, out)
	require.Regexp(t, `(?m)^\S+\s+-\s+dir\s+extras/$`, out)
	require.Regexp(t, `(?m)^\S+\s+9 B\s+symlink\s+folder\.jpg$`, out)
	require.NotContains(t, out, "DS_Store")

	out, errOut, code = peerCmd(t, repo, "ls", "--json", "/ipfs/"+root+"/disc 1")
	require.Zero(t, code, errOut)
	var es []store.Entry
	require.NoError(t, json.Unmarshal([]byte(out), &es))
	require.Len(t, es, 2)
	require.Equal(t, "01 – Ünïcode.flac", es[0].Name)
	require.Equal(t, "file", es[0].Kind)
	require.Equal(t, uint64(8), es[0].Size)

	out, errOut, code = peerCmd(t, repo, "ls", "--json", root+"/extras")
	require.Zero(t, code, errOut)
	require.JSONEq(t, "[]", out)

	for _, p := range []string{root + "/disc 1/01 – Ünïcode.flac", "/ipfs/" + root + "/disc 1/01 – Ünïcode.flac"} {
		out, errOut, code = peerCmd(t, repo, "cat", p)
		require.Zero(t, code, errOut)
		require.Equal(t, "flac one", out)
	}
	for _, tc := range []struct{ path, want string }{
		{root + "/nope.txt", "no such entry"},
		{root + "/cover.jpg/x", "not a directory"},
		{root + "/disc 1", "not a file"},
	} {
		_, errOut, code = peerCmd(t, repo, "cat", tc.path)
		require.NotZero(t, code, tc.path)
		require.Contains(t, errOut, tc.want, tc.path)
		require.Equal(t, 1, strings.Count(strings.TrimSpace(errOut), "\n")+1, "one line: %q", errOut)
	}
	_, errOut, code = peerCmd(t, repo, "ls", root+"/cover.jpg")
	require.NotZero(t, code)
	require.Contains(t, errOut, "not a directory")
}

// TestCLIAddFolderThroughDaemon: with a daemon running, add hands it the folder's path, and ls
// and cat by path go through its API.
func TestCLIAddFolderThroughDaemon(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "repo")
	_, _, code := peerCmd(t, repo, "init")
	require.Zero(t, code)
	startDaemonProcess(t, repo)
	album := makeAlbum(t)
	want, err := store.HashTree(t.Context(), album, store.AddOptions{})
	require.NoError(t, err)
	out, errOut, code := peerCmd(t, repo, "add", album)
	require.Zero(t, code, errOut)
	require.Equal(t, "added "+want.Root.String()+" album\n", out)
	out, errOut, code = peerCmd(t, repo, "ls")
	require.Zero(t, code, errOut)
	require.Contains(t, out, "album/ (3 files)")
	checkFolderCommands(t, repo, want.Root.String())
}
