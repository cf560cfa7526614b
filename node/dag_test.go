package node_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"
	"github.com/stretchr/testify/require"

	"peer/node"
	"peer/store"
	"peer/store/unixfs"
	"peer/transfer"
	"peer/transfer/wire"
)

// blockMap is what a hand-made seeder serves.
type blockMap map[cid.Cid][]byte

func (m blockMap) Get(_ context.Context, c cid.Cid) ([]byte, error) {
	if b, ok := m[c]; ok {
		return b, nil
	}
	return nil, fmt.Errorf("%w: %s", transfer.ErrNotFound, c)
}

func (m blockMap) raw(t *testing.T, b []byte) cid.Cid {
	t.Helper()
	c, err := cid.NewPrefixV1(cid.Raw, mh.SHA2_256).Sum(b)
	require.NoError(t, err)
	m[c] = b
	return c
}

// file adds a dag-pb File node linking to kids with the given blocksizes (and their sum as its
// filesize).
func (m blockMap) file(t *testing.T, kids []cid.Cid, sizes []uint64) cid.Cid {
	t.Helper()
	links := make([]unixfs.Link, len(kids))
	var total uint64
	for i, k := range kids {
		links[i] = unixfs.Link{Cid: k, Tsize: sizes[i]}
		total += sizes[i]
	}
	b := unixfs.EncodePB(unixfs.PBNode{Links: links, Data: unixfs.FSData{Type: unixfs.File, FileSize: total, HasFileSize: true, BlockSizes: sizes}.Encode()})
	c, err := cid.NewPrefixV1(cid.DagProtobuf, mh.SHA2_256).Sum(b)
	require.NoError(t, err)
	m[c] = b
	return c
}

// maliciousSeeder is a libp2p host on loopback that serves blocks over the transfer protocol.
func maliciousSeeder(t *testing.T, blocks blockMap) peer.AddrInfo {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = h.Close() })
	tr := transfer.New(h, blocks)
	require.NoError(t, tr.Start())
	t.Cleanup(func() { _ = tr.Close() })
	return peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}
}

// A DAG whose every block matches its CID but whose sizes lie (a root saying child A holds 10
// bytes while A's subtree holds 20; a root saying a leaf holds 5 bytes when it holds 10) is never
// recorded as complete, nothing lands under the output's name, and the peer that sent the lying
// node is banned.
func TestFetchOfAnInconsistentDAGFailsAndBansItsSender(t *testing.T) {
	for _, tc := range []struct {
		name  string
		build func(blockMap) cid.Cid
	}{
		{"a subtree larger than its parent says", func(m blockMap) cid.Cid {
			a := m.file(t, []cid.Cid{m.raw(t, bytes.Repeat([]byte("A"), 10)), m.raw(t, bytes.Repeat([]byte("a"), 10))}, []uint64{10, 10})
			return m.file(t, []cid.Cid{a, m.raw(t, bytes.Repeat([]byte("B"), 10))}, []uint64{10, 10})
		}},
		{"a leaf longer than its parent says", func(m blockMap) cid.Cid {
			return m.file(t, []cid.Cid{m.raw(t, bytes.Repeat([]byte("A"), 10)), m.raw(t, bytes.Repeat([]byte("B"), 10))}, []uint64{5, 15})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			blamed := map[peer.ID]error{}
			n := repoNode(t, nil, func(o *node.Options) {
				o.Transfer = append(o.Transfer, transfer.WithMisbehaviour(func(p peer.ID, err error) {
					mu.Lock()
					blamed[p] = err
					mu.Unlock()
				}))
			})
			blocks := blockMap{}
			root := tc.build(blocks)
			liar := maliciousSeeder(t, blocks)
			require.NoError(t, n.Host().Connect(t.Context(), liar))

			out := filepath.Join(t.TempDir(), "got")
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			_, err := n.Fetch(ctx, root, node.FetchOptions{Output: out})
			require.ErrorIs(t, err, store.ErrInconsistentDAG)
			require.ErrorIs(t, err, transfer.ErrInvalidDAG)
			_, err = os.Stat(out)
			require.ErrorIs(t, err, os.ErrNotExist, "nothing under the output's name")
			f, ok := n.Store().File(root)
			require.True(t, !ok || f.State != store.Complete, "not recorded as complete")
			mu.Lock()
			defer mu.Unlock()
			require.Contains(t, blamed, liar.ID, "the sender of the lying node is banned")
		})
	}
}

// A leaf that two inner nodes share is written at both places even when the second node arrives
// after the leaf was delivered (the source holds that node back until the first one's leaves are
// written).
func TestALeafLinkedAgainAfterDeliveryIsWrittenAtItsNewPlace(t *testing.T) {
	m := blockMap{}
	z, a, b := bytes.Repeat([]byte("Z"), 10), bytes.Repeat([]byte("A"), 10), bytes.Repeat([]byte("B"), 10)
	zc, ac, bc := m.raw(t, z), m.raw(t, a), m.raw(t, b)
	p1 := m.file(t, []cid.Cid{zc, ac}, []uint64{10, 10})
	p2 := m.file(t, []cid.Cid{bc, zc}, []uint64{10, 10})
	root := m.file(t, []cid.Cid{p1, p2}, []uint64{20, 20})
	want := slices.Concat(z, a, b, z)

	ready := make(chan struct{})
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = h.Close() })
	h.SetStreamHandler(transfer.ID, func(s network.Stream) {
		defer s.Reset()
		var mu sync.Mutex
		send := func(c cid.Cid) {
			mu.Lock()
			defer mu.Unlock()
			_ = wire.WriteBlock(s, c, m[c])
		}
		r := wire.NewReader(s, nil)
		for {
			_ = s.SetReadDeadline(time.Now().Add(20 * time.Second))
			msg, err := r.Read()
			if err != nil {
				return
			}
			for _, c := range msg.CIDs {
				if c.Equals(p2) {
					go func() {
						select {
						case <-ready:
							send(c)
						case <-t.Context().Done():
						}
					}()
					continue
				}
				send(c)
			}
		}
	})
	n := repoNode(t, nil)
	require.NoError(t, n.Host().Connect(t.Context(), peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}))

	out := filepath.Join(t.TempDir(), "got")
	var once sync.Once
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	_, err = n.Fetch(ctx, root, node.FetchOptions{Output: out, Progress: func(p node.FetchProgress) {
		if p.Have >= 20 {
			once.Do(func() { close(ready) })
		}
	}})
	require.NoError(t, err)
	got, err := os.ReadFile(out)
	require.NoError(t, err)
	require.Equal(t, string(want), string(got))
}

// A link planted at OUT.part (where fetches used to write) is not written through, and OUT ends
// a regular file with the fetched bytes; a partial file planted under the name the fetch does
// use is refused, named, and left as it was.
func TestFetchWritesThroughNoPlantedPartialFile(t *testing.T) {
	m := blockMap{}
	a, b := bytes.Repeat([]byte("a"), 100), bytes.Repeat([]byte("b"), 50)
	root := m.file(t, []cid.Cid{m.raw(t, a), m.raw(t, b)}, []uint64{100, 50})
	seeder := maliciousSeeder(t, m) // honest, this time
	n := repoNode(t, nil)
	require.NoError(t, n.Host().Connect(t.Context(), seeder))

	dir := t.TempDir()
	out, victim := filepath.Join(dir, "OUT"), filepath.Join(dir, "victim")
	require.NoError(t, os.WriteFile(victim, []byte("precious"), 0o644))
	require.NoError(t, os.Symlink(victim, out+".part"))
	_, err := n.Fetch(t.Context(), root, node.FetchOptions{Output: out})
	require.NoError(t, err)
	got, err := os.ReadFile(victim)
	require.NoError(t, err)
	require.Equal(t, "precious", string(got))
	st, err := os.Lstat(out)
	require.NoError(t, err)
	require.True(t, st.Mode().IsRegular(), "OUT is the fetched file, not a link")
	got, err = os.ReadFile(out)
	require.NoError(t, err)
	require.Equal(t, string(a)+string(b), string(got))

	other := filepath.Join(dir, "OTHER")
	part := store.PartPath(other, root)
	require.NoError(t, os.Symlink(victim, part))
	_, err = n.Fetch(t.Context(), root, node.FetchOptions{Output: other})
	require.ErrorIs(t, err, store.ErrUnknownPart)
	require.ErrorContains(t, err, part)
	got, err = os.ReadFile(victim)
	require.NoError(t, err)
	require.Equal(t, "precious", string(got))
}
