package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/stretchr/testify/require"

	"peer/node/api"
	"peer/store"
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

	// Where the announced name is a directory, --force or not, the fetch fails before it begins
	// and leaves nothing there.
	other := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(other, "report.pdf", "inside"), 0o755))
	_, errOut, code = peerCmd(t, repos["c"], "fetch", root, "-o", other, "--force")
	require.NotZero(t, code)
	require.Contains(t, errOut, filepath.Join(other, "report.pdf")+" (use -o to choose a file name)")
	require.Contains(t, errOut, "is a directory")
	entries, err := os.ReadDir(other)
	require.NoError(t, err)
	require.Len(t, entries, 1, "no .part beside the directory")

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

	// With no daemon, ls lists the partial file and where its bytes are.
	out, errOut, code = peerCmd(t, leech, "ls")
	require.Zero(t, code, errOut)
	require.Regexp(t, root+`\s+[\d.]+ [kMGT]?B\s+partial( \d+%)?\s+big.iso\s+`+regexp.QuoteMeta(store.PartPath(target, cid.MustParse(root))), out)

	startDaemonProcess(t, leech, "--network", "resume", "--bootstrap", seedAddr)
	out, errOut, code = peerCmd(t, leech, "fetch", root, "-o", target, "--json")
	require.Zero(t, code, errOut)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var ev, first api.FetchEvent
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &first))
	require.NoError(t, json.Unmarshal([]byte(lines[len(lines)-1]), &ev))
	require.Equal(t, "done", ev.Type)
	t.Logf("first run had %d bytes when killed; the resumed run found %d here and received %d of %d", done, ev.Resumed, ev.Received, size)
	require.GreaterOrEqual(t, ev.Resumed, done, "what the first run verified is found here")
	require.NotNil(t, first.Progress)
	require.Equal(t, ev.Resumed, first.Progress.Resumed, "progress says from the start what was here")
	require.Equal(t, int64(size), first.Progress.Bytes, "bytes is the file's size")
	require.LessOrEqual(t, ev.Received, int64(size)-done+1<<20, "only what was missing is fetched again")
	require.Regexp(t, `^resuming: [\d.]+ MiB of 24 MiB already here\n`, errOut, "the rerun says it resumes")
	got, err := os.ReadFile(target)
	require.NoError(t, err)
	require.Equal(t, sha256.Sum256(data), sha256.Sum256(got))
}

// TestCatFailsClearly: `peer cat` of a CID nobody has, and of a file whose only seeder dies
// midway, exits non-zero with one line on stderr; what it wrote is a prefix of the file.
func TestCatFailsClearly(t *testing.T) {
	dir := t.TempDir()
	seed, leech := filepath.Join(dir, "seed"), filepath.Join(dir, "leech")
	initRepo(t, seed)
	initRepo(t, leech)
	_, errOut, code := peerCmd(t, seed, "config", "set", "upload_limit", "4000000") // 4 MB/s
	require.Zero(t, code, errOut)
	seedCmd, _, _ := startDaemonProcess(t, seed, "--network", "cat")
	startDaemonProcess(t, leech, "--network", "cat", "--bootstrap", daemonAddr(t, seed))

	out, errOut, code := peerCmd(t, leech, "cat", "bafkreiemqpndzewx4bioklzfvhtiegsfny5fxuc3nkjk2vmcpjxiammsti")
	require.NotZero(t, code)
	require.Empty(t, out)
	require.Contains(t, errOut, "no providers")
	require.Equal(t, 1, strings.Count(strings.TrimSpace(errOut), "\n")+1, "one line: %q", errOut)

	src := filepath.Join(t.TempDir(), "big.bin")
	data := writeRandom(t, src, 32<<20, 6)
	out, errOut, code = peerCmd(t, seed, "share", src)
	require.Zero(t, code, errOut)
	root := strings.TrimSpace(out)

	cat := exec.Command(peerBin, "--repo", leech, "cat", root)
	stdout, err := cat.StdoutPipe()
	require.NoError(t, err)
	var stderr syncBuffer
	cat.Stderr = &stderr
	require.NoError(t, cat.Start())
	head := make([]byte, 4<<20)
	_, err = io.ReadFull(stdout, head)
	require.NoError(t, err)
	require.NoError(t, seedCmd.Process.Kill()) // the only seeder dies
	_ = seedCmd.Wait()
	rest, err := io.ReadAll(stdout)
	require.NoError(t, err)
	err = cat.Wait()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee, "a truncated cat exits non-zero; stderr: %s", stderr.String())
	got := append(head, rest...)
	t.Logf("cat wrote %d of %d bytes; stderr: %s", len(got), len(data), stderr.String())
	require.Less(t, len(got), len(data))
	require.True(t, bytes.Equal(data[:len(got)], got), "what was written is a prefix of the file")
	require.Contains(t, stderr.String(), "broke off")
	require.Equal(t, 1, strings.Count(strings.TrimSpace(stderr.String()), "\n")+1, "one line: %q", stderr.String())
}

// requireCleanError checks what a failed command wrote to stderr: one line, no prefix repeated
// ("fetching X: fetching X:"), no HTTP status, peer IDs in full.
func requireCleanError(t *testing.T, stderr string, args ...string) {
	t.Helper()
	line := strings.TrimSpace(stderr)
	require.NotEmpty(t, line, "%v: a message", args)
	require.NotContains(t, line, "\n", "%v: one line", args)
	require.NotContains(t, line, "(HTTP", "%v", args)
	require.NotContains(t, line, "<peer.ID", "%v", args)
	parts := strings.Split(line, ": ")
	for i := 1; i < len(parts); i++ {
		require.NotEqual(t, parts[i-1], parts[i], "%v: repeated prefix in %q", args, line)
	}
}

// TestCLIErrorsThroughTheDaemonAreOneCleanLine runs failing commands against daemons and checks
// each error is one clean line that names what failed, with hints that repeat --repo.
func TestCLIErrorsThroughTheDaemonAreOneCleanLine(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	initRepo(t, a)
	initRepo(t, b)
	startDaemonProcess(t, a, "--network", "errs")
	addrA := daemonAddr(t, a)
	startDaemonProcess(t, b, "--network", "errs", "--bootstrap", addrA)
	idA, idB := peerIDOf(t, a), peerIDOf(t, b)
	unknown := "bafkreiemqpndzewx4bioklzfvhtiegsfny5fxuc3nkjk2vmcpjxiammsti"

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	dead := "/ip4/127.0.0.1/tcp/" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port) + "/p2p/" + idB
	require.NoError(t, ln.Close())
	_, stranger, err := crypto.GenerateEd25519Key(rand.Reader)
	require.NoError(t, err)
	strangerID, err := peer.IDFromPublicKey(stranger)
	require.NoError(t, err)
	wrongID := strings.TrimSuffix(addrA, "/p2p/"+idA) + "/p2p/" + strangerID.String()

	cases := []struct {
		repo string
		args []string
		want string
	}{
		{b, []string{"cat", "bafyabc"}, "not a valid CID"},
		{b, []string{"cat", "--timeout", "5s", unknown}, "no providers"},
		{b, []string{"fetch", unknown, "-o", filepath.Join(t.TempDir(), "x")}, "fetching " + unknown},
		{b, []string{"fetch", "zzz"}, "not a valid CID"},
		{a, []string{"connect", dead}, "nothing listens at"},
		{a, []string{"connect", "/ip4/127.0.0.1/tcp/1/p2p/" + idA}, "this node's own"},
		{b, []string{"connect", wrongID}, "is peer " + idA},
		{a, []string{"connect", "/ip4/127.0.0.1/tcp/1"}, "/p2p/"},
		{filepath.Join(dir, "none"), []string{"ls"}, "`peer --repo " + filepath.Join(dir, "none") + " init`"},
		{filepath.Join(dir, "none"), []string{"peers"}, "`peer --repo " + filepath.Join(dir, "none") + " daemon`"},
	}
	for _, tc := range cases {
		out, stderr, code := peerCmd(t, tc.repo, tc.args...)
		require.NotZero(t, code, "%v", tc.args)
		require.Empty(t, out, "%v", tc.args)
		t.Logf("%v: %s", tc.args, strings.TrimSpace(stderr))
		require.Contains(t, stderr, tc.want, "%v", tc.args)
		requireCleanError(t, stderr, tc.args...)
	}
}

// peerIDOf is the peer ID of the node on repo.
func peerIDOf(t *testing.T, repo string) string {
	t.Helper()
	out, errOut, code := peerCmd(t, repo, "id")
	require.Zero(t, code, errOut)
	return strings.Fields(out)[0]
}
