package store

import (
	"container/heap"
	"time"
)

// The network catalog is bounded: at most CatalogMax entries (one per root and provider), at
// most CatalogPerProvider of one provider, none older than CatalogKeep. Past a bound the entry
// heard longest ago goes; "ago" is measured by the time the node recorded the announcement
// (the event's Time, its own clock, not the announcer's claim) against the time of the event
// being applied, never the wall clock, so that replaying the log gives exactly the live state.
const (
	CatalogMax         = 10_000
	CatalogPerProvider = 1_000
	CatalogKeep        = 7 * 24 * time.Hour
)

// catalogBounds orders the catalog's entries for eviction. It is derived from index.Catalog
// alone (built on first use, after a snapshot is loaded or from an empty index), and ordered by
// (time, root, provider), a total order, so the entry evicted never depends on the order the
// entries came in.
type catalogBounds struct {
	entries map[catKey]*catEntry
	byPeer  map[string]*peerHeap // each provider's entries, oldest first
	oldest  catHeap
}

type catKey struct{ root, peer string }

type catEntry struct {
	catKey
	t    time.Time
	idx  int // in catalogBounds.oldest
	pidx int // in its provider's peerHeap
}

type catHeap []*catEntry

func (h catHeap) Len() int           { return len(h) }
func (h catHeap) Less(i, j int) bool { return h[i].before(h[j]) }
func (h catHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx, h[j].idx = i, j
}
func (h *catHeap) Push(x any) {
	e := x.(*catEntry)
	e.idx = len(*h)
	*h = append(*h, e)
}
func (h *catHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return e
}

// peerHeap is catHeap for the entries of one provider.
type peerHeap []*catEntry

func (h peerHeap) Len() int           { return len(h) }
func (h peerHeap) Less(i, j int) bool { return h[i].before(h[j]) }
func (h peerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].pidx, h[j].pidx = i, j
}
func (h *peerHeap) Push(x any) {
	e := x.(*catEntry)
	e.pidx = len(*h)
	*h = append(*h, e)
}
func (h *peerHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return e
}

func (e *catEntry) before(o *catEntry) bool {
	if !e.t.Equal(o.t) {
		return e.t.Before(o.t)
	}
	if e.root != o.root {
		return e.root < o.root
	}
	return e.peer < o.peer
}

// bounds returns the catalog's eviction order, building it if needed.
func (ix *index) bounds() *catalogBounds {
	if ix.cat != nil {
		return ix.cat
	}
	b := &catalogBounds{entries: map[catKey]*catEntry{}, byPeer: map[string]*peerHeap{}}
	for root, o := range ix.Catalog {
		for p, t := range o.Providers {
			b.put(root, p, t)
		}
	}
	ix.cat = b
	return b
}

// put records that p announced root at t, as the catalog now says.
func (b *catalogBounds) put(root, p string, t time.Time) {
	k := catKey{root, p}
	if e := b.entries[k]; e != nil {
		e.t = t
		heap.Fix(&b.oldest, e.idx)
		heap.Fix(b.byPeer[p], e.pidx)
		return
	}
	e := &catEntry{catKey: k, t: t}
	b.entries[k] = e
	if b.byPeer[p] == nil {
		b.byPeer[p] = &peerHeap{}
	}
	heap.Push(b.byPeer[p], e)
	heap.Push(&b.oldest, e)
}

// drop forgets the entry of root and p, if there is one.
func (b *catalogBounds) drop(root, p string) {
	k := catKey{root, p}
	e := b.entries[k]
	if e == nil {
		return
	}
	delete(b.entries, k)
	heap.Remove(b.byPeer[p], e.pidx)
	if b.byPeer[p].Len() == 0 {
		delete(b.byPeer, p)
	}
	heap.Remove(&b.oldest, e.idx)
}

// catalogSeen folds an AnnouncementSeen into the catalog and enforces the bounds.
func (ix *index) catalogSeen(e Event) {
	o := ix.Catalog[e.Root]
	if o == nil {
		o = &offer{Providers: map[string]time.Time{}}
		ix.Catalog[e.Root] = o
	}
	o.Name, o.Size, o.Dir, o.Files = e.Name, e.Size, e.Dir, e.Files
	o.Providers[e.Peer] = e.Time
	b := ix.bounds()
	b.put(e.Root, e.Peer, e.Time)
	if mine := *b.byPeer[e.Peer]; len(mine) > CatalogPerProvider {
		ix.evict(mine[0].root, mine[0].peer)
	}
	for len(b.entries) > CatalogMax {
		first := b.oldest[0]
		ix.evict(first.root, first.peer)
	}
}

// catalogGone folds an AnnouncementWithdrawn into the catalog.
func (ix *index) catalogGone(e Event) {
	if ix.Catalog[e.Root] != nil {
		ix.evict(e.Root, e.Peer)
	}
}

// catalogExpire drops the entries heard more than CatalogKeep before now, the time of the event
// being applied.
func (ix *index) catalogExpire(now time.Time) {
	if len(ix.Catalog) == 0 {
		return
	}
	b := ix.bounds()
	cutoff := now.Add(-CatalogKeep)
	for len(b.oldest) > 0 && b.oldest[0].t.Before(cutoff) {
		first := b.oldest[0]
		ix.evict(first.root, first.peer)
	}
}

// evict removes p from the providers of root, and root from the catalog once none is left.
func (ix *index) evict(root, p string) {
	if o := ix.Catalog[root]; o != nil {
		delete(o.Providers, p)
		if len(o.Providers) == 0 {
			delete(ix.Catalog, root)
		}
	}
	ix.bounds().drop(root, p)
}
