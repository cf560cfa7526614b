package node_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"peer/internal/config"
	"peer/node"
	"peer/store"
	"peer/transfer"
)

// offeredBy lists the CIDs n's catalog says p offers under names containing term.
func offeredBy(n *node.Node, p *node.Node, term string) []string {
	var out []string
	for _, o := range n.Search(term) {
		for _, id := range o.Providers {
			if id == p.ID().String() {
				out = append(out, o.CID)
			}
		}
	}
	return out
}

// A shared file that is edited or deleted is withdrawn: other nodes' catalogs drop it, and the
// node no longer provides it on the DHT.
func TestChangedOrDeletedSharedFileIsWithdrawn(t *testing.T) {
	a := repoNode(t, nil, func(o *node.Options) { o.FileCheck = 20 * time.Millisecond })
	b := repoNode(t, a)
	edited, _ := writeFile(t, 2<<20+5, 21)
	deleted, _ := writeFile(t, 3000, 22)
	fe, err := a.Share(t.Context(), edited, node.ShareOptions{})
	require.NoError(t, err)
	fd, err := a.Share(t.Context(), deleted, node.ShareOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return len(offeredBy(b, a, "data")) == 2 }, 10*time.Second, 10*time.Millisecond)
	require.Equal(t, 2, a.Discovery().Stats().Roots)

	require.NoError(t, os.WriteFile(edited, []byte("edited"), 0o644))
	require.Eventually(t, func() bool {
		got := offeredBy(b, a, "data")
		return len(got) == 1 && got[0] == fd.CID
	}, 10*time.Second, 10*time.Millisecond, "the edited file is withdrawn from the other catalog")
	require.Equal(t, 1, a.Discovery().Stats().Roots, "and no longer provided")
	require.Eventually(t, func() bool {
		f, _ := a.Store().File(fe.Root)
		return f.State == store.Changed && !f.Shared
	}, 5*time.Second, 10*time.Millisecond, "recorded as changed, then as no longer shared")

	// A node that joins now learns, by catalog exchange, only what is still shared.
	c := repoNode(t, a)
	require.Eventually(t, func() bool { return len(offeredBy(c, a, "data")) > 0 }, 10*time.Second, 10*time.Millisecond)
	require.Equal(t, []string{fd.CID}, offeredBy(c, a, "data"))

	require.NoError(t, os.Remove(deleted))
	for _, n := range []*node.Node{b, c} {
		require.Eventually(t, func() bool { return len(offeredBy(n, a, "data")) == 0 }, 10*time.Second, 10*time.Millisecond,
			"the deleted file is withdrawn")
	}
	require.Eventually(t, func() bool { return a.Discovery().Stats().Roots == 0 }, 5*time.Second, 10*time.Millisecond)
}

// Sharing a path again after its file changed replaces the old entry: the old root is withdrawn
// and forgotten, and other nodes' catalogs show the new one only, even before any check noticed
// the change. So does sharing with --copy, whose old copy is still whole.
func TestSharingAChangedFileAgainReplacesTheOldEntry(t *testing.T) {
	for _, copyIn := range []bool{false, true} {
		t.Run(map[bool]string{false: "in place", true: "copy"}[copyIn], func(t *testing.T) {
			a := repoNode(t, nil, func(o *node.Options) { o.FileCheck = time.Hour })
			b := repoNode(t, a)
			path, _ := writeFile(t, 2<<20+9, 23)
			old, err := a.Share(t.Context(), path, node.ShareOptions{Copy: copyIn})
			require.NoError(t, err)
			require.Eventually(t, func() bool { return len(offeredBy(b, a, "data")) == 1 }, 10*time.Second, 10*time.Millisecond)

			require.NoError(t, os.WriteFile(path, []byte("the second version"), 0o644))
			cur, err := a.Share(t.Context(), path, node.ShareOptions{Copy: copyIn})
			require.NoError(t, err)
			require.NotEqual(t, old.CID, cur.CID)
			require.Eventually(t, func() bool {
				got := offeredBy(b, a, "data")
				return len(got) == 1 && got[0] == cur.CID
			}, 10*time.Second, 10*time.Millisecond, "one entry, the current one")
			files := a.Store().Files()
			require.Len(t, files, 1)
			require.Equal(t, cur.CID, files[0].CID)
			require.Equal(t, 1, a.Discovery().Stats().Roots)
		})
	}
}

// A removed file is no longer served, although its blocks stay on disk until gc: a fetch from
// the node that removed it finds no provider.
func TestRemovedFileIsNotServedBeforeGC(t *testing.T) {
	a := repoNode(t, nil)
	b := repoNode(t, a)
	path, _ := writeFile(t, 2<<20+3, 24)
	f, err := a.Share(t.Context(), path, node.ShareOptions{Copy: true})
	require.NoError(t, err)
	require.NoError(t, a.Remove(t.Context(), f.Root))
	require.Zero(t, a.Discovery().Stats().Roots)
	require.True(t, a.Store().HasBlock(t.Context(), f.Root), "the blocks wait for gc")

	_, err = b.Fetch(t.Context(), f.Root, node.FetchOptions{Output: filepath.Join(t.TempDir(), "got"), Timeout: 2 * time.Second})
	require.ErrorIs(t, err, transfer.ErrNoProviders)
}

// A file shared and then removed while no daemon ran (an offline `peer rm`) is withdrawn when the
// node starts again: the log says the network was never told.
func TestFileRemovedOfflineIsWithdrawnAtNextStart(t *testing.T) {
	b := repoNode(t, nil)
	dir := t.TempDir()
	_, err := store.Init(dir)
	require.NoError(t, err)
	st, err := store.Open(dir)
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	key, err := store.ReadIdentity(dir)
	require.NoError(t, err)
	start := func() *node.Node {
		cfg := config.Default()
		cfg.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
		cfg.API = ""
		cfg.Network = "test"
		cfg.Bootstrap = []string{b.Addrs()[0].String()}
		n, err := node.New(node.Options{Config: cfg, Key: key, Store: st})
		require.NoError(t, err)
		require.NoError(t, n.Start(t.Context()))
		return n
	}
	a := start()
	path, _ := writeFile(t, 5000, 25)
	f, err := a.Share(t.Context(), path, node.ShareOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return len(offeredBy(b, a, "data")) == 1 }, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, a.Close())

	require.NoError(t, st.Remove(f.Root)) // what `peer rm` does with no daemon running
	a = start()
	defer a.Close()
	require.Eventually(t, func() bool { return len(offeredBy(b, a, "data")) == 0 }, 10*time.Second, 10*time.Millisecond,
		"withdrawn once the node is back")
	// Told once: the next start has nothing to withdraw.
	require.Eventually(t, func() bool {
		n := 0
		_ = st.Events(0, func(e store.Event) error {
			if e.Type == store.Unshared && e.Root == f.CID {
				n++
			}
			return nil
		})
		return n == 1
	}, 5*time.Second, 10*time.Millisecond)
}
