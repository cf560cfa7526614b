package store

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
	"github.com/stretchr/testify/require"
)

func rawBlock(t *testing.T, data string) (cid.Cid, []byte) {
	t.Helper()
	h, err := multihash.Sum([]byte(data), multihash.SHA2_256, -1)
	require.NoError(t, err)
	return cid.NewCidV1(cid.Raw, h), []byte(data)
}

// TestBlockSyncFlushesWhatWasWritten: sync flushes each block file put wrote or found since the
// last sync and the directories that gained entries, then has nothing left; a block removed in
// between (gc) needs nothing; a sync that fails keeps its files for the next.
func TestBlockSyncFlushesWhatWasWritten(t *testing.T) {
	b := newBlocks(filepath.Join(t.TempDir(), "blocks"))
	c1, d1 := rawBlock(t, "one")
	c2, d2 := rawBlock(t, "two")
	require.NoError(t, b.put(c1, d1))
	require.NoError(t, b.put(c2, d2))
	require.NoError(t, b.put(c1, d1), "already there: synced again, not rewritten")
	shard1, p1 := b.path(c1)
	shard2, p2 := b.path(c2)
	require.ElementsMatch(t, []string{p1, p2, p1}, b.pending.files)
	require.True(t, b.pending.dirs[shard1] && b.pending.dirs[shard2] && b.pending.dirs[b.dir], "the shards and their parent")

	require.NoError(t, b.remove(c2))
	require.NoError(t, b.sync(), "a block removed since it was put needs no sync")
	require.Empty(t, b.pending.files)
	require.Empty(t, b.pending.dirs)
	require.NoError(t, b.sync(), "nothing pending")

	// A block that cannot be synced (here a directory stands in its place) fails the sync,
	// which keeps what it had for the next.
	c3, d3 := rawBlock(t, "three")
	require.NoError(t, b.put(c3, d3))
	shard3, p3 := b.path(c3)
	require.NoError(t, os.Remove(p3))
	require.NoError(t, os.Mkdir(p3, 0o700))
	err := b.sync()
	require.ErrorContains(t, err, "syncing blocks")
	require.Equal(t, []string{p3}, b.pending.files)
	require.True(t, b.pending.dirs[shard3])
	require.True(t, b.pending.dirs[b.dir])

	require.NoError(t, os.Remove(p3))
	require.NoError(t, b.sync(), "the next sync retries it")
	require.Empty(t, b.pending.files)
}

// A block a folder import finds in another import's pack that is not synced yet (or in one a
// crash left) is made durable by its own sync: that pack is synced with it.
func TestPackedBlockFoundUnsyncedIsSyncedWithTheImportThatFoundIt(t *testing.T) {
	b := newBlocks(filepath.Join(t.TempDir(), "blocks"))
	c, d := rawBlock(t, "shared")
	w1, w2 := b.newPackWriter(), b.newPackWriter()
	defer w1.close()
	defer w2.close()
	created, err := w1.put(c, d)
	require.NoError(t, err)
	require.True(t, created)
	created, err = w2.put(c, d)
	require.NoError(t, err)
	require.False(t, created, "found in the first import's pack")
	require.Equal(t, []string{w1.pf.path}, b.pending.files, "which the second's sync flushes")
	require.NoError(t, w2.seal())
	require.NoError(t, b.sync())

	require.NoError(t, w1.seal())
	w3 := b.newPackWriter()
	defer w3.close()
	created, err = w3.put(c, d)
	require.NoError(t, err)
	require.False(t, created)
	require.Empty(t, b.pending.files, "a sealed pack needs no sync")
}
