package node_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
	"github.com/spaolacci/murmur3"
	"github.com/stretchr/testify/require"

	"peer/node"
	"peer/store"
	"peer/store/unixfs"
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

// dir adds a plain folder holding the given name → CID entries, in that order.
func (m blockMap) dir(t *testing.T, entries ...any) cid.Cid {
	t.Helper()
	var links []unixfs.Link
	for i := 0; i < len(entries); i += 2 {
		links = append(links, unixfs.Link{Name: entries[i].(string), Cid: entries[i+1].(cid.Cid), Tsize: 1})
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
