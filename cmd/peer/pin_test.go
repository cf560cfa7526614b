package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// pin and unpin work on the repo and through the daemon alike: a pinned file shows in ls, rm
// refuses it without --force, and gc keeps its blocks.
func TestCLIPinUnpin(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "repo")
	initRepo(t, repo)
	add := func(name string, seed uint64) string {
		src := filepath.Join(t.TempDir(), name)
		writeRandom(t, src, 3<<20, seed)
		out, errOut, code := peerCmd(t, repo, "add", "--quiet", src)
		require.Zero(t, code, errOut)
		return strings.TrimSpace(out)
	}
	run := func(args ...string) (string, string, int) { return peerCmd(t, repo, args...) }
	check := func(via string) {
		root := add(via+".bin", uint64(len(via)))
		out, errOut, code := run("pin", root)
		require.Zero(t, code, errOut)
		require.Equal(t, "pinned "+root+" "+via+".bin\n", out)
		out, errOut, code = run("ls")
		require.Zero(t, code, errOut)
		require.Contains(t, out, "complete, pinned", via)

		_, errOut, code = run("rm", root)
		require.NotZero(t, code, via)
		require.Contains(t, errOut, "pinned", via)
		require.Equal(t, 1, strings.Count(strings.TrimSpace(errOut), "\n")+1, "one line: %s", errOut)
		out, errOut, code = run("gc")
		require.Zero(t, code, errOut)
		require.Contains(t, out, "removed 0 blocks", via)

		out, errOut, code = run("unpin", root)
		require.Zero(t, code, errOut)
		require.Contains(t, out, "unpinned "+root)
		out, _, _ = run("ls")
		require.NotContains(t, out, "pinned", via)
		_, errOut, code = run("pin", root)
		require.Zero(t, code, errOut)
		_, errOut, code = run("rm", "--force", root)
		require.Zero(t, code, errOut)
		out, _, _ = run("ls")
		require.NotContains(t, out, root, via)
		out, errOut, code = run("gc")
		require.Zero(t, code, errOut)
		require.Contains(t, out, "removed 4 blocks", "unpinned and removed: gc reclaims it (%s)", via)
	}
	check("offline")
	startDaemonProcess(t, repo)
	check("daemon")
	_, errOut, code := run("pin", "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku")
	require.NotZero(t, code)
	require.Contains(t, errOut, "no such file")
}
