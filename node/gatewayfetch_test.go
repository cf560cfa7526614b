package node_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/boxo/blockstore"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/stretchr/testify/require"

	"peer/store"
)

// withholdingStore has no block c until open is set: the file it belongs to cannot be
// complete anywhere that fetches it from here alone.
type withholdingStore struct {
	blockstore.Blockstore
	c    cid.Cid
	open *atomic.Bool
	gets *getCounts
}

// getCounts counts the blocks a server read to send them.
type getCounts struct {
	mu sync.Mutex
	n  map[cid.Cid]int
}

func (g *getCounts) of(c cid.Cid) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.n[c]
}

func (s withholdingStore) held(c cid.Cid) bool { return s.open.Load() || !c.Equals(s.c) }

func (s withholdingStore) Has(ctx context.Context, c cid.Cid) (bool, error) {
	if !s.held(c) {
		return false, nil
	}
	return s.Blockstore.Has(ctx, c)
}

func (s withholdingStore) GetSize(ctx context.Context, c cid.Cid) (int, error) {
	if !s.held(c) {
		return 0, ipld.ErrNotFound{Cid: c}
	}
	return s.Blockstore.GetSize(ctx, c)
}

func (s withholdingStore) Get(ctx context.Context, c cid.Cid) (blocks.Block, error) {
	if !s.held(c) {
		return nil, ipld.ErrNotFound{Cid: c}
	}
	s.gets.mu.Lock()
	s.gets.n[c]++
	s.gets.mu.Unlock()
	return s.Blockstore.Get(ctx, c)
}

// A range of a file the gateway does not hold is answered with the blocks under it, fetched
// first, while the whole file is still being fetched: its provider withholds the first leaf,
// so the file cannot be held when the range is answered. Once that fetch has brought a part of
// the file, a range of it is read from there, not asked of the provider again.
func TestGatewayServesARangeOfAFileNotHeldWhileItIsFetched(t *testing.T) {
	_, data := writeFile(t, 8<<20+300, 31)
	var open atomic.Bool
	first := leafOf(t, data[:1<<20])
	gets := &getCounts{n: map[cid.Cid]int{}}
	srv := newIPFSServer(t, func(bs blockstore.Blockstore) blockstore.Blockstore {
		return withholdingStore{Blockstore: bs, c: first, open: &open, gets: gets}
	})
	root := srv.addFile(t, data).Cid()
	b := repoNode(t, nil, withGateway)
	srv.link(t, b)
	p := "/ipfs/" + root.String()

	for _, r := range []struct{ from, to int }{
		{len(data) - 1000, len(data) - 1}, // the end, as a player asks for an index
		{3<<20 - 10, 4<<20 + 10},          // across leaves
	} {
		resp, body := gwGet(t, b, p, fmt.Sprintf("Range: bytes=%d-%d", r.from, r.to))
		require.Equal(t, http.StatusPartialContent, resp.StatusCode, "%s", body)
		require.Equal(t, data[r.from:r.to+1], body, "range %v", r)
		require.Equal(t, fmt.Sprintf("bytes %d-%d/%d", r.from, r.to, len(data)), resp.Header.Get("Content-Range"))
	}
	f, ok := b.Store().File(root)
	require.False(t, ok && f.State == store.Complete, "answered before the file was held")
	// The whole file is being fetched behind the ranges: it is in the index, partial.
	require.Eventually(t, func() bool { f, ok := b.Store().File(root); return ok && f.State == store.Partial },
		10*time.Second, 10*time.Millisecond, "the whole file is fetched behind the ranges")

	// Leaves 5 and 6 were never in a range: the fetch behind asks for them once.
	five, six := leafOf(t, data[5<<20:6<<20]), leafOf(t, data[6<<20:7<<20])
	require.Eventually(t, func() bool { return gets.of(five) > 0 && gets.of(six) > 0 },
		10*time.Second, 10*time.Millisecond, "the fetch behind asks for the rest")
	resp, body := gwGet(t, b, p, fmt.Sprintf("Range: bytes=%d-%d", 5<<20+7, 7<<20-9))
	require.Equal(t, http.StatusPartialContent, resp.StatusCode, "%s", body)
	require.Equal(t, data[5<<20+7:7<<20-8], body)
	require.Equal(t, 1, gets.of(five), "read from the fetch behind, not asked again")
	require.Equal(t, 1, gets.of(six), "read from the fetch behind, not asked again")
	open.Store(true)
}

// A folder the gateway does not hold is resolved and listed, and a file in it served, with the
// blocks on the path fetched from a provider.
func TestGatewayListsAFolderNotHeld(t *testing.T) {
	a := repoNode(t, nil)
	dir := filepath.Join(t.TempDir(), "album")
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "sub"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "sub", "a.txt"), []byte("inner"), 0o644))
	_, data := writeFile(t, 2<<20+5, 32)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "song.bin"), data, 0o644))
	f, err := a.Store().AddTree(t.Context(), dir, store.AddOptions{})
	require.NoError(t, err)
	b := repoNode(t, a, withGateway)
	base := "/ipfs/" + f.Root.String()

	resp, body := gwGet(t, b, base+"/")
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	require.Contains(t, resp.Header.Get("Content-Type"), "text/html")
	for _, name := range []string{"sub", "song.bin"} {
		require.Contains(t, string(body), name, "the listing names %s", name)
	}
	resp, body = gwGet(t, b, base+"/sub/a.txt")
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	require.Equal(t, "inner", string(body))
	resp, body = gwGet(t, b, base+"/song.bin", "Range: bytes=1048570-1048580")
	require.Equal(t, http.StatusPartialContent, resp.StatusCode, "%s", body)
	require.Equal(t, data[1048570:1048581], body)
	resp, body = gwGet(t, b, base+"/song.bin")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, data, body)
	resp, body = gwGet(t, b, base+"/missing")
	require.Equal(t, http.StatusNotFound, resp.StatusCode, "%s", body)
	require.True(t, strings.Contains(string(body), "missing") || strings.Contains(string(body), "no link"), "%s", body)
}

// Content that no provider has is 404, for a range of a file and for a path into a folder alike.
func TestGatewayAnswersNotFoundForContentNobodyHas(t *testing.T) {
	b := repoNode(t, nil, withGateway)
	nobody := leafOf(t, []byte("nobody has this"))
	for _, tc := range []struct{ path, header string }{
		{"/ipfs/" + nobody.String(), "Range: bytes=0-1"},
		{"/ipfs/" + nobody.String() + "/sub/file", ""},
	} {
		var headers []string
		if tc.header != "" {
			headers = append(headers, tc.header)
		}
		resp, body := gwGet(t, b, tc.path, headers...)
		require.Equal(t, http.StatusNotFound, resp.StatusCode, "%s: %s", tc.path, body)
	}
}
