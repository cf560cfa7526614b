package node_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"peer/node"
	"peer/store"
)

// folderOffer is the offer n's catalog holds for root, if any.
func folderOffer(n *node.Node, root string) (store.Offer, bool) {
	for _, o := range n.Search(root) {
		if o.CID == root {
			return o, true
		}
	}
	return store.Offer{}, false
}

// A folder shared in place is announced as a folder with its file count, live and by catalog
// exchange, with the root peer add gives it. A file of it that changes withdraws the whole
// folder; sharing the folder again replaces the old entry with the new root.
func TestSharedFolderAnnouncedWithdrawnAndReplaced(t *testing.T) {
	a := repoNode(t, nil, func(o *node.Options) { o.FileCheck = 20 * time.Millisecond })
	b := repoNode(t, a)
	src := filepath.Join(t.TempDir(), "album")
	for name, data := range map[string]string{"one.txt": "1", "sub/two.txt": "22", "sub/three.txt": "333", ".hidden": "h"} {
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(src, name)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(src, name), []byte(data), 0o644))
	}
	want, err := store.HashTree(t.Context(), src, store.AddOptions{})
	require.NoError(t, err)

	f, err := a.Share(t.Context(), src, node.ShareOptions{})
	require.NoError(t, err)
	require.Equal(t, want.Root, f.Root, "the root peer add gives")
	require.True(t, f.Dir)
	require.Equal(t, src, f.Path)
	require.True(t, f.Shared)
	require.Eventually(t, func() bool { _, ok := folderOffer(b, f.CID); return ok }, 10*time.Second, 10*time.Millisecond)
	o, _ := folderOffer(b, f.CID)
	require.Equal(t, "album", o.Name)
	require.True(t, o.Dir)
	require.Equal(t, uint64(3), o.Files)
	require.Equal(t, uint64(6), o.Size)

	c := repoNode(t, a)
	require.Eventually(t, func() bool { _, ok := folderOffer(c, f.CID); return ok }, 10*time.Second, 10*time.Millisecond)
	o, _ = folderOffer(c, f.CID)
	require.True(t, o.Dir, "the catalog exchange carries the folder fields")
	require.Equal(t, uint64(3), o.Files)

	// A file of the folder changes: the folder is withdrawn and no longer provided.
	require.Eventually(t, func() bool {
		require.NoError(t, os.WriteFile(filepath.Join(src, "sub", "two.txt"), []byte("2!"), 0o644))
		got, _ := a.Store().File(f.Root)
		return got.State == store.Changed && !got.Shared
	}, 10*time.Second, 10*time.Millisecond)
	for _, n := range []*node.Node{b, c} {
		require.Eventually(t, func() bool { _, ok := folderOffer(n, f.CID); return !ok }, 10*time.Second, 10*time.Millisecond)
	}
	require.Eventually(t, func() bool { return a.Discovery().Stats().Roots == 0 }, 5*time.Second, 10*time.Millisecond)

	// Shared again, the new version replaces the old entry.
	f2, err := a.Share(t.Context(), src, node.ShareOptions{})
	require.NoError(t, err)
	require.NotEqual(t, f.CID, f2.CID)
	_, held := a.Store().File(f.Root)
	require.False(t, held, "the old version is forgotten")
	require.Eventually(t, func() bool { _, ok := folderOffer(b, f2.CID); return ok }, 10*time.Second, 10*time.Millisecond)
	require.Equal(t, 1, a.Discovery().Stats().Roots)
}
