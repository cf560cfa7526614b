package node_test

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"peer/node/api"
	"peer/store"
)

// TestAPIAddPathLsCatPath: the daemon imports a folder by path, lists it and reads a file of it
// by path; bad requests are refused with the status that says why.
func TestAPIAddPathLsCatPath(t *testing.T) {
	_, c := startDaemon(t)
	ctx := t.Context()
	src := filepath.Join(t.TempDir(), "docs")
	require.NoError(t, os.MkdirAll(filepath.Join(src, "sub"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(src, "sub", "readme.md"), []byte("# readme"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(src, ".secret"), []byte("x"), 0o644))

	f, err := c.AddPath(ctx, api.AddPathRequest{Path: src})
	require.NoError(t, err)
	want, err := store.HashTree(ctx, src, store.AddOptions{})
	require.NoError(t, err)
	require.Equal(t, want.Root, f.Root)
	require.True(t, f.Dir)
	require.Equal(t, uint64(1), f.Files)
	withHidden, err := c.AddPath(ctx, api.AddPathRequest{Path: src, Hidden: true})
	require.NoError(t, err)
	require.Equal(t, uint64(2), withHidden.Files)

	es, err := c.LsDir(ctx, "/ipfs/"+f.CID)
	require.NoError(t, err)
	require.Len(t, es, 1)
	require.Equal(t, api.Entry{Name: "sub", CID: es[0].CID, Kind: "dir"}, es[0])

	rc, err := c.CatPath(ctx, f.Root, []string{"sub", "readme.md"})
	require.NoError(t, err)
	got, err := io.ReadAll(rc)
	require.NoError(t, rc.Close())
	require.NoError(t, err)
	require.Equal(t, "# readme", string(got))

	_, err = c.AddPath(ctx, api.AddPathRequest{Path: "relative/dir"})
	require.ErrorContains(t, err, "must be absolute")
	_, err = c.LsDir(ctx, f.CID+"/absent")
	require.ErrorContains(t, err, "no such entry")
	_, err = c.LsDir(ctx, f.CID+"/../x")
	require.ErrorContains(t, err, `".." is not allowed`)
	rc, err = c.CatPath(ctx, f.Root, []string{"sub"})
	if err == nil {
		rc.Close()
	}
	require.ErrorContains(t, err, "not a file")
}
