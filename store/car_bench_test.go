package store_test

import (
	"bufio"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"peer/store"
)

const carBenchSize = 1 << 30

// BenchmarkCARExport1GiB exports a held 1 GiB file to a CAR file on the same disk (synced), and
// to io.Discard.
//
//	go test -run '^$' -bench CARExport1GiB -benchtime 1x ./store
func BenchmarkCARExport1GiB(b *testing.B) {
	dir := b.TempDir()
	_, err := store.Init(filepath.Join(dir, "repo"))
	require.NoError(b, err)
	s, err := store.Open(filepath.Join(dir, "repo"))
	require.NoError(b, err)
	defer s.Close()
	f, err := s.Add(b.Context(), newUniqueReader(carBenchSize), "big", store.AddOptions{})
	require.NoError(b, err)
	b.Run("file", func(b *testing.B) {
		b.SetBytes(carBenchSize)
		for i := 0; i < b.N; i++ {
			out, err := os.Create(filepath.Join(dir, "big.car"))
			require.NoError(b, err)
			_, err = s.Export(b.Context(), f.Root, out)
			require.NoError(b, err)
			require.NoError(b, out.Sync())
			require.NoError(b, out.Close())
		}
	})
	b.Run("discard", func(b *testing.B) { // reading and verifying the blocks, writing the CAR
		b.SetBytes(carBenchSize)
		for i := 0; i < b.N; i++ {
			_, err := s.Export(b.Context(), f.Root, io.Discard)
			require.NoError(b, err)
		}
	})
}

// BenchmarkCARImport1GiB imports a CAR of a 1 GiB file into a fresh repo each time (every block
// verified, written, and made durable).
//
//	go test -run '^$' -bench CARImport1GiB -benchtime 1x ./store
func BenchmarkCARImport1GiB(b *testing.B) {
	dir := b.TempDir()
	_, err := store.Init(filepath.Join(dir, "src"))
	require.NoError(b, err)
	s, err := store.Open(filepath.Join(dir, "src"))
	require.NoError(b, err)
	f, err := s.Add(b.Context(), newUniqueReader(carBenchSize), "big", store.AddOptions{})
	require.NoError(b, err)
	carPath := filepath.Join(dir, "big.car")
	out, err := os.Create(carPath)
	require.NoError(b, err)
	_, err = s.Export(b.Context(), f.Root, out)
	require.NoError(b, err)
	require.NoError(b, out.Close())
	require.NoError(b, s.Close())
	require.NoError(b, os.RemoveAll(filepath.Join(dir, "src")))
	b.SetBytes(carBenchSize)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		repo := filepath.Join(dir, "dst")
		require.NoError(b, os.RemoveAll(repo))
		_, err := store.Init(repo)
		require.NoError(b, err)
		d, err := store.Open(repo)
		require.NoError(b, err)
		in, err := os.Open(carPath)
		require.NoError(b, err)
		b.StartTimer()
		res, err := d.ImportCAR(b.Context(), bufio.NewReaderSize(in, 1<<20))
		require.NoError(b, err)
		b.StopTimer()
		require.Equal(b, store.RootAdded, res.Roots[0].State)
		in.Close()
		require.NoError(b, d.Close())
		b.StartTimer()
	}
}
