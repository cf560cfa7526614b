package main

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The daemon's gateway serves a file added to the repo, its URL is in REPO/gateway and in
// `peer status` while it runs, and the file goes when the daemon stops.
func TestDaemonGateway(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "repo")
	initRepo(t, repo)
	src := filepath.Join(t.TempDir(), "hello.txt")
	require.NoError(t, os.WriteFile(src, []byte("hello through the gateway\n"), 0o644))
	out, errOut, code := peerCmd(t, repo, "add", "-q", src)
	require.Zero(t, code, errOut)
	root := strings.TrimSpace(out)

	out, errOut, code = peerCmd(t, repo, "config", "set", "gateway", "0.0.0.0:8080")
	require.Zero(t, code, errOut)
	require.Equal(t, "gateway = 0.0.0.0:8080\n", out)
	require.Contains(t, errOut, "--allow-remote-gateway")
	_, errOut, code = peerCmd(t, repo, "config", "set", "gateway", "8080")
	require.NotZero(t, code)
	require.Contains(t, errOut, "gateway")
	_, errOut, code = peerCmd(t, repo, "config", "set", "gateway", "")
	require.Zero(t, code, errOut)

	_, errOut, code = peerCmd(t, repo, "daemon", "--gateway", "0.0.0.0:0")
	require.NotZero(t, code)
	require.Contains(t, errOut, "--allow-remote-gateway")

	cmd, stdout, _ := startDaemonProcess(t, repo, "--gateway", "127.0.0.1:0")
	b, err := os.ReadFile(filepath.Join(repo, "gateway"))
	require.NoError(t, err)
	url := strings.TrimSpace(string(b))
	require.True(t, strings.HasPrefix(url, "http://127.0.0.1:"), url)
	require.Contains(t, stdout.String(), "gateway at "+url+"/ipfs/")

	resp, err := http.Get(url + "/ipfs/" + root)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "hello through the gateway\n", string(body))

	out, errOut, code = peerCmd(t, repo, "status")
	require.Zero(t, code, errOut)
	require.Contains(t, out, url+"/ipfs/")
	require.Regexp(t, `files\s+1, 26 B\n`, out) // the one file held and its size
	require.Regexp(t, `disk\s+[0-9.]+ [KMGT]iB free\n`, out)

	stopDaemon(t, cmd)
	_, err = os.Stat(filepath.Join(repo, "gateway"))
	require.ErrorIs(t, err, os.ErrNotExist)
}
