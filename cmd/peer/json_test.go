package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mattn/go-runewidth"
	"github.com/stretchr/testify/require"

	"peer/node/api"
)

func decodeLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var objs []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), "one JSON object a line: %q", line)
		objs = append(objs, m)
	}
	return objs
}

// Every offline command that prints data has --json, in one style: the CID under "cid", zero
// values kept, times in RFC 3339.
func TestJSONOfEveryOfflineCommand(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "repo")
	_, errOut, code := runPeer(t, "", "--repo", repo, "init", "--json")
	require.Zero(t, code, errOut)

	dir := t.TempDir()
	small, empty := filepath.Join(dir, "small.txt"), filepath.Join(dir, "empty")
	require.NoError(t, os.WriteFile(small, []byte("hello"), 0o644))
	require.NoError(t, os.WriteFile(empty, nil, 0o644))
	out, errOut, code := runPeer(t, "", "--repo", repo, "add", "--json", small, empty)
	require.Zero(t, code, errOut)
	added := decodeLines(t, out)
	require.Len(t, added, 2)
	require.Equal(t, map[string]any{"cid": "bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq", "name": "small.txt", "size": 5.0, "dir": false, "files": 0.0}, added[0])
	require.Equal(t, map[string]any{"cid": "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku", "name": "empty", "size": 0.0, "dir": false, "files": 0.0}, added[1], "size 0 is kept")

	out, errOut, code = runPeer(t, "", "--repo", repo, "add", "--json", "--only-hash", small)
	require.Zero(t, code, errOut)
	require.Equal(t, added[0], decodeLines(t, out)[0])

	out, errOut, code = runPeer(t, "", "--repo", repo, "ls", "--json")
	require.Zero(t, code, errOut)
	var files []map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &files))
	require.Len(t, files, 2)
	for _, f := range files {
		for _, k := range []string{"cid", "name", "size", "state", "path", "mtime", "added", "pinned", "shared", "error", "have"} {
			require.Contains(t, f, k)
		}
		_, err := time.Parse(time.RFC3339Nano, f["added"].(string))
		require.NoError(t, err)
	}

	out, errOut, code = runPeer(t, "", "--repo", repo, "rm", "--json", added[0]["cid"].(string))
	require.Zero(t, code, errOut)
	var rm map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &rm))
	require.Equal(t, map[string]any{"cid": added[0]["cid"]}, rm)

	out, errOut, code = runPeer(t, "", "--repo", repo, "gc", "--json")
	require.Zero(t, code, errOut)
	var gc map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &gc))
	require.Equal(t, map[string]any{"removed": 1.0, "bytes": 5.0, "kept": 1.0}, gc)
	out, errOut, code = runPeer(t, "", "--repo", repo, "gc", "--json")
	require.Zero(t, code, errOut)
	require.NoError(t, json.Unmarshal([]byte(out), &gc))
	require.Equal(t, map[string]any{"removed": 0.0, "bytes": 0.0, "kept": 1.0}, gc, "zeros are kept")

	out, errOut, code = runPeer(t, "", "--repo", repo, "events", "--json")
	require.Zero(t, code, errOut)
	evs := decodeLines(t, out)
	require.Len(t, evs, 3)
	for _, e := range evs {
		require.Equal(t, e["root"], e["cid"])
		require.Contains(t, e, "size")
		_, err := time.Parse(time.RFC3339Nano, e["time"].(string))
		require.NoError(t, err)
	}
	require.Equal(t, 0.0, evs[1]["size"], "the empty file's size is kept")

	out, errOut, code = runPeer(t, "", "--repo", repo, "id", "--json")
	require.Zero(t, code, errOut)
	var id map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &id))
	require.Equal(t, []any{}, id["addrs"])
	require.Len(t, id, 2)
}

// `peer add -` imports standard input, offline and through the daemon, with the same CID as the
// same bytes in a file.
func TestAddStandardInput(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "repo")
	_, errOut, code := runPeer(t, "", "--repo", repo, "init")
	require.Zero(t, code, errOut)
	src := filepath.Join(t.TempDir(), "data.bin")
	data := writeRandom(t, src, 3<<20+7, 4)
	want, errOut, code := runPeer(t, "", "--repo", repo, "add", "--quiet", "--only-hash", src)
	require.Zero(t, code, errOut)
	root := strings.TrimSpace(want)

	out, errOut, code := runPeer(t, string(data), "--repo", repo, "add", "-")
	require.Zero(t, code, errOut)
	require.Equal(t, "added "+root+" "+root+"\n", out, "unnamed, the CID stands for the name")
	out, errOut, code = runPeer(t, "hi", "--repo", repo, "add", "--json", "--name", "greeting.txt", "-")
	require.Zero(t, code, errOut)
	var r addResult
	require.NoError(t, json.Unmarshal([]byte(out), &r))
	require.Equal(t, addResult{CID: "bafkreiepinbumzepnoln7co5vea4kf3lcctnqolb3u6bvsellgznymt2uq", Name: "greeting.txt", Size: 2}, r)
	cat, errOut, code := runPeer(t, "", "--repo", repo, "cat", root)
	require.Zero(t, code, errOut)
	require.True(t, bytes.Equal(data, []byte(cat)))

	for _, bad := range [][]string{{"add", "-", "-"}, {"add", "--name", "x", src}} {
		_, errOut, code := runPeer(t, "", append([]string{"--repo", repo}, bad...)...)
		require.NotZero(t, code, "%v", bad)
		require.Equal(t, 1, strings.Count(strings.TrimSpace(errOut), "\n")+1, "one line: %q", errOut)
	}

	// Through the daemon.
	repo2 := filepath.Join(t.TempDir(), "repo2")
	_, errOut, code = runPeer(t, "", "--repo", repo2, "init")
	require.Zero(t, code, errOut)
	cmd, _, _ := startDaemonProcess(t, repo2)
	out, errOut, code = runPeer(t, string(data), "--repo", repo2, "add", "--json", "--name", "piped.bin", "-")
	require.Zero(t, code, errOut)
	require.NoError(t, json.Unmarshal([]byte(out), &r))
	require.Equal(t, addResult{CID: root, Name: "piped.bin", Size: uint64(len(data))}, r)
	out, errOut, code = runPeer(t, "", "--repo", repo2, "ls", "--json")
	require.Zero(t, code, errOut)
	require.Contains(t, out, `"piped.bin"`)
	stopDaemon(t, cmd)
}

// ls and search give sizes in units, and a name in wide characters keeps the columns aligned.
func TestTablesShowUnitsAndAlignWideNames(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	offers := []api.Offer{
		{CID: "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku", Name: "日本語のファイル.txt", Size: 1_500_000, Providers: []string{"a"}, LastSeen: now.Add(-3 * time.Second)},
		{CID: "bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq", Name: "notes.txt", Size: 5, Providers: []string{"a", "b"}, LastSeen: now.Add(-time.Minute)},
		{CID: "bafkreigiuxcwe6qgyk6yhbtubhttlbmoyrjgrz4vwwegt7ykc2iekvpx5e", Name: "émoji 🎉.bin", Size: 73_400_320, Providers: []string{"a"}, LastSeen: now},
	}
	var b bytes.Buffer
	require.NoError(t, printOffers(&b, offers, now))
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	require.Len(t, lines, 4)
	col := func(line, cell string) int {
		i := strings.Index(line, cell)
		require.GreaterOrEqual(t, i, 0, "%q in %q", cell, line)
		return runewidth.StringWidth(line[:i])
	}
	for i, o := range offers {
		require.Equal(t, col(lines[0], "CID"), col(lines[i+1], o.CID), "CID column of %q:\n%s", o.Name, b.String())
		require.Equal(t, col(lines[0], "PEERS"), col(lines[i+1], []string{"1", "2", "1"}[i]+" "), "PEERS column:\n%s", b.String())
	}
	require.Contains(t, lines[1], "1.4 MiB")
	require.Contains(t, lines[2], "5 B")
	require.Contains(t, lines[3], "70 MiB")
	require.Contains(t, lines[1], "3s ago")
	b.Reset()
	require.NoError(t, printOffers(&b, []api.Offer{{CID: "c", Name: "album", Dir: true, Files: 120, Providers: []string{"a"}, LastSeen: now}, {CID: "d", Name: "solo", Dir: true, Files: 1, Providers: []string{"a"}, LastSeen: now}}, now))
	require.Contains(t, b.String(), "album/ (120 files)")
	require.Contains(t, b.String(), "solo/ (1 file)")

	b.Reset()
	files := []api.File{
		{CID: offers[0].CID, Name: "日本語", Size: 1_500_000, State: api.FileComplete},
		{CID: offers[1].CID, Name: "b", Size: 2_000_000, Have: 500_000, State: api.FilePartial},
	}
	require.NoError(t, printFiles(&b, files, false))
	lines = strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	require.Contains(t, lines[1], "1.4 MiB")
	require.Contains(t, lines[2], "1.9 MiB")
	require.Contains(t, lines[2], "partial 25%")
	require.Equal(t, col(lines[0], "NAME"), col(lines[1], "日本語"))

	b.Reset()
	require.NoError(t, printFiles(&b, files, true))
	var back []map[string]any
	require.NoError(t, json.Unmarshal(b.Bytes(), &back))
	require.Equal(t, 1_500_000.0, back[0]["size"], "--json keeps exact bytes")
}

func TestLsAtTakesDays(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "repo")
	_, errOut, code := runPeer(t, "", "--repo", repo, "init")
	require.Zero(t, code, errOut)
	out, errOut, code := runPeer(t, "", "--repo", repo, "ls", "--at", "7d", "--json")
	require.Zero(t, code, errOut)
	require.JSONEq(t, "[]", out)
}
