package gossip

import (
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
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

// TestCatalogKeepsTheNewest: past its limit the catalog holds the newest
// entries, whatever order they came in, and an entry refreshed by a newer
// announcement counts as new.
func TestCatalogKeepsTheNewest(t *testing.T) {
	const limit, n = 50, 500
	c := newCatalog(limit)
	t0 := time.UnixMilli(1_700_000_000_000)
	at := func(i int) Announcement {
		return Announcement{Root: testCID(t, fmt.Sprint(i)), Name: "f", Time: t0.Add(time.Duration(i) * time.Second), Provider: peer.ID("p")}
	}
	first := at(0)
	require.True(t, c.offer(first, []byte("0")))
	for k, i := range rand.New(rand.NewPCG(1, 2)).Perm(n - 1) {
		c.offer(at(i+1), fmt.Append(nil, i+1))
		if k%50 == 0 { // the first root, announced again: the newest
			first.Time = t0.Add(time.Duration(n+k) * time.Second)
			require.True(t, c.offer(first, []byte("0")))
		}
	}
	got := map[string]bool{}
	for _, m := range c.snapshot(limit) {
		got[string(m)] = true
	}
	require.Len(t, got, limit)
	require.True(t, got["0"], "the refreshed entry stays")
	for i := n - limit + 1; i < n; i++ {
		require.True(t, got[fmt.Sprint(i)], "entry %d is among the newest", i)
	}
}

// BenchmarkCatalogOfferFull offers new entries to a full catalog of the
// default size, as a catalog reply from a peer does.
func BenchmarkCatalogOfferFull(b *testing.B) {
	const limit = 10000
	c := newCatalog(limit)
	t0 := time.UnixMilli(1_700_000_000_000)
	roots := make([]Announcement, 2*limit)
	for i := range roots {
		sum := sha256.Sum256(fmt.Append(nil, i))
		m, _ := mh.Encode(sum[:], mh.SHA2_256)
		roots[i] = Announcement{Root: cid.NewCidV1(cid.Raw, m), Name: "f", Provider: peer.ID("p")}
	}
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		a := roots[i%len(roots)]
		a.Time = t0.Add(time.Duration(i) * time.Millisecond)
		c.offer(a, nil)
		i++
	}
}
