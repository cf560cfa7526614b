package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"peer/node/api"
)

// fetchOnce runs `peer fetch --json` on repo and returns its final event.
func fetchOnce(tb testing.TB, repo, root, out string) api.FetchEvent {
	tb.Helper()
	stdout, errOut, code := peerCmd(tb, repo, "fetch", root, "-o", out, "--force", "--json")
	require.Zero(tb, code, errOut)
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	var ev api.FetchEvent
	require.NoError(tb, json.Unmarshal([]byte(lines[len(lines)-1]), &ev))
	require.Equal(tb, "done", ev.Type)
	return ev
}

// syncFile waits until path's bytes are on the disk.
func syncFile(tb testing.TB, path string) {
	tb.Helper()
	f, err := os.Open(path)
	require.NoError(tb, err)
	defer f.Close()
	require.NoError(tb, f.Sync())
}

// benchFetch shares a file of size bytes on the seeders and fetches it on a fresh daemon each
// round, reporting the transfer's throughput, duplicate bytes and every daemon's peak RSS.
func benchFetch(b *testing.B, size int64, seeders int, uploadLimit string) {
	dir := b.TempDir()
	src := filepath.Join(dir, "payload.bin")
	writeRandom(b, src, int(size), 11)
	syncFile(b, src) // its writeback must not overlap the measured fetches
	var seedRepos []string
	var boot string
	var pids []int
	for i := range seeders {
		repo := filepath.Join(dir, "seed"+strconv.Itoa(i))
		initRepo(b, repo)
		if uploadLimit != "" {
			_, errOut, code := peerCmd(b, repo, "config", "set", "upload_limit", uploadLimit)
			require.Zero(b, code, errOut)
		}
		args := []string{"--network", "bench"}
		if boot != "" {
			args = append(args, "--bootstrap", boot)
		}
		cmd, _, _ := startDaemonProcess(b, repo, args...)
		pids = append(pids, cmd.Process.Pid)
		if boot == "" {
			boot = daemonAddr(b, repo)
		}
		seedRepos = append(seedRepos, repo)
	}
	var root string
	for _, repo := range seedRepos {
		out, errOut, code := peerCmd(b, repo, "share", src)
		require.Zero(b, code, errOut)
		root = strings.TrimSpace(out)
	}
	var received, dup int64
	var seconds float64
	var peak float64
	b.SetBytes(size)
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		repo := filepath.Join(dir, "leech"+strconv.Itoa(i))
		initRepo(b, repo)
		cmd, _, _ := startDaemonProcess(b, repo, "--network", "bench", "--bootstrap", boot)
		for _, s := range seedRepos {
			_, _, _ = peerCmd(b, repo, "connect", daemonAddr(b, s))
		}
		out := filepath.Join(dir, "out.bin")
		b.StartTimer()
		ev := fetchOnce(b, repo, root, out)
		b.StopTimer()
		received += ev.Received
		dup += ev.Duplicates
		seconds += ev.Duration.Seconds()
		b.Logf("round %d: %.0f MB/s", i, float64(ev.Received)/ev.Duration.Seconds()/1e6)
		peak = max(peak, peakRSSMiB(b, cmd.Process.Pid))
		stopDaemon(b, cmd)
		os.Remove(out)
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(float64(received)/seconds/1e6, "MB/s-transfer")
	b.ReportMetric(100*float64(dup)/float64(received), "%-duplicate")
	b.ReportMetric(peak, "MiB-peak-rss-fetcher")
	var seedPeak float64
	for _, pid := range pids {
		seedPeak = max(seedPeak, peakRSSMiB(b, pid))
	}
	b.ReportMetric(seedPeak, "MiB-peak-rss-seeder")
}

// BenchmarkDaemonFetch1GiB: two daemons on loopback TCP, a 1 GiB file shared in place on one,
// fetched by the other. Targets: at least 800 MB/s; each daemon's peak RSS at most 100 MiB.
//
//	go test -run '^$' -bench DaemonFetch1GiB -benchtime 3x ./cmd/peer
func BenchmarkDaemonFetch1GiB(b *testing.B) { benchFetch(b, 1<<30, 1, "") }

// BenchmarkDaemonFetchFourSeeders: four seeders each capped at 25 MB/s, one fetcher, 256 MiB.
// Targets: at least 90 MB/s together; duplicate bytes at most 2%.
//
//	go test -run '^$' -bench DaemonFetchFourSeeders -benchtime 2x ./cmd/peer
func BenchmarkDaemonFetchFourSeeders(b *testing.B) { benchFetch(b, 256<<20, 4, "25000000") }
