package store_test

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
	"github.com/stretchr/testify/require"

	"peer/store"
)

func rootOf(t *testing.T, s string) string {
	sum := sha256.Sum256([]byte(s))
	m, err := mh.Encode(sum[:], mh.SHA2_256)
	require.NoError(t, err)
	return cid.NewCidV1(cid.Raw, m).String()
}

// forever is a search's age limit that keeps every announcement, whatever the clock says.
const forever = 100 * 365 * 24 * time.Hour

// byProvider counts the catalog's entries by provider, over every root.
func byProvider(s *store.Store) (map[string]int, int) {
	m, n := map[string]int{}, 0
	for _, o := range s.Search("", forever) {
		for _, p := range o.Providers {
			m[p]++
			n++
		}
	}
	return m, n
}

// TestCatalogBounded: a flood of announcements keeps the catalog within its bounds (in all, per
// provider, in age), evicting by the time each was recorded; the snapshot stays as small as the
// bound; and replaying the log, from scratch or from the snapshot, gives exactly the live state.
func TestCatalogBounded(t *testing.T) {
	dir := newRepo(t)
	s := open(t, dir)
	t0 := time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)
	at := 0
	seen := func(peer string, n int) {
		for i := 0; i < n; i += 1000 {
			var evs []store.Event
			for j := i; j < min(n, i+1000); j++ {
				at++
				evs = append(evs, store.Event{Type: store.AnnounceSeen, Time: t0.Add(time.Duration(at) * time.Millisecond),
					Root: rootOf(t, fmt.Sprint(peer, j)), Name: fmt.Sprintf("file-%d.bin", j), Size: 1 << 20, Peer: peer})
			}
			require.NoError(t, s.Record(evs...))
		}
	}
	seen("first", 100)    // the oldest: evicted when the catalog is full
	seen("flood", 20_000) // one provider: only its latest are kept
	for i := range 9 {
		seen(fmt.Sprint("p", i), store.CatalogPerProvider)
	}
	counts, total := byProvider(s)
	require.Equal(t, store.CatalogMax, total)
	require.Equal(t, store.CatalogPerProvider, counts["flood"])
	require.Zero(t, counts["first"], "received first, evicted first")
	require.Equal(t, store.CatalogPerProvider, counts["p8"])
	// What is kept of the flood is what was heard last. (Searched with no age limit: the events
	// are dated from an hour before the test began, so a limit of an hour measured from the
	// clock would drop them once recording took longer than their 20 s spread.)
	require.NotEmpty(t, s.Search(rootOf(t, "flood19999"), forever))
	require.Empty(t, s.Search(rootOf(t, "flood18999"), forever))

	_, same, err := s.Replayed()
	require.NoError(t, err)
	require.True(t, same, "replay from scratch differs from the live catalog")

	// An announcement heard more than CatalogKeep after the others expires them all.
	late := t0.Add(time.Duration(at)*time.Millisecond + store.CatalogKeep + time.Minute)
	require.NoError(t, s.Record(store.Event{Type: store.AnnounceSeen, Time: late, Root: rootOf(t, "late"), Name: "late.bin", Size: 1, Peer: "p0"}))
	counts, total = byProvider(s)
	require.Equal(t, 1, total)
	require.Equal(t, 1, counts["p0"])
	_, same, err = s.Replayed()
	require.NoError(t, err)
	require.True(t, same)

	// Reopened from the snapshot (written as the log grew) and the tail of the log.
	before, err := os.ReadFile(filepath.Join(dir, "snapshot.json"))
	require.NoError(t, err)
	t.Logf("snapshot: %d bytes", len(before))
	require.Less(t, len(before), 3<<20, "the snapshot grew with the flood")
	want := s.Search("", forever)
	require.NoError(t, s.Close())
	s = open(t, dir)
	require.Equal(t, want, s.Search("", forever))
	_, same, err = s.Replayed()
	require.NoError(t, err)
	require.True(t, same)
}
