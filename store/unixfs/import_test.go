package unixfs_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/require"

	"peer/store/unixfs"
)

func TestImportOptionsValidate(t *testing.T) {
	for _, opts := range []unixfs.ImportOptions{
		{ChunkSize: unixfs.MinChunkSize - 1},
		{ChunkSize: unixfs.MaxChunkSize + 1},
		{ChunkSize: -1},
		{Workers: -1},
	} {
		_, err := unixfs.Import(t.Context(), bytes.NewReader([]byte("x")), opts, nil)
		require.Error(t, err, "%+v", opts)
	}
}

// TestImportReaderShapes checks that how the input arrives (one byte at a
// time, half reads, data with an EOF) does not change the DAG, and that the
// number of workers does not either.
func TestImportReaderShapes(t *testing.T) {
	data := randomBytes(21, 100*256+13)
	want, _ := ourImport(t, data, 256, unixfs.MaxLinks)
	readers := map[string]func() io.Reader{
		"one byte": func() io.Reader { return iotest.OneByteReader(bytes.NewReader(data)) },
		"half":     func() io.Reader { return iotest.HalfReader(bytes.NewReader(data)) },
		"data+EOF": func() io.Reader { return iotest.DataErrReader(bytes.NewReader(data)) },
		"plain":    func() io.Reader { return bytes.NewReader(data) },
	}
	for name, mk := range readers {
		for _, workers := range []int{0, 1, 3, 8} {
			res, err := unixfs.Import(t.Context(), mk(), unixfs.ImportOptions{ChunkSize: 256, Workers: workers}, nil)
			require.NoError(t, err, name)
			require.Equal(t, want, res, "%s, %d workers", name, workers)
		}
	}
}

func TestImportProgress(t *testing.T) {
	data := randomBytes(22, 10*256+5)
	var calls []int64
	res, err := unixfs.Import(t.Context(), bytes.NewReader(data), unixfs.ImportOptions{
		ChunkSize: 256,
		Progress:  func(n int64) { calls = append(calls, n) }, // Import has returned before calls is read
	}, nil)
	require.NoError(t, err)
	require.Equal(t, uint64(len(data)), res.Size)
	require.Len(t, calls, 11)
	for i, n := range calls {
		require.Equal(t, min(int64(i+1)*256, int64(len(data))), n)
	}
}

// TestImportPutOrder checks put's contract: never concurrent, leaves in file
// order, each block before any block linking it, root last.
func TestImportPutOrder(t *testing.T) {
	data := randomBytes(23, 200*256)
	var inPut atomic.Int32
	seen := map[string]bool{}
	var order []storedBlock
	put := func(b unixfs.Block) error {
		if inPut.Add(1) != 1 {
			t.Error("put called concurrently")
		}
		defer inPut.Add(-1)
		if !b.Leaf {
			n, err := unixfs.ParseNode(b.Cid, b.Data)
			require.NoError(t, err)
			for _, ch := range n.Children {
				require.True(t, seen[ch.Cid.KeyString()], "child %s stored before its parent", ch.Cid)
			}
		}
		require.NoError(t, unixfs.Verify(b.Cid, b.Data))
		seen[b.Cid.KeyString()] = true
		order = append(order, storedBlock{Cid: b.Cid})
		return nil
	}
	res, err := unixfs.ImportMaxLinks(t.Context(), bytes.NewReader(data), unixfs.ImportOptions{ChunkSize: 256}, 5, put)
	require.NoError(t, err)
	require.Equal(t, res.Root, order[len(order)-1].Cid)
	require.Equal(t, len(order), res.Blocks)
}

func TestImportPutError(t *testing.T) {
	data := randomBytes(24, 50*256)
	errFull := errors.New("disk full")
	calls := 0
	_, err := unixfs.Import(t.Context(), bytes.NewReader(data), unixfs.ImportOptions{ChunkSize: 256}, func(unixfs.Block) error {
		calls++
		if calls == 7 {
			return errFull
		}
		return nil
	})
	require.ErrorIs(t, err, errFull)
	require.Equal(t, 7, calls, "no put after a failed one")
}

func TestImportReadError(t *testing.T) {
	errBroken := errors.New("broken pipe")
	r := io.MultiReader(bytes.NewReader(randomBytes(25, 1000)), iotest.ErrReader(errBroken))
	_, err := unixfs.Import(t.Context(), r, unixfs.ImportOptions{ChunkSize: 256}, nil)
	require.ErrorIs(t, err, errBroken)
}

// endlessReader is an input that never ends.
type endlessReader struct{}

func (endlessReader) Read(p []byte) (int, error) { return len(p), nil }

func TestImportContextCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	puts := 0
	_, err := unixfs.Import(ctx, endlessReader{}, unixfs.ImportOptions{ChunkSize: 256}, func(unixfs.Block) error {
		puts++
		if puts == 100 {
			cancel()
		}
		return nil
	})
	require.ErrorIs(t, err, context.Canceled)
}

func TestImportPutNilOnlyHashes(t *testing.T) {
	data := randomBytes(26, 3000)
	want, blocks := ourImport(t, data, 256, unixfs.MaxLinks)
	got, err := unixfs.Import(t.Context(), bytes.NewReader(data), unixfs.ImportOptions{ChunkSize: 256}, nil)
	require.NoError(t, err)
	require.Equal(t, want, got)
	require.Equal(t, len(blocks), got.Blocks)
}

// TestImportMemoryBounded checks that chunk buffers are recycled: importing
// 64 MiB in 1 MiB chunks allocates about the handful of chunks in flight, not
// one buffer per chunk.
func TestImportMemoryBounded(t *testing.T) {
	const size = 64 << 20
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	res, err := unixfs.Import(t.Context(), newGenReader(size), unixfs.ImportOptions{Workers: 2}, nil)
	runtime.ReadMemStats(&after)
	require.NoError(t, err)
	require.Equal(t, uint64(size), res.Size)
	allocated := after.TotalAlloc - before.TotalAlloc
	require.Less(t, allocated, uint64(12<<20), "allocated %d bytes for a %d-byte import", allocated, size)
}

// The importer does not wrap its put function's error with the block: the store's put already
// names it, and a second "storing block X:" would repeat it.
func TestImportReturnsPutErrorAsItIs(t *testing.T) {
	putErr := errors.New("storing block bafk…: no space left on device")
	_, err := unixfs.Import(context.Background(), strings.NewReader("hello"), unixfs.ImportOptions{}, func(unixfs.Block) error { return putErr })
	require.ErrorIs(t, err, putErr)
	require.Equal(t, 1, strings.Count(err.Error(), "storing block"), err.Error())
}
