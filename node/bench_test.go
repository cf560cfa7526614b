package node_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"peer/node"
)

// BenchmarkNodeStartBootstrapped measures New+Start of a node that bootstraps its DHT off a
// local peer (Start returns once the routing table holds it), then Close.
//
//	go test -run '^$' -bench NodeStartBootstrapped -benchtime 20x ./node
func BenchmarkNodeStartBootstrapped(b *testing.B) {
	bootCfg := testConfig()
	bootCfg.Network = "bench"
	boot, err := node.New(node.Options{Config: bootCfg, Key: newKey(b)})
	require.NoError(b, err)
	require.NoError(b, boot.Start(b.Context()))
	defer boot.Close()

	cfg := testConfig()
	cfg.Network = "bench"
	cfg.Bootstrap = []string{boot.Addrs()[0].String()}
	key := newKey(b)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		n, err := node.New(node.Options{Config: cfg, Key: key})
		require.NoError(b, err)
		require.NoError(b, n.Start(b.Context()))
		b.StopTimer()
		require.Equal(b, 1, n.Discovery().RoutingTableSize())
		require.NoError(b, n.Close())
		b.StartTimer()
	}
}

// writeSeeded writes size random bytes to path, 4 MiB at a time.
func writeSeeded(tb testing.TB, path string, size int64, seed byte) {
	tb.Helper()
	fh, err := os.Create(path)
	require.NoError(tb, err)
	r := rand.NewChaCha8([32]byte{seed})
	buf := make([]byte, 4<<20)
	for left := size; left > 0; left -= int64(len(buf)) {
		n := min(left, int64(len(buf)))
		_, _ = r.Read(buf[:n])
		_, err := fh.Write(buf[:n])
		require.NoError(tb, err)
	}
	require.NoError(tb, fh.Close())
}

// BenchmarkFetchLargeFiles fetches 1 GiB between two nodes on loopback, shared in place on one
// and written in place on the other: as one file, and as a folder of 8 files of 128 MiB. The
// folder should move at the file's rate (each leaf is written once, into its file, in both).
//
//	go test -run '^$' -bench FetchLargeFiles -benchtime 3x ./node
func BenchmarkFetchLargeFiles(b *testing.B) {
	for _, tc := range []struct {
		name  string
		files int
	}{{"1x1GiB", 1}, {"8x128MiB", 8}} {
		b.Run(tc.name, func(b *testing.B) {
			const total = 1 << 30
			src := filepath.Join(b.TempDir(), "src")
			if tc.files == 1 {
				writeSeeded(b, src, total, 1)
			} else {
				require.NoError(b, os.Mkdir(src, 0o755))
				for i := range tc.files {
					writeSeeded(b, filepath.Join(src, fmt.Sprintf("part%d.bin", i)), total/int64(tc.files), byte(i+1))
				}
			}
			a := repoNode(b, nil)
			c := repoNode(b, a)
			f, err := a.Share(b.Context(), src, node.ShareOptions{})
			require.NoError(b, err)
			dir := b.TempDir()
			b.SetBytes(total)
			var moving time.Duration
			b.ResetTimer()
			for i := range b.N {
				out := filepath.Join(dir, fmt.Sprintf("out%d", i))
				res, err := c.Fetch(b.Context(), f.Root, node.FetchOptions{Output: out})
				require.NoError(b, err)
				moving += res.Stats.Duration
				b.StopTimer()
				require.NoError(b, c.Store().Remove(f.Root))
				require.NoError(b, os.RemoveAll(out))
				b.StartTimer()
			}
			b.ReportMetric(float64(total)*float64(b.N)/moving.Seconds()/1e6, "MB/s-transfer")
		})
	}
}

// BenchmarkCreateSmallFiles creates 10,000 files of 4 KiB in 100 folders, one after another, with
// nothing else in the process (create exclusively, write, close): the file system's own rate at
// that moment, which bounds BenchmarkFetchFolderOfSmallFiles.
//
//	go test -run '^$' -bench CreateSmallFiles -benchtime 3x ./node
func BenchmarkCreateSmallFiles(b *testing.B) {
	buf := make([]byte, 4<<10)
	var elapsed time.Duration
	for range b.N {
		b.StopTimer()
		dir := filepath.Join(b.TempDir(), "tree")
		b.StartTimer()
		start := time.Now()
		for d := range 100 {
			sub := filepath.Join(dir, fmt.Sprintf("d%03d", d))
			require.NoError(b, os.MkdirAll(sub, 0o755))
			for f := range 100 {
				fh, err := os.OpenFile(filepath.Join(sub, fmt.Sprintf("f%03d", f)), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
				require.NoError(b, err)
				_, err = fh.Write(buf)
				require.NoError(b, err)
				require.NoError(b, fh.Close())
			}
		}
		elapsed += time.Since(start)
	}
	b.ReportMetric(float64(b.N*10_000)/elapsed.Seconds(), "files/s")
}
