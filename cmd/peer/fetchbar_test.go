package main

import (
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"peer/node/api"
)

func TestFetchSummarySaysWhatThisRunDid(t *testing.T) {
	ev := api.FetchEvent{Received: 24 << 20, Peers: 1, Duration: 3 * time.Second}
	require.Equal(t, "24 MiB from 1 peer in 3s, 8.4 MB/s", fetchSummary(ev))
	ev = api.FetchEvent{Received: 379 << 20, Resumed: 645 << 20, Peers: 2, Duration: 10 * time.Second}
	require.Equal(t, "379 MiB from 2 peers in 10s, 39.7 MB/s; 645 MiB were already here", fetchSummary(ev))
	ev = api.FetchEvent{Resumed: 5<<20 + 77, Duration: 12 * time.Millisecond}
	require.Equal(t, "all 5 MiB were already here; written in 12ms", fetchSummary(ev))
}

func TestHumanFigures(t *testing.T) {
	for n, want := range map[uint64]string{0: "0 B", 512: "512 B", 1536: "1.5 KiB", 5<<20 + 77: "5 MiB", 10443000: "10 MiB", 645 << 20: "645 MiB", 1 << 30: "1 GiB", 3 << 29: "1.5 GiB"} {
		require.Equal(t, want, sizeText(n))
	}
	for r, want := range map[float64]string{850e3: "850 kB/s", 40.1e6: "40.1 MB/s", 1.2e9: "1.2 GB/s"} {
		require.Equal(t, want, rateText(r))
	}
	require.Equal(t, "0 peers", plural(0, "peer"))
	require.Equal(t, "1 peer", plural(1, "peer"))
	require.Equal(t, "2 peers", plural(2, "peer"))
	require.Equal(t, "3m05s", durationText(3*time.Minute+5*time.Second))
}

func TestBarLineFitsEightyColumns(t *testing.T) {
	worst := barLine(1023<<30, 1000<<30, 999.9e6, 99, durationText(59*time.Minute+59*time.Second)+" left")
	require.LessOrEqual(t, utf8.RuneCountInString(worst), 80, worst)
	require.Equal(t, " 41% [######----------] 430 MiB / 1 GiB  40.1 MB/s  2 peers  16s left",
		barLine(1<<30, 430<<20, 40.1e6, 2, "16s left"))
}

func TestAFolderBarCountsItsFiles(t *testing.T) {
	require.Equal(t, "0/7 files", filesText(0, 7))
	require.Equal(t, "1,024/10,000 files", filesText(1024, 10000))
	require.Equal(t, "999/1,000,000 files", filesText(999, 1_000_000))
	worst := folderLine(api.FetchProgress{Bytes: 1023 << 30, BytesDone: 1023 << 30, Files: 10_000_000, FilesDone: 9_999_999}, "")
	require.Equal(t, "writing: 9,999,999/10,000,000 files of 1023 GiB", worst)
	require.Equal(t, "fetching: 430 MiB  40.1 MB/s  2 peers",
		folderLine(api.FetchProgress{BytesDone: 430 << 20, Rate: 40.1e6, Peers: 2}, ""))
	require.Equal(t, "a file's line", folderLine(api.FetchProgress{Bytes: 10, BytesDone: 5}, "a file's line"))
}
