package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/stretchr/testify/require"

	"peer/node/api"
	"peer/store"
)

// transferNet starts a seeder capped at seedLimit (upload_limit) and a leecher with the given
// settings, both daemons on network; it returns their repos.
func transferNet(t *testing.T, network, seedLimit string, leechSettings ...string) (seed, leech string, leechCmd *exec.Cmd) {
	t.Helper()
	dir := t.TempDir()
	seed, leech = filepath.Join(dir, "seed"), filepath.Join(dir, "leech")
	initRepo(t, seed)
	initRepo(t, leech)
	if seedLimit != "" {
		_, errOut, code := peerCmd(t, seed, "config", "set", "upload_limit", seedLimit)
		require.Zero(t, code, errOut)
	}
	for i := 0; i+1 < len(leechSettings); i += 2 {
		_, errOut, code := peerCmd(t, leech, "config", "set", leechSettings[i], leechSettings[i+1])
		require.Zero(t, code, errOut)
	}
	startDaemonProcess(t, seed, "--network", network)
	leechCmd, _, _ = startDaemonProcess(t, leech, "--network", network, "--bootstrap", daemonAddr(t, seed))
	return seed, leech, leechCmd
}

// shareRandom shares n random bytes from the seeder and returns the root and the bytes.
func shareRandom(t *testing.T, seed, name string, n int, rnd uint64) (string, []byte) {
	t.Helper()
	src := filepath.Join(t.TempDir(), name)
	data := writeRandom(t, src, n, rnd)
	out, errOut, code := peerCmd(t, seed, "share", src)
	require.Zero(t, code, errOut)
	return strings.TrimSpace(out), data
}

// detach queues a fetch with `peer fetch -d` and returns the transfer ID it prints.
func detach(t *testing.T, leech, root, target string, extra ...string) string {
	t.Helper()
	out, errOut, code := peerCmd(t, leech, append([]string{"fetch", "-d", root, "-o", target}, extra...)...)
	require.Zero(t, code, errOut)
	id := strings.TrimSpace(out)
	require.Regexp(t, `^[0-9a-f]{8}$`, id)
	return id
}

func transfersOf(t *testing.T, repo string) map[string]api.Transfer {
	t.Helper()
	c, err := api.ForRepo(repo)
	require.NoError(t, err)
	ts, err := c.Transfers(t.Context())
	require.NoError(t, err)
	m := map[string]api.Transfer{}
	for _, tr := range ts {
		m[tr.ID] = tr
	}
	return m
}

// waitState waits until the transfer is in state; if it never is, the failure shows the whole
// list as last seen (the transfer's own state and error, or its absence).
func waitState(t *testing.T, repo, id, state string, timeout time.Duration) api.Transfer {
	t.Helper()
	var all map[string]api.Transfer
	for deadline := time.Now().Add(timeout); ; {
		all = transfersOf(t, repo)
		if got := all[id]; got.State == state {
			return got
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	got, listed := all[id]
	require.FailNowf(t, "transfer never reached its state", "transfer %s: want %s after %s; listed %v, have %+v; the list: %+v",
		id, state, timeout, listed, got, all)
	return api.Transfer{}
}

func sameFile(t *testing.T, path string, data []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, sha256.Sum256(data), sha256.Sum256(got))
}

// TestFetchDetachCompletesAfterTheCommandExits: `peer fetch -d` prints the transfer's ID and
// exits while the fetch runs; the daemon completes it; `peer transfers` lists it.
func TestFetchDetachCompletesAfterTheCommandExits(t *testing.T) {
	seed, leech, _ := transferNet(t, "detach", "8MB")
	root, data := shareRandom(t, seed, "d.iso", 16<<20, 21)
	target := filepath.Join(t.TempDir(), "d.iso")
	watch := exec.Command(peerBin, "--repo", leech, "transfers", "watch", "--json")
	watchOut, err := watch.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, watch.Start())
	t.Cleanup(func() { _ = watch.Process.Kill(); _ = watch.Wait() })
	id := detach(t, leech, root, target)
	tr := transfersOf(t, leech)[id]
	require.Contains(t, []string{"queued", "running"}, tr.State, "the command returned before the fetch ended")
	require.Equal(t, "download", tr.Direction)
	require.Equal(t, root, tr.CID)

	// The seeder lists the leecher as an upload while it fetches, naming the file.
	leechID := strings.Fields(func() string { out, _, _ := peerCmd(t, leech, "id"); return out }())[0]
	var up api.Transfer
	require.Eventually(t, func() bool {
		for _, up = range transfersOf(t, seed) {
			if up.Direction == "upload" && up.Peer == leechID && up.BytesDone > 0 && up.Streams > 0 {
				return true
			}
		}
		return false
	}, 30*time.Second, 20*time.Millisecond, "the seeder lists the upload")
	require.Equal(t, root, up.CID, "the upload names the file's root")
	require.Equal(t, "d.iso", up.Name, "and its name")
	out, errOut, code := peerCmd(t, seed, "transfers")
	require.Zero(t, code, errOut)
	require.Regexp(t, up.ID+`\s+d.iso to `+leechID+`\s+upload\s+running`, out)

	out, errOut, code = peerCmd(t, leech, "status")
	require.Zero(t, code, errOut)
	require.Regexp(t, `transfers\s+[01] running, [01] queued, 0 paused; 0 uploads\n`, out)

	out, errOut, code = peerCmd(t, leech, "transfers")
	require.Zero(t, code, errOut)
	require.Regexp(t, `ID\s+NAME\s+DIRECTION\s+STATE\s+DONE\s+RATE\s+PEERS\s+LEFT`, out)
	require.Regexp(t, id+`\s+d.iso\s+download\s+(queued|running)`, out)

	done := waitState(t, leech, id, "done", 60*time.Second)
	require.Equal(t, int64(len(data)), done.BytesDone)
	sameFile(t, target, data)

	// watch printed the transfer's changes, from queued or running to done.
	sc := bufio.NewScanner(watchOut)
	var states []string
	for sc.Scan() {
		var w api.Transfer
		require.NoError(t, json.Unmarshal(sc.Bytes(), &w))
		if w.ID != id {
			continue
		}
		if len(states) == 0 || states[len(states)-1] != w.State {
			states = append(states, w.State)
		}
		if w.State == "done" {
			break
		}
	}
	require.Contains(t, states, "running")
	require.Equal(t, "done", states[len(states)-1], "watch saw %v", states)

	// A foreground fetch of the same file attaches to the transfer that completed it, and says
	// what it did.
	out, errOut, code = peerCmd(t, leech, "fetch", root, "-o", target)
	require.Zero(t, code, errOut)
	require.Regexp(t, `^fetched `+root+` `+regexp.QuoteMeta(target)+` \(16 MiB from 1 peer in `, out)
	require.Len(t, transfersOf(t, leech), 1, "no second transfer")
}

// TestTransfersPauseResumeCancel: pause stops the bytes and resume goes on from them; cancel
// deletes the .part (and --keep keeps it); a foreground fetch of a running file attaches to it.
func TestTransfersPauseResumeCancel(t *testing.T) {
	seed, leech, _ := transferNet(t, "pause", "4MB")
	rootA, dataA := shareRandom(t, seed, "a.iso", 12<<20, 31)
	rootB, _ := shareRandom(t, seed, "b.iso", 12<<20, 32)
	targetA, targetB := filepath.Join(t.TempDir(), "a.iso"), filepath.Join(t.TempDir(), "b.iso")
	a := detach(t, leech, rootA, targetA)
	b := detach(t, leech, rootB, targetB)
	require.Eventually(t, func() bool {
		ts := transfersOf(t, leech)
		return ts[a].BytesDone > 1<<20 && ts[b].BytesDone > 1<<20
	}, 60*time.Second, 20*time.Millisecond, "both receive")

	out, errOut, code := peerCmd(t, leech, "transfers", "pause", a)
	require.Zero(t, code, errOut)
	require.Equal(t, a+" paused\n", out)
	// Once the fetch has stopped, the counter stays still.
	var paused int64
	require.Eventually(t, func() bool {
		tr := transfersOf(t, leech)[a]
		if tr.Rate != 0 || tr.BytesDone != paused {
			paused = tr.BytesDone
			return false
		}
		return true
	}, 10*time.Second, 100*time.Millisecond)
	part, err := os.Stat(store.PartPath(targetA, cid.MustParse(rootA)))
	require.NoError(t, err, "the .part stays")
	time.Sleep(time.Second) // what is asserted is that nothing happens for a second
	require.Equal(t, paused, transfersOf(t, leech)[a].BytesDone, "a paused transfer receives nothing")
	part2, err := os.Stat(store.PartPath(targetA, cid.MustParse(rootA)))
	require.NoError(t, err)
	require.Equal(t, part.ModTime(), part2.ModTime(), "nothing is written")

	_, errOut, code = peerCmd(t, leech, "transfers", "pause", a)
	require.NotZero(t, code)
	require.Contains(t, errOut, "transfer "+a+" is paused")

	// Cancel b: its .part goes.
	out, errOut, code = peerCmd(t, leech, "transfers", "cancel", b)
	require.Zero(t, code, errOut)
	require.Equal(t, b+" canceled\n", out)
	require.Eventually(t, func() bool {
		_, err := os.Stat(store.PartPath(targetB, cid.MustParse(rootB)))
		return os.IsNotExist(err)
	}, 10*time.Second, 20*time.Millisecond, "cancel deletes the .part")
	out, errOut, code = peerCmd(t, leech, "ls")
	require.Zero(t, code, errOut)
	require.NotContains(t, out, rootB, "nor is the partial file listed")

	// Resume a: it goes on from what it had, and a foreground fetch of it attaches.
	out, errOut, code = peerCmd(t, leech, "transfers", "resume", a)
	require.Zero(t, code, errOut)
	require.Regexp(t, `^`+a+` (queued|running)\n$`, out)
	out, errOut, code = peerCmd(t, leech, "fetch", rootA, "-o", targetA)
	require.Zero(t, code, errOut)
	require.Regexp(t, `^fetched `+rootA+` `+regexp.QuoteMeta(targetA)+` `, out)
	sameFile(t, targetA, dataA)
	done := waitState(t, leech, a, "done", 10*time.Second)
	require.GreaterOrEqual(t, done.Resumed, paused, "the resumed run found what the first one had")
	require.LessOrEqual(t, done.Received, int64(len(dataA))-paused+1<<20, "and fetched only the rest")

	_, errOut, code = peerCmd(t, leech, "transfers", "cancel", a)
	require.NotZero(t, code)
	require.Contains(t, errOut, "is done")
	_, errOut, code = peerCmd(t, leech, "transfers", "resume", "ffffffff")
	require.NotZero(t, code)
	require.Contains(t, errOut, "no such transfer")
}

// TestMaxFetchesOneRunsTransfersInTurn: with max_fetches 1, the second transfer waits until the
// first is done; top moves a queued one to the front.
func TestMaxFetchesOneRunsTransfersInTurn(t *testing.T) {
	seed, leech, _ := transferNet(t, "turns", "2MB", "max_fetches", "1")
	var ids []string
	var datas [][]byte
	var targets []string
	var roots []string
	for i := range 3 {
		root, data := shareRandom(t, seed, "f"+string(rune('a'+i)), 6<<20, uint64(40+i))
		roots, datas, targets = append(roots, root), append(datas, data), append(targets, filepath.Join(t.TempDir(), "f"))
	}
	for i := range 3 {
		ids = append(ids, detach(t, leech, roots[i], targets[i]))
	}
	// The third moves before the second (the first is still running: 6 MiB at 2 MB/s).
	out, errOut, code := peerCmd(t, leech, "transfers", "top", ids[2])
	require.Zero(t, code, errOut)
	require.Equal(t, ids[2]+" queued\n", out)
	// A foreground fetch of the second attaches to it, says it waits, and ends when it is done.
	fg := exec.Command(peerBin, "--repo", leech, "fetch", roots[1], "-o", targets[1])
	var fgOut, fgErr syncBuffer
	fg.Stdout, fg.Stderr = &fgOut, &fgErr
	require.NoError(t, fg.Start())
	require.Eventually(t, func() bool {
		ts := transfersOf(t, leech)
		running := 0
		for _, id := range ids {
			if ts[id].State == "running" {
				running++
			}
		}
		require.LessOrEqual(t, running, 1, "one at a time: %+v", ts)
		return ts[ids[0]].State == "done" && ts[ids[1]].State == "done" && ts[ids[2]].State == "done"
	}, 90*time.Second, 10*time.Millisecond)
	require.NoError(t, fg.Wait(), "stderr: %s", fgErr.String())
	require.Contains(t, fgErr.String(), "transfer "+ids[1]+" waits in the daemon's queue")
	require.Contains(t, fgOut.String(), "fetched "+roots[1])
	require.Len(t, transfersOf(t, leech), 3, "the foreground fetch made no transfer of its own")
	for i := range ids {
		sameFile(t, targets[i], datas[i])
	}
	// The log says each started after the one before it completed.
	c, err := api.ForRepo(leech)
	require.NoError(t, err)
	evs, err := c.Events(t.Context(), 0)
	require.NoError(t, err)
	var order []string
	for _, e := range evs {
		if e.Transfer != "" && (e.Type == string(store.FetchStarted) || e.Type == string(store.FetchCompleted)) {
			order = append(order, string(e.Type)+" "+e.Transfer)
		}
	}
	require.Equal(t, []string{"FetchStarted " + ids[0], "FetchCompleted " + ids[0], "FetchStarted " + ids[2],
		"FetchCompleted " + ids[2], "FetchStarted " + ids[1], "FetchCompleted " + ids[1]}, order)
}

// TestTransfersResumeAfterKill: a daemon killed with SIGKILL while two transfers run and one
// waits resumes all three when it starts again, and fetches only what was missing.
func TestTransfersResumeAfterKill(t *testing.T) {
	seed, leech, leechCmd := transferNet(t, "killed", "8MB", "max_fetches", "2")
	const size = 16 << 20
	var ids, roots, targets []string
	var datas [][]byte
	for i := range 3 {
		root, data := shareRandom(t, seed, "k"+string(rune('a'+i)), size, uint64(50+i))
		target := filepath.Join(t.TempDir(), "k.iso")
		ids, roots, targets, datas = append(ids, detach(t, leech, root, target)), append(roots, root), append(targets, target), append(datas, data)
	}
	var before map[string]api.Transfer
	require.Eventually(t, func() bool {
		before = transfersOf(t, leech)
		return before[ids[0]].BytesDone >= size/4 && before[ids[1]].BytesDone >= size/4 && before[ids[2]].State == "queued"
	}, 60*time.Second, 20*time.Millisecond, "two run, one waits")
	require.NoError(t, leechCmd.Process.Signal(syscall.SIGKILL))
	_ = leechCmd.Wait()

	// Without a daemon the repo lists the partial files.
	out, errOut, code := peerCmd(t, leech, "ls")
	require.Zero(t, code, errOut)
	require.Contains(t, out, roots[0])

	_, _, stderr := startDaemonProcess(t, leech, "--network", "killed", "--bootstrap", daemonAddr(t, seed))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the restarted daemon's stderr:\n%s", stderr)
		}
	})
	for i, id := range ids {
		tr := waitState(t, leech, id, "done", 90*time.Second)
		sameFile(t, targets[i], datas[i])
		if i < 2 {
			had := before[id].BytesDone
			t.Logf("transfer %s had %d of %d when killed; the restarted daemon found %d and received %d", id, had, size, tr.Resumed, tr.Received)
			require.GreaterOrEqual(t, tr.Resumed, had, "what was verified is found again")
			require.LessOrEqual(t, tr.Received, int64(size)-had+1<<20, "only missing blocks are sent again")
		}
	}
}

// rateOver measures a running transfer's verified bytes per second over window, starting once it
// has from bytes (past the token bucket's first burst).
func rateOver(t *testing.T, repo, id string, from int64, window time.Duration) float64 {
	t.Helper()
	var b0 int64
	require.Eventually(t, func() bool {
		b0 = transfersOf(t, repo)[id].BytesDone
		return b0 >= from
	}, 60*time.Second, 10*time.Millisecond)
	t0 := time.Now()
	var b1 int64
	require.Eventually(t, func() bool {
		tr := transfersOf(t, repo)[id]
		b1 = tr.BytesDone
		require.Equal(t, "running", tr.State, "the window ends before the file does")
		return time.Since(t0) >= window
	}, 2*window, 10*time.Millisecond)
	return float64(b1-b0) / time.Since(t0).Seconds()
}

// TestDownloadLimitHolds: download_limit caps the node's fetches and --limit one fetch; the rate
// measured over a window stays within 10% above the cap (below it, the bound is generous: the
// machine may be slow).
func TestDownloadLimitHolds(t *testing.T) {
	seed, leech, _ := transferNet(t, "limit", "", "download_limit", "20MB")
	root, _ := shareRandom(t, seed, "big.iso", 128<<20, 61)
	id := detach(t, leech, root, filepath.Join(t.TempDir(), "big.iso"))
	rate := rateOver(t, leech, id, 8<<20, 5*time.Second)
	t.Logf("download_limit 20 MB/s: %.2f MB/s over 5 s", rate/1e6)
	require.LessOrEqual(t, rate, 22e6)
	require.GreaterOrEqual(t, rate, 10e6)
	out, errOut, code := peerCmd(t, leech, "transfers", "cancel", id)
	require.Zero(t, code, errOut)
	require.Equal(t, id+" canceled\n", out)

	root, _ = shareRandom(t, seed, "small.iso", 24<<20, 62)
	id = detach(t, leech, root, filepath.Join(t.TempDir(), "small.iso"), "--limit", "4MB")
	require.Equal(t, int64(4e6), transfersOf(t, leech)[id].Limit)
	rate = rateOver(t, leech, id, 4<<20, 2*time.Second)
	t.Logf("--limit 4 MB/s: %.2f MB/s over 2 s", rate/1e6)
	require.LessOrEqual(t, rate, 4.4e6)
	require.GreaterOrEqual(t, rate, 2e6)
}

// TestForegroundFetchInterruptedCancelsAndKeeps: Ctrl-C on `peer fetch` cancels its transfer and
// keeps what was received; the same command resumes from it. A daemon stopped with SIGTERM
// resumes its running transfer when it starts again.
func TestForegroundFetchInterruptedCancelsAndKeeps(t *testing.T) {
	seed, leech, leechCmd := transferNet(t, "sigint", "4MB")
	root, data := shareRandom(t, seed, "i.iso", 12<<20, 71)
	target := filepath.Join(t.TempDir(), "i.iso")
	fetch := exec.Command(peerBin, "--repo", leech, "fetch", root, "-o", target, "--json")
	stdout, err := fetch.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, fetch.Start())
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		var ev api.FetchEvent
		require.NoError(t, json.Unmarshal(sc.Bytes(), &ev))
		if ev.Progress != nil && ev.Progress.BytesDone >= 2<<20 {
			break
		}
	}
	require.NoError(t, fetch.Process.Signal(syscall.SIGINT))
	err = fetch.Wait()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	require.Equal(t, 130, ee.ExitCode())
	var id string
	require.Eventually(t, func() bool {
		for _, tr := range transfersOf(t, leech) {
			if tr.CID == root && tr.State == "canceled" {
				id = tr.ID
				return true
			}
		}
		return false
	}, 10*time.Second, 20*time.Millisecond, "the transfer is canceled")
	_, err = os.Stat(store.PartPath(target, cid.MustParse(root)))
	require.NoError(t, err, "what was received is kept")

	// Queued again, it runs; a daemon stopped with SIGTERM meanwhile resumes it at start, and
	// leaves a paused one paused.
	rootP, _ := shareRandom(t, seed, "p.iso", 4<<20, 72)
	paused := detach(t, leech, rootP, filepath.Join(t.TempDir(), "p.iso"))
	_, errOut, code := peerCmd(t, leech, "transfers", "pause", paused)
	require.Zero(t, code, errOut)
	id2 := detach(t, leech, root, target)
	require.NotEqual(t, id, id2)
	require.Eventually(t, func() bool { return transfersOf(t, leech)[id2].BytesDone >= 6<<20 }, 30*time.Second, 20*time.Millisecond)
	stopDaemon(t, leechCmd)
	startDaemonProcess(t, leech, "--network", "sigint", "--bootstrap", daemonAddr(t, seed))
	tr := waitState(t, leech, id2, "done", 60*time.Second)
	require.GreaterOrEqual(t, tr.Resumed, int64(6<<20), "the restarted daemon went on from what was here")
	sameFile(t, target, data)
	require.Equal(t, "paused", transfersOf(t, leech)[paused].State, "a paused transfer stays paused")
}

// TestFetchOfAPathIsAQueuedTransfer: `peer fetch -d CID/sub` queues a transfer like any other
// fetch: listed with its root and path, paused, still paused after the daemon is killed and
// started again; the same request then resumes it (no second transfer), to the end, and only the
// entry is written. `peer events` names the transfer on each of its events.
func TestFetchOfAPathIsAQueuedTransfer(t *testing.T) {
	seed, leech, leechCmd := transferNet(t, "subpath", "4MB")
	album := filepath.Join(t.TempDir(), "album")
	require.NoError(t, os.MkdirAll(filepath.Join(album, "sub"), 0o755))
	data := writeRandom(t, filepath.Join(album, "sub", "big.bin"), 12<<20, 61)
	writeRandom(t, filepath.Join(album, "other.bin"), 1<<20, 62)
	out, errOut, code := peerCmd(t, seed, "share", album)
	require.Zero(t, code, errOut)
	root := strings.TrimSpace(out)

	target := filepath.Join(t.TempDir(), "got")
	id := detach(t, leech, root+"/sub", target)
	tr := transfersOf(t, leech)[id]
	require.Equal(t, root, tr.CID)
	require.Equal(t, "sub", tr.Path)
	require.Equal(t, "sub", tr.Name)
	require.Equal(t, target, tr.Output)
	require.Eventually(t, func() bool { return transfersOf(t, leech)[id].BytesDone > 1<<20 },
		60*time.Second, 20*time.Millisecond, "it receives")
	out, errOut, code = peerCmd(t, leech, "transfers", "pause", id)
	require.Zero(t, code, errOut)
	require.Equal(t, id+" paused\n", out)
	paused := waitState(t, leech, id, "paused", 10*time.Second)

	// A daemon killed and started again keeps it paused; resumed, it goes on to the end.
	require.NoError(t, leechCmd.Process.Signal(syscall.SIGKILL))
	_ = leechCmd.Wait()
	startDaemonProcess(t, leech, "--network", "subpath", "--bootstrap", daemonAddr(t, seed))
	require.Equal(t, "paused", transfersOf(t, leech)[id].State)
	require.Equal(t, id, detach(t, leech, root+"/sub", target), "the same request resumes the same transfer")
	require.Len(t, transfersOf(t, leech), 1, "no second transfer")
	done := waitState(t, leech, id, "done", 60*time.Second)
	require.Equal(t, "sub", done.Path)
	sameFile(t, filepath.Join(target, "big.bin"), data)
	entries, err := os.ReadDir(target)
	require.NoError(t, err)
	require.Len(t, entries, 1, "only the entry is written")
	require.GreaterOrEqual(t, done.Resumed, paused.BytesDone, "the resumed run found what the first one had")

	out, errOut, code = peerCmd(t, leech, "events")
	require.Zero(t, code, errOut)
	for _, typ := range []string{"FetchQueued", "FetchStarted", "FetchPaused", "FetchResumed", "FetchCompleted"} {
		require.Regexp(t, `(?m)^\s*\d+  \S+ \S+  `+typ+`\s+`+root+`(/sub)?  transfer `+id+`\b`, out)
	}
}
