package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"peer/node/api"
)

// daemonAddr returns the first listen address of the daemon on repo.
func daemonAddr(t testing.TB, repo string) string {
	t.Helper()
	out, errOut, code := peerCmd(t, repo, "id", "--json")
	require.Zero(t, code, errOut)
	var id api.ID
	require.NoError(t, json.Unmarshal([]byte(out), &id))
	require.NotEmpty(t, id.Addrs)
	return id.Addrs[0]
}

// TestShareOnAFetchOnC runs three daemons: A, B bootstrapping off A, C bootstrapping off B. A
// shares a file; C finds it by search and fetches it by CID alone.
func TestShareOnAFetchOnC(t *testing.T) {
	dir := t.TempDir()
	repos := map[string]string{}
	for _, n := range []string{"a", "b", "c"} {
		repos[n] = filepath.Join(dir, n)
		initRepo(t, repos[n])
	}
	startDaemonProcess(t, repos["a"], "--network", "e2e")
	startDaemonProcess(t, repos["b"], "--network", "e2e", "--bootstrap", daemonAddr(t, repos["a"]))
	startDaemonProcess(t, repos["c"], "--network", "e2e", "--bootstrap", daemonAddr(t, repos["b"]))

	src := filepath.Join(t.TempDir(), "report.pdf")
	data := writeRandom(t, src, 5<<20+77, 3)
	out, errOut, code := peerCmd(t, repos["a"], "share", src)
	require.Zero(t, code, errOut)
	root := strings.TrimSpace(out)
	require.True(t, strings.HasPrefix(root, "bafybei"), root)

	require.Eventually(t, func() bool {
		out, _, code := peerCmd(t, repos["c"], "search", "report", "--json")
		return code == 0 && strings.Contains(out, root)
	}, 20*time.Second, 50*time.Millisecond, "the announcement reaches C")

	target := t.TempDir()
	out, errOut, code = peerCmd(t, repos["c"], "fetch", root, "-o", target)
	require.Zero(t, code, errOut)
	require.Contains(t, out, "fetched "+root)
	got, err := os.ReadFile(filepath.Join(target, "report.pdf"))
	require.NoError(t, err)
	require.Equal(t, sha256.Sum256(data), sha256.Sum256(got))

	// A second fetch to the same place is refused without --force.
	_, errOut, code = peerCmd(t, repos["c"], "fetch", root, "-o", filepath.Join(target, "report.pdf"), "--json")
	require.Zero(t, code, "the file is already there: nothing to do: %s", errOut)
	_, errOut, code = peerCmd(t, repos["c"], "fetch", root, "-o", src)
	require.NotZero(t, code)
	require.Contains(t, errOut, "--force")

	// Hostile input: a malformed CID and a CID nobody has get one clear line each.
	_, errOut, code = peerCmd(t, repos["c"], "fetch", "bafy-not-a-cid")
	require.NotZero(t, code)
	require.Contains(t, errOut, "not a valid CID")
}

// TestFetchResumesAfterKill kills the fetching daemon in the middle of a download, restarts it,
// and checks that the same command completes and re-downloads at most what had not arrived.
func TestFetchResumesAfterKill(t *testing.T) {
	dir := t.TempDir()
	seed, leech := filepath.Join(dir, "seed"), filepath.Join(dir, "leech")
	initRepo(t, seed)
	initRepo(t, leech)
	_, errOut, code := peerCmd(t, seed, "config", "set", "upload_limit", "8000000") // 8 MB/s
	require.Zero(t, code, errOut)
	startDaemonProcess(t, seed, "--network", "resume")
	seedAddr := daemonAddr(t, seed)
	leechCmd, _, _ := startDaemonProcess(t, leech, "--network", "resume", "--bootstrap", seedAddr)

	src := filepath.Join(t.TempDir(), "big.iso")
	const size = 24 << 20
	data := writeRandom(t, src, size, 5)
	out, errOut, code := peerCmd(t, seed, "share", src)
	require.Zero(t, code, errOut)
	root := strings.TrimSpace(out)
	target := filepath.Join(t.TempDir(), "big.iso")

	// Follow the fetch's progress; kill the daemon once a quarter has arrived.
	fetch := exec.Command(peerBin, "--repo", leech, "fetch", root, "-o", target, "--json")
	stdout, err := fetch.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, fetch.Start())
	var done int64
	sc := bufio.NewScanner(stdout)
	deadline := time.Now().Add(60 * time.Second)
	for sc.Scan() && time.Now().Before(deadline) {
		var ev api.FetchEvent
		require.NoError(t, json.Unmarshal(sc.Bytes(), &ev))
		if ev.Progress != nil && ev.Progress.BytesDone >= size/4 {
			done = ev.Progress.BytesDone
			break
		}
	}
	require.Positive(t, done, "progress was reported")
	require.NoError(t, leechCmd.Process.Kill())
	_ = leechCmd.Wait()
	require.Error(t, fetch.Wait(), "the interrupted fetch fails")
	_, err = os.Stat(target)
	require.True(t, os.IsNotExist(err), "no partial file under the final name")

	startDaemonProcess(t, leech, "--network", "resume", "--bootstrap", seedAddr)
	out, errOut, code = peerCmd(t, leech, "fetch", root, "-o", target, "--json")
	require.Zero(t, code, errOut)
	var ev api.FetchEvent
	require.NoError(t, json.Unmarshal([]byte(out[strings.LastIndex(strings.TrimSpace(out), "\n")+1:]), &ev))
	require.Equal(t, "done", ev.Type)
	t.Logf("first run had %d bytes when killed; the resumed run received %d of %d", done, ev.Received, size)
	require.LessOrEqual(t, ev.Received, int64(size)-done+1<<20, "only what was missing is fetched again")
	got, err := os.ReadFile(target)
	require.NoError(t, err)
	require.Equal(t, sha256.Sum256(data), sha256.Sum256(got))
}
