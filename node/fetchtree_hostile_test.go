package node_test

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"
	"github.com/spaolacci/murmur3"
	"github.com/stretchr/testify/require"

	"peer/node"
	"peer/store"
	"peer/store/unixfs"
	"peer/transfer"
)

// node adds a dag-pb block with links and UnixFS data fs.
func (m blockMap) node(t *testing.T, links []unixfs.Link, fs unixfs.FSData) cid.Cid {
	t.Helper()
	b := unixfs.EncodePB(unixfs.PBNode{Links: links, Data: fs.Encode()})
	c, err := cid.NewPrefixV1(cid.DagProtobuf, mh.SHA2_256).Sum(b)
	require.NoError(t, err)
	m[c] = b
	return c
}

// dir adds a plain folder holding the given name → CID entries, in that order. A raw leaf's
// link gives its length as its size, as importers do; others say 1.
func (m blockMap) dir(t *testing.T, entries ...any) cid.Cid {
	t.Helper()
	var links []unixfs.Link
	for i := 0; i < len(entries); i += 2 {
		c := entries[i+1].(cid.Cid)
		size := uint64(1)
		if c.Type() == cid.Raw {
			size = uint64(len(m[c]))
		}
		links = append(links, unixfs.Link{Name: entries[i].(string), Cid: c, Tsize: size})
	}
	return m.node(t, links, unixfs.FSData{Type: unixfs.Directory})
}

// shard adds a root HAMT shard putting each name in slot (the name's own slot when slot < 0).
func (m blockMap) shard(t *testing.T, fanout uint64, slot int, names []string, kid cid.Cid) cid.Cid {
	t.Helper()
	var bitfield [32]byte
	var links []unixfs.Link
	for _, name := range names {
		s := slot
		if s < 0 {
			s = int(murmur3.Sum64([]byte(name)) >> 56)
		}
		bitfield[len(bitfield)-1-s/8] |= 1 << (s % 8)
		links = append(links, unixfs.Link{Name: fmt.Sprintf("%02X", s) + name, Cid: kid, Tsize: 1})
	}
	bf := bitfield[:]
	for len(bf) > 0 && bf[0] == 0 {
		bf = bf[1:]
	}
	return m.node(t, links, unixfs.FSData{Type: unixfs.HAMTShard, Data: bf, HashType: unixfs.HashMurmur3, Fanout: fanout})
}

// A folder a malicious seeder crafts is refused with an error naming what is wrong, is not
// recorded as held, and nothing is written: not at the output, not beside it, not anywhere a
// name or a link points.
func TestFetchOfAHostileFolderIsRefusedAndWritesNothing(t *testing.T) {
	wrongSlot := func(name string) int { return int(murmur3.Sum64([]byte(name))>>56+1) % 256 }
	for _, tc := range []struct {
		name  string
		build func(m blockMap, leaf cid.Cid) cid.Cid
		want  string
	}{
		{"empty name", func(m blockMap, l cid.Cid) cid.Cid { return m.dir(t, "", l) }, "empty name"},
		{"dot", func(m blockMap, l cid.Cid) cid.Cid { return m.dir(t, ".", l) }, `entry "."`},
		{"dot dot", func(m blockMap, l cid.Cid) cid.Cid { return m.dir(t, "..", l) }, `entry ".."`},
		{"slash", func(m blockMap, l cid.Cid) cid.Cid { return m.dir(t, "../../x", l) }, `entry "../../x"`},
		{"absolute", func(m blockMap, l cid.Cid) cid.Cid { return m.dir(t, "/etc/passwd", l) }, `entry "/etc/passwd"`},
		{"backslash", func(m blockMap, l cid.Cid) cid.Cid { return m.dir(t, `..\x`, l) }, `entry "..\\x"`},
		{"NUL", func(m blockMap, l cid.Cid) cid.Cid { return m.dir(t, "a\x00b", l) }, `entry "a\x00b"`},
		{"control character", func(m blockMap, l cid.Cid) cid.Cid { return m.dir(t, "a\x1b[2Jb", l) }, "control character"},
		{"name over 255 bytes", func(m blockMap, l cid.Cid) cid.Cid { return m.dir(t, strings.Repeat("n", 256), l) }, "over 255"},
		{"nested bad name", func(m blockMap, l cid.Cid) cid.Cid { return m.dir(t, "ok", m.dir(t, "..", l)) }, `entry ".."`},
		{"duplicate names", func(m blockMap, l cid.Cid) cid.Cid { return m.dir(t, "twice", l, "twice", l) }, `entry "twice": duplicate name`},
		{"duplicate folder and file", func(m blockMap, l cid.Cid) cid.Cid {
			return m.dir(t, "x", m.dir(t, "y", l), "x", l)
		}, `entry "x": duplicate name`},
		{"HAMT of another fanout", func(m blockMap, l cid.Cid) cid.Cid {
			return m.shard(t, 16, -1, []string{"a", "b"}, l)
		}, "fanout 16"},
		{"HAMT entry in the wrong slot", func(m blockMap, l cid.Cid) cid.Cid {
			return m.shard(t, 256, wrongSlot("a"), []string{"a"}, l)
		}, "slot"},
		{"nested HAMT entry in the wrong slot", func(m blockMap, l cid.Cid) cid.Cid {
			return m.dir(t, "s", m.shard(t, 256, wrongSlot("a"), []string{"a"}, l))
		}, `folder s: directory`},
		{"HAMT with a bad name", func(m blockMap, l cid.Cid) cid.Cid {
			return m.shard(t, 256, -1, []string{".."}, l)
		}, `".."`},
		{"a file of one block whose link lies about its size", func(m blockMap, l cid.Cid) cid.Cid {
			return m.node(t, []unixfs.Link{{Name: "f", Cid: l, Tsize: 3}}, unixfs.FSData{Type: unixfs.Directory})
		}, "holds 7 file bytes but its parent says 3"},
		{"folders deeper than the bound", func(m blockMap, l cid.Cid) cid.Cid {
			c := l
			for range unixfs.MaxDepth + 2 {
				c = m.dir(t, "d", c)
			}
			return c
		}, "deep"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := repoNode(t, nil)
			blocks := blockMap{}
			root := tc.build(blocks, blocks.raw(t, []byte("payload")))
			liar := maliciousSeeder(t, blocks)
			require.NoError(t, n.Host().Connect(t.Context(), liar))

			top := t.TempDir()
			out := filepath.Join(top, "target", "got")
			require.NoError(t, os.Mkdir(filepath.Dir(out), 0o755))
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			_, err := n.Fetch(ctx, root, node.FetchOptions{Output: out})
			require.Error(t, err)
			t.Log(err)
			require.Contains(t, err.Error(), tc.want)
			for _, d := range []string{top, filepath.Dir(out)} {
				left, err := os.ReadDir(d)
				require.NoError(t, err)
				if d == top {
					require.Len(t, left, 1, "only the target folder is here")
				} else {
					require.Empty(t, left, "nothing written in the target folder")
				}
			}
			f, ok := n.Store().File(root)
			require.True(t, !ok || f.State != store.Complete, "not recorded as held")
		})
	}
}

// A symbolic link in a fetched folder is created as a link, last: nothing is written through it,
// wherever it points (here to a folder outside the target that a file of the same folder would
// land in if the link were followed).
func TestFetchOfAFolderWritesNothingThroughItsLinks(t *testing.T) {
	n := repoNode(t, nil)
	outside := t.TempDir()
	m := blockMap{}
	leaf := m.raw(t, []byte("payload"))
	link := m.node(t, nil, unixfs.FSData{Type: unixfs.Symlink, Data: []byte(outside)})
	root := m.dir(t, "a", link, "b", m.dir(t, "c", leaf))
	liar := maliciousSeeder(t, m)
	require.NoError(t, n.Host().Connect(t.Context(), liar))

	out := filepath.Join(t.TempDir(), "got")
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	_, err := n.Fetch(ctx, root, node.FetchOptions{Output: out})
	require.NoError(t, err)
	target, err := os.Readlink(filepath.Join(out, "a"))
	require.NoError(t, err)
	require.Equal(t, outside, target)
	got, err := os.ReadFile(filepath.Join(out, "b", "c"))
	require.NoError(t, err)
	require.Equal(t, "payload", string(got))
	left, err := os.ReadDir(outside)
	require.NoError(t, err)
	require.Empty(t, left, "nothing written where the link points")
}

// countingBlocks serves a blockMap and counts what it serves; the first time it has served at
// blocks it closes hit.
type countingBlocks struct {
	m      blockMap
	mu     sync.Mutex
	served map[cid.Cid]int
	at     int
	total  int
	hit    chan struct{}
}

func (b *countingBlocks) Get(ctx context.Context, c cid.Cid) ([]byte, error) {
	data, err := b.m.Get(ctx, c)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.served[c]++
	b.total++
	if b.total == b.at {
		close(b.hit)
	}
	return data, nil
}

func (b *countingBlocks) reset() map[cid.Cid]int {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.served
	b.served = map[cid.Cid]int{}
	return s
}

// A folder fetch stopped midway resumes with only the blocks that are missing: the second fetch
// asks for each of those once and for nothing that is already here, and the tree comes out whole.
func TestAnInterruptedFolderFetchResumesWithTheMissingBlocks(t *testing.T) {
	n := repoNode(t, nil)
	m := blockMap{}
	var sub []any
	want := map[string]string{}
	leaves := map[string]cid.Cid{}
	for d := range 4 {
		var entries []any
		for f := range 50 {
			name := fmt.Sprintf("f%02d", f)
			content := fmt.Sprintf("file %d of folder %d", f, d)
			leaf := m.raw(t, []byte(content))
			entries = append(entries, name, leaf)
			want[filepath.Join(fmt.Sprintf("d%d", d), name)] = content
			leaves[filepath.Join(fmt.Sprintf("d%d", d), name)] = leaf
		}
		sub = append(sub, fmt.Sprintf("d%d", d), m.dir(t, entries...))
	}
	root := m.dir(t, sub...)
	seed := &countingBlocks{m: m, served: map[cid.Cid]int{}, at: 60, hit: make(chan struct{})}
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = h.Close() })
	tr := transfer.New(h, seed)
	require.NoError(t, tr.Start())
	t.Cleanup(func() { _ = tr.Close() })
	require.NoError(t, n.Host().Connect(t.Context(), peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}))

	out := filepath.Join(t.TempDir(), "got")
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		select {
		case <-seed.hit:
		case <-ctx.Done():
		}
		cancel()
	}()
	_, err = n.Fetch(ctx, root, node.FetchOptions{Output: out})
	require.ErrorIs(t, err, context.Canceled)
	seed.reset()
	// What is here: folders in the repo, each file's leaf written in the partial tree. One file
	// written whole is torn, as a crash can leave it: it is missing too.
	part := store.PartPath(out, root)
	torn := false
	var missing []cid.Cid
	for c := range m {
		if c.Type() != cid.Raw && !n.Store().HasBlock(t.Context(), c) {
			missing = append(missing, c)
		}
	}
	for p, leaf := range leaves {
		b, err := os.ReadFile(filepath.Join(part, p))
		if err == nil && string(b) == want[p] && !torn {
			require.NoError(t, os.Truncate(filepath.Join(part, p), 3))
			torn = true
			err = fs.ErrNotExist
		}
		if err != nil || string(b) != want[p] {
			missing = append(missing, leaf)
		}
	}
	require.True(t, torn, "some file was written before the fetch stopped")
	require.NotEmpty(t, missing, "the fetch stopped before the end")
	require.Less(t, len(missing), len(m), "and after it got some blocks")
	f, ok := n.Store().File(root)
	require.True(t, ok)
	require.Equal(t, store.Partial, f.State)

	// The second fetch asks a seeder of its own: wants the canceled fetch still had in flight
	// reach the first one, and would be counted as asked again.
	_ = tr.Close()
	_ = h.Close()
	seed2 := &countingBlocks{m: m, served: map[cid.Cid]int{}, at: -1}
	h2, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = h2.Close() })
	tr2 := transfer.New(h2, seed2)
	require.NoError(t, tr2.Start())
	t.Cleanup(func() { _ = tr2.Close() })
	require.NoError(t, n.Host().Connect(t.Context(), peer.AddrInfo{ID: h2.ID(), Addrs: h2.Addrs()}))

	ctx2, cancel2 := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel2()
	_, err = n.Fetch(ctx2, root, node.FetchOptions{Output: out})
	require.NoError(t, err)
	served := seed2.reset()
	require.Len(t, served, len(missing), "only the missing blocks are sent again")
	for _, c := range missing {
		require.Equal(t, 1, served[c], "block %s asked for once", c)
	}
	got := map[string]string{}
	for p := range want {
		b, err := os.ReadFile(filepath.Join(out, p))
		require.NoError(t, err)
		got[p] = string(b)
	}
	require.Equal(t, want, got)
}
