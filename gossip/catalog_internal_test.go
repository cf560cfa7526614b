package gossip

import (
	"crypto/sha256"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"
	"github.com/stretchr/testify/require"
)

func testCID(t *testing.T, s string) cid.Cid {
	sum := sha256.Sum256([]byte(s))
	m, err := mh.Encode(sum[:], mh.SHA2_256)
	require.NoError(t, err)
	return cid.NewCidV1(cid.Raw, m)
}

func TestCatalogKeepsLatest(t *testing.T) {
	c := newCatalog(3)
	t0 := time.UnixMilli(1_700_000_000_000)
	a := Announcement{Root: testCID(t, "a"), Name: "a", Time: t0, Provider: peer.ID("p1")}
	require.True(t, c.offer(a, []byte("a0")))
	require.False(t, c.offer(a, []byte("a0 again")), "same time: a duplicate")

	older := a
	older.Time = t0.Add(-time.Second)
	require.False(t, c.offer(older, []byte("older")))

	w := a
	w.Withdraw = true
	require.True(t, c.offer(w, []byte("withdraw")), "a withdrawal wins a tie")
	require.False(t, c.offer(a, []byte("a0")), "and stays")

	other := a
	other.Provider = peer.ID("p2")
	require.True(t, c.offer(other, []byte("p2")), "another provider of the same root")
	require.ElementsMatch(t, [][]byte{[]byte("withdraw"), []byte("p2")}, c.snapshot(10))

	// Past the limit, the oldest goes.
	b := Announcement{Root: testCID(t, "b"), Name: "b", Time: t0.Add(time.Hour), Provider: peer.ID("p1")}
	d := Announcement{Root: testCID(t, "d"), Name: "d", Time: t0.Add(2 * time.Hour), Provider: peer.ID("p1")}
	require.True(t, c.offer(b, []byte("b")))
	require.True(t, c.offer(d, []byte("d")))
	require.Len(t, c.snapshot(10), 3)
	require.Len(t, c.snapshot(2), 2)

	require.True(t, newCatalog(0).offer(a, nil), "a catalog of size 0 keeps nothing but still reports news")
}

func TestServeGate(t *testing.T) {
	g := newServeGate(2, time.Minute)
	t0 := time.Unix(1000, 0)
	require.True(t, g.admit("a", t0))
	require.False(t, g.admit("a", t0.Add(time.Second)), "the same peer again too soon")
	require.True(t, g.admit("b", t0))
	require.False(t, g.admit("c", t0), "two already being served")
	g.done()
	require.True(t, g.admit("c", t0))
	g.done()
	g.done()
	require.True(t, g.admit("a", t0.Add(time.Minute)), "after the interval")
}
