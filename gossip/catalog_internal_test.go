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

// clock returns a function that gives a later time at each call.
func clock() func() time.Time {
	t := time.UnixMilli(1_800_000_000_000)
	return func() time.Time { t = t.Add(time.Millisecond); return t }
}

func TestCatalogKeepsLatest(t *testing.T) {
	tick := clock()
	c := newCatalog(3)
	t0 := time.UnixMilli(1_700_000_000_000)
	a := Announcement{Root: testCID(t, "a"), Name: "a", Time: t0, Provider: peer.ID("p1")}
	require.True(t, c.offer(a, []byte("a0"), tick()))
	require.False(t, c.offer(a, []byte("a0 again"), tick()), "same time: a duplicate")

	older := a
	older.Time = t0.Add(-time.Second)
	require.False(t, c.offer(older, []byte("older"), tick()))

	w := a
	w.Withdraw = true
	require.True(t, c.offer(w, []byte("withdraw"), tick()), "a withdrawal wins a tie")
	require.False(t, c.offer(a, []byte("a0"), tick()), "and stays")

	other := a
	other.Provider = peer.ID("p2")
	require.True(t, c.offer(other, []byte("p2"), tick()), "another provider of the same root")
	require.ElementsMatch(t, [][]byte{[]byte("withdraw"), []byte("p2")}, c.snapshot(10, 10, map[peer.ID]int{}))

	// Past the limit, the oldest goes.
	b := Announcement{Root: testCID(t, "b"), Name: "b", Time: t0.Add(time.Hour), Provider: peer.ID("p1")}
	d := Announcement{Root: testCID(t, "d"), Name: "d", Time: t0.Add(2 * time.Hour), Provider: peer.ID("p1")}
	require.True(t, c.offer(b, []byte("b"), tick()))
	require.True(t, c.offer(d, []byte("d"), tick()))
	require.Len(t, c.snapshot(10, 10, map[peer.ID]int{}), 3)
	require.Len(t, c.snapshot(2, 10, map[peer.ID]int{}), 2)

	require.True(t, newCatalog(0).offer(a, nil, tick()), "a catalog of size 0 keeps nothing but still reports news")
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

// TestCatalogEvictsByReceiveTime: past its limit the catalog holds the
// entries received last, whatever time their senders claim (an attacker
// claims the newest), and an entry refreshed by a newer announcement counts
// as received anew.
func TestCatalogEvictsByReceiveTime(t *testing.T) {
	const limit, n = 50, 500
	tick := clock()
	c := newCatalog(limit)
	t0 := time.UnixMilli(1_700_000_000_000)
	claims := rand.New(rand.NewPCG(1, 2)).Perm(n)
	at := func(i int) Announcement {
		return Announcement{Root: testCID(t, fmt.Sprint(i)), Name: "f", Time: t0.Add(time.Duration(claims[i]) * time.Second), Provider: peer.ID(fmt.Sprint("p", i%20))}
	}
	first := at(0)
	require.True(t, c.offer(first, []byte("0"), tick()))
	for i := 1; i < n; i++ {
		c.offer(at(i), fmt.Append(nil, i), tick())
		if i%50 == 0 { // the first root, announced again
			first.Time = first.Time.Add(time.Second)
			require.True(t, c.offer(first, []byte("0"), tick()))
		}
	}
	got := map[string]bool{}
	for _, m := range c.snapshot(limit, limit, map[peer.ID]int{}) {
		got[string(m)] = true
	}
	require.Len(t, got, limit)
	require.True(t, got["0"], "the refreshed entry stays")
	for i := n - limit + 1; i < n; i++ {
		require.True(t, got[fmt.Sprint(i)], "entry %d is among the last received", i)
	}
}

// TestCatalogPerAuthor: one provider holds at most its share of the cache,
// losing its own oldest entries, and a reply takes at most perAuthor of one.
func TestCatalogPerAuthor(t *testing.T) {
	tick := clock()
	c := newCatalog(20_000)
	require.Equal(t, 2000, c.perAuthor)
	t0 := time.UnixMilli(1_700_000_000_000)
	other := Announcement{Root: testCID(t, "other"), Name: "o", Time: t0, Provider: peer.ID("honest")}
	require.True(t, c.offer(other, []byte("other"), tick()))
	for i := range 5000 {
		a := Announcement{Root: testCID(t, fmt.Sprint(i)), Name: "f", Time: t0, Provider: peer.ID("flood")}
		require.True(t, c.offer(a, fmt.Append(nil, i), tick()))
	}
	require.Len(t, c.m, 2001)
	require.Len(t, c.byAuthor["flood"], 2000)
	require.Len(t, c.oldest, 2001)
	got := c.snapshot(10_000, replyPerAuthor, map[peer.ID]int{})
	require.Len(t, got, replyPerAuthor+1)
	require.Contains(t, got, []byte("other"))
	require.Contains(t, got, []byte("4999"), "the newest of the flood")
	require.NotContains(t, got, []byte("2999"), "evicted")
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
	tick := clock()
	b.ReportAllocs()
	for b.Loop() {
		a := roots[i%len(roots)]
		a.Time = t0.Add(time.Duration(i) * time.Millisecond)
		c.offer(a, nil, tick())
		i++
	}
}
