package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"peer/node/api"
)

// browserClient is an HTTP client with a cookie jar, as a browser keeps the session cookie.
func browserClient(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &http.Client{Jar: jar, Timeout: 30 * time.Second}
}

func getJSON(t *testing.T, hc *http.Client, url string, v any) {
	t.Helper()
	resp, err := hc.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s: %s", url, b)
	require.NoError(t, json.Unmarshal(b, v), string(b))
}

// peer ui --print gives a URL that logs a browser in once; the session then reads the API,
// the status tells the files' size and the disk space left, peers their traffic, and the
// bandwidth history fills.
func TestUIPrintLogsInADaemon(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	initRepo(t, a)
	initRepo(t, b)
	_, _, code := peerCmd(t, a, "ui", "--print")
	require.NotZero(t, code, "no daemon, no dashboard")
	startDaemonProcess(t, a, "--network", "uitest")
	startDaemonProcess(t, b, "--network", "uitest", "--bootstrap", daemonAddr(t, a))
	src := filepath.Join(dir, "f.bin")
	writeRandom(t, src, 3000, 1)
	_, errOut, code := peerCmd(t, a, "add", src)
	require.Zero(t, code, errOut)

	out, errOut, code := peerCmd(t, a, "ui", "--print")
	require.Zero(t, code, errOut)
	url := strings.TrimSpace(out)
	base, err := api.ForRepo(a)
	require.NoError(t, err)
	st, err := base.Status(t.Context())
	require.NoError(t, err)
	tok := strings.TrimSpace(string(must(t, filepath.Join(a, api.TokenFile))))
	require.NotContains(t, url, tok, "the token never goes into a URL")
	require.Contains(t, url, api.PathUILogin+"?code=")

	hc := browserClient(t)
	resp, err := hc.Get(url)
	require.NoError(t, err)
	page, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.True(t, strings.HasSuffix(resp.Request.URL.Path, api.PathUI), "the login redirects to the page: %s", resp.Request.URL)
	require.Contains(t, string(page), `name="peer-csrf"`)

	again, err := browserClient(t).Get(url)
	require.NoError(t, err)
	again.Body.Close()
	require.Equal(t, http.StatusUnauthorized, again.StatusCode, "the code was used")

	var status api.Status
	apiURL := url[:strings.Index(url, "/ui/")]
	getJSON(t, hc, apiURL+api.PathStatus, &status)
	require.Equal(t, st.ID, status.ID)
	require.Equal(t, 1, status.Files)
	require.EqualValues(t, 3000, status.FilesBytes)
	require.NotZero(t, status.DiskFree)

	require.Eventually(t, func() bool {
		var peers []api.Peer
		getJSON(t, hc, apiURL+api.PathPeers, &peers)
		return len(peers) == 1 && peers[0].BytesIn > 0 && peers[0].BytesOut > 0
	}, 30*time.Second, 50*time.Millisecond, "a connected peer with its traffic")
	require.Eventually(t, func() bool {
		var bw api.Bandwidth
		getJSON(t, hc, apiURL+api.PathBandwidth, &bw)
		return len(bw.Samples) >= 2 && bw.IntervalMS == 1000 && bw.TotalIn > 0
	}, 30*time.Second, 100*time.Millisecond, "bandwidth samples, one a second")
}

func must(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return b
}
