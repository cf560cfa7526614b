package store_test

import (
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"peer/store"
)

// uniqueReader yields n bytes of pseudo-random data in which every 1 MiB chunk differs, without
// spending time generating randomness: one random buffer, stamped with the chunk number.
type uniqueReader struct {
	buf  []byte
	off  int64
	size int64
}

func newUniqueReader(n int64) *uniqueReader {
	buf := make([]byte, 1<<20)
	_, _ = rand.NewChaCha8([32]byte{42}).Read(buf)
	return &uniqueReader{buf: buf, size: n}
}

func (r *uniqueReader) Read(p []byte) (int, error) {
	if r.off >= r.size {
		return 0, io.EOF
	}
	n := 0
	for n < len(p) && r.off < r.size {
		pos := r.off % int64(len(r.buf))
		if pos == 0 {
			binary.LittleEndian.PutUint64(r.buf, uint64(r.off))
		}
		c := copy(p[n:], r.buf[pos:min(int64(len(r.buf)), pos+r.size-r.off)])
		n += c
		r.off += int64(c)
	}
	return n, nil
}

const benchSize = 256 << 20

// BenchmarkAddOnlyHash is `peer add --only-hash` of a 256 MiB file.
func BenchmarkAddOnlyHash(b *testing.B) {
	b.SetBytes(benchSize)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := store.Hash(b.Context(), newUniqueReader(benchSize), store.AddOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAdd is `peer add` of a 256 MiB file into a repo, blocks durable at the end.
func BenchmarkAdd(b *testing.B) {
	b.SetBytes(benchSize)
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		dir := b.TempDir()
		if _, err := store.Init(dir); err != nil {
			b.Fatal(err)
		}
		s, err := store.Open(dir)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := s.Add(b.Context(), newUniqueReader(benchSize), "bench", store.AddOptions{}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		s.Close()
		os.RemoveAll(dir)
		b.StartTimer()
	}
}

// makeLog fills a repo with n events: adds and removals over a few hundred files, as a long-lived
// node's history looks (many events, a modest index).
func makeLog(tb testing.TB, n int) string {
	tb.Helper()
	dir := tb.TempDir()
	_, err := store.Init(dir)
	require.NoError(tb, err)
	s, err := store.Open(dir)
	require.NoError(tb, err)
	roots := make([]string, 500)
	for i := range roots {
		res, err := store.Hash(tb.Context(), newUniqueReader(int64(i+1)), store.AddOptions{})
		require.NoError(tb, err)
		roots[i] = res.Root.String()
	}
	batch := make([]store.Event, 0, 10000)
	for i := range n {
		typ := store.FileAdded
		if i%2 == 1 {
			typ = store.FileRemoved
		}
		batch = append(batch, store.Event{Type: typ, Root: roots[(i/2)%len(roots)], Name: fmt.Sprintf("file-%d", i%1000), Size: uint64(i), Time: time.Unix(1700000000+int64(i), 0).UTC()})
		if len(batch) == cap(batch) || i == n-1 {
			require.NoError(tb, s.Record(batch...))
			batch = batch[:0]
		}
	}
	require.NoError(tb, s.Close())
	return dir
}

// BenchmarkOpen1MEvents opens a repo whose log holds one million events (with its snapshot, as
// Close leaves it), and, as a sub-benchmark, with the snapshot gone (a full replay).
func BenchmarkOpen1MEvents(b *testing.B) {
	dir := makeLog(b, 1_000_000)
	b.Run("snapshot", func(b *testing.B) {
		for b.Loop() {
			s, err := store.Open(dir)
			if err != nil {
				b.Fatal(err)
			}
			s.Close()
		}
	})
	b.Run("events-since-snapshot", func(b *testing.B) {
		// A follower catching up from a recent event: read from the snapshot's mark, not the
		// log's start.
		s, err := store.Open(dir)
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		n := 0
		for b.Loop() {
			n = 0
			if err := s.Events(999_990, func(store.Event) error { n++; return nil }); err != nil {
				b.Fatal(err)
			}
		}
		if n != 11 {
			b.Fatalf("%d events from 999990, want 11", n)
		}
	})
	b.Run("replay", func(b *testing.B) {
		for b.Loop() {
			os.Remove(filepath.Join(dir, "snapshot.json"))
			s, err := store.Open(dir)
			if err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			s.Close()
			b.StartTimer()
		}
	})
}

// makeSmallTree writes 10,000 distinct files of 4 KiB in 100 folders.
func makeSmallTree(b *testing.B) string {
	b.Helper()
	root := filepath.Join(b.TempDir(), "tree")
	buf := make([]byte, 4096)
	r := rand.NewChaCha8([32]byte{7})
	for d := range 100 {
		dir := filepath.Join(root, fmt.Sprintf("d%03d", d))
		require.NoError(b, os.MkdirAll(dir, 0o755))
		for f := range 100 {
			_, _ = r.Read(buf)
			require.NoError(b, os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%03d.bin", f)), buf, 0o644))
		}
	}
	return root
}

func reportFiles(b *testing.B, files int) {
	b.ReportMetric(float64(files*b.N)/b.Elapsed().Seconds(), "files/s")
}

// BenchmarkAddTree10k is `peer add DIR` of 10,000 files of 4 KiB in 100 folders into a fresh
// repo, blocks durable (one syncfs) and the folder recorded.
func BenchmarkAddTree10k(b *testing.B) {
	tree := makeSmallTree(b)
	b.SetBytes(10000 * 4096)
	for b.Loop() {
		b.StopTimer()
		dir := b.TempDir()
		_, err := store.Init(dir)
		require.NoError(b, err)
		s, err := store.Open(dir)
		require.NoError(b, err)
		b.StartTimer()
		f, err := s.AddTree(b.Context(), tree, store.AddOptions{})
		require.NoError(b, err)
		require.Equal(b, uint64(10000), f.Files)
		b.StopTimer()
		require.NoError(b, s.Close())
		b.StartTimer()
	}
	reportFiles(b, 10000)
}

// BenchmarkHashTree10k is `peer add --only-hash DIR` of the same tree.
func BenchmarkHashTree10k(b *testing.B) {
	tree := makeSmallTree(b)
	b.SetBytes(10000 * 4096)
	for b.Loop() {
		if _, err := store.HashTree(b.Context(), tree, store.AddOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	reportFiles(b, 10000)
}

// BenchmarkShareTree10k is `peer share DIR` of the same tree into a fresh repo: files hashed in
// place, only the 101 directory nodes stored (one sync), the folder recorded by one event.
func BenchmarkShareTree10k(b *testing.B) {
	tree := makeSmallTree(b)
	b.SetBytes(10000 * 4096)
	for b.Loop() {
		b.StopTimer()
		dir := b.TempDir()
		_, err := store.Init(dir)
		require.NoError(b, err)
		s, err := store.Open(dir)
		require.NoError(b, err)
		b.StartTimer()
		f, err := s.AddTree(b.Context(), tree, store.AddOptions{Reference: true})
		require.NoError(b, err)
		require.Equal(b, uint64(10000), f.Files)
		b.StopTimer()
		require.NoError(b, s.Close())
		b.StartTimer()
	}
	reportFiles(b, 10000)
}

// BenchmarkCheckSharedTree10k is the periodic check of that shared folder: its directory nodes
// read and one lstat per file.
func BenchmarkCheckSharedTree10k(b *testing.B) {
	tree := makeSmallTree(b)
	dir := b.TempDir()
	_, err := store.Init(dir)
	require.NoError(b, err)
	s, err := store.Open(dir)
	require.NoError(b, err)
	b.Cleanup(func() { s.Close() })
	_, err = s.AddTree(b.Context(), tree, store.AddOptions{Reference: true})
	require.NoError(b, err)
	for b.Loop() {
		if n := s.CheckFiles(); n != 0 {
			b.Fatalf("%d changed", n)
		}
	}
	reportFiles(b, 10000)
}
