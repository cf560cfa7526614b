package unixfs_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
	"testing/iotest"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
	"github.com/stretchr/testify/require"

	"peer/store/unixfs"
)

func TestImportThenReadRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	sizes := []int{0, 1, 255, 256, 257, 4096}
	for range 12 {
		sizes = append(sizes, rng.IntN(300_000))
	}
	for _, size := range sizes {
		for _, maxLinks := range []int{3, unixfs.MaxLinks} {
			t.Run(fmt.Sprintf("size=%d/links=%d", size, maxLinks), func(t *testing.T) {
				data := randomBytes(uint64(size), size)
				res, blocks := ourImport(t, data, 256, maxLinks)
				g := newBlockGetter(blocks)

				r := unixfs.NewReader(t.Context(), res.Root, g.get)
				got, err := io.ReadAll(r)
				require.NoError(t, err)
				require.NoError(t, r.Close())
				require.True(t, bytes.Equal(data, got), "bytes read back differ")

				// WriteTo, through io.Copy, gives the same bytes.
				r = unixfs.NewReader(t.Context(), res.Root, g.get)
				var buf bytes.Buffer
				n, err := io.Copy(&buf, r)
				require.NoError(t, err)
				require.Equal(t, int64(size), n)
				require.True(t, bytes.Equal(data, buf.Bytes()))
				require.NoError(t, r.Close())
			})
		}
	}
}

func TestReaderSmallReads(t *testing.T) {
	data := randomBytes(7, 50_000)
	res, blocks := ourImport(t, data, 1000, 4)
	r := unixfs.NewReader(t.Context(), res.Root, newBlockGetter(blocks).get)
	defer r.Close()
	got, err := io.ReadAll(iotest.OneByteReader(r))
	require.NoError(t, err)
	require.Equal(t, data, got)
}

// TestReaderLegacyDAG reads DAGs made the way older IPFS versions made them:
// CIDv0, dag-pb leaves holding the bytes in their UnixFS Data.
func TestReaderLegacyDAG(t *testing.T) {
	for _, size := range []int{0, 10, 256, 5000, 300_000} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			data := randomBytes(uint64(size), size)
			root, blocks := boxoImportWith(t, data, 256, 174, false, cid.V0Builder{})
			require.Equal(t, uint64(0), root.Version())
			r := unixfs.NewReader(t.Context(), root, newBlockGetter(blocks).get)
			defer r.Close()
			got, err := io.ReadAll(r)
			require.NoError(t, err)
			require.True(t, bytes.Equal(data, got))
		})
	}
}

func TestReaderMissingBlock(t *testing.T) {
	data := randomBytes(3, 20*256)
	res, blocks := ourImport(t, data, 256, 4)
	g := newBlockGetter(blocks)
	// Drop the tenth leaf: the reader yields the bytes before it, then fails.
	delete(g.blocks, blocks[10].Cid)
	r := unixfs.NewReader(t.Context(), res.Root, g.get)
	defer r.Close()
	got, err := io.ReadAll(r)
	require.ErrorContains(t, err, blocks[10].Cid.String())
	require.Equal(t, data[:len(got)], got)
	require.LessOrEqual(t, len(got), 10*256)
}

func TestReaderSizeMismatch(t *testing.T) {
	data := randomBytes(4, 3*256)
	res, blocks := ourImport(t, data, 256, unixfs.MaxLinks)
	// Serve a different (self-consistent) leaf under the first leaf's CID.
	g := newBlockGetter(blocks)
	g.blocks[blocks[0].Cid] = data[:100]
	r := unixfs.NewReader(t.Context(), res.Root, func(ctx context.Context, c cid.Cid) ([]byte, error) {
		g.mu.Lock()
		defer g.mu.Unlock()
		return g.blocks[c], nil
	})
	defer r.Close()
	_, err := io.ReadAll(r)
	require.ErrorContains(t, err, "its parent says 256")
}

func TestReaderRejectsDirectory(t *testing.T) {
	dir := unixfs.EncodePB(unixfs.PBNode{Data: unixfs.FSData{Type: unixfs.Directory}.Encode()})
	c := sumCID(t, cid.DagProtobuf, dir)
	r := unixfs.NewReader(t.Context(), c, newBlockGetter([]storedBlock{{c, dir}}).get)
	defer r.Close()
	_, err := io.ReadAll(r)
	require.ErrorIs(t, err, unixfs.ErrNotFile)
}

func TestReaderUnsupportedRoot(t *testing.T) {
	h, err := multihash.Sum([]byte("x"), multihash.SHA2_512, -1)
	require.NoError(t, err)
	r := unixfs.NewReader(t.Context(), cid.NewCidV1(cid.Raw, h), func(context.Context, cid.Cid) ([]byte, error) {
		t.Error("get called for an unsupported CID")
		return nil, errors.New("unexpected")
	})
	defer r.Close()
	_, err = r.Read(make([]byte, 10))
	require.ErrorContains(t, err, "sha2-512")
}

// TestReaderCloseStopsFetches checks that at most 8 leaves are fetched ahead,
// that Close unblocks a Read, cancels the gets in flight and waits for them,
// and that reads after Close fail.
func TestReaderCloseStopsFetches(t *testing.T) {
	data := randomBytes(5, 40*256)
	res, blocks := ourImport(t, data, 256, unixfs.MaxLinks)
	g := newBlockGetter(blocks)
	started := make(chan struct{}, 64)
	returned := make(chan struct{}, 64)
	get := func(ctx context.Context, c cid.Cid) ([]byte, error) {
		if c == res.Root {
			return g.get(ctx, c)
		}
		started <- struct{}{}
		<-ctx.Done() // a peer that never answers
		returned <- struct{}{}
		return nil, ctx.Err()
	}
	r := unixfs.NewReader(t.Context(), res.Root, get)
	readErr := make(chan error, 1)
	go func() {
		_, err := r.Read(make([]byte, 10))
		readErr <- err
	}()
	for range 8 { // the read-ahead window fills
		<-started
	}
	require.NoError(t, r.Close())
	require.Error(t, <-readErr)
	require.Len(t, returned, 8, "Close waited for every get in flight")
	require.Len(t, started, 0, "no more than 8 leaves were fetched ahead")
	_, err := r.Read(make([]byte, 1))
	require.Error(t, err)
	require.NoError(t, r.Close(), "Close is idempotent")
}

func TestReaderContextCancel(t *testing.T) {
	data := randomBytes(6, 40*256)
	res, blocks := ourImport(t, data, 256, unixfs.MaxLinks)
	g := newBlockGetter(blocks)
	ctx, cancel := context.WithCancel(t.Context())
	get := func(ctx context.Context, c cid.Cid) ([]byte, error) {
		if c == res.Root {
			return g.get(ctx, c)
		}
		<-ctx.Done()
		return nil, ctx.Err()
	}
	r := unixfs.NewReader(ctx, res.Root, get)
	readErr := make(chan error, 1)
	go func() {
		_, err := r.Read(make([]byte, 10))
		readErr <- err
	}()
	cancel()
	err := <-readErr
	require.ErrorIs(t, err, context.Canceled)
	require.NoError(t, r.Close())
}
