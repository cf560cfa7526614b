package store

import (
	"path/filepath"
	"testing"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
	"github.com/stretchr/testify/require"

	"peer/store/unixfs"
)

// A folder download on Windows refuses names Windows reserves or cannot hold (CON, nul.txt,
// COM1, a name with ':'), and writes nothing for them; the same names are fine elsewhere.
func TestTreeDownloadRefusesWindowsNamesOnWindows(t *testing.T) {
	leafData := []byte("payload")
	leaf, err := cid.NewPrefixV1(cid.Raw, mh.SHA2_256).Sum(leafData)
	require.NoError(t, err)
	for _, name := range []string{"CON", "nul.txt", "com1.log", "LPT9", "a:b", "aux"} {
		block := unixfs.EncodePB(unixfs.PBNode{
			Links: []unixfs.Link{{Name: name, Cid: leaf, Tsize: uint64(len(leafData))}},
			Data:  unixfs.FSData{Type: unixfs.Directory}.Encode(),
		})
		root, err := cid.NewPrefixV1(cid.DagProtobuf, mh.SHA2_256).Sum(block)
		require.NoError(t, err)
		for _, goos := range []string{"windows", "linux"} {
			dir := t.TempDir()
			_, err := Init(dir)
			require.NoError(t, err)
			s, err := Open(dir)
			require.NoError(t, err)
			out := filepath.Join(t.TempDir(), "got")
			d, err := s.StartTreeDownload(root, "tree", out)
			require.NoError(t, err)
			d.tree.goos = goos
			_, err = d.Expand(root, block)
			if goos == "windows" {
				require.ErrorContains(t, err, "Windows", name)
				require.NoError(t, d.Fail(err))
			} else {
				require.NoError(t, err, name)
				require.NoError(t, d.Deliver(root, block))
				require.NoError(t, d.Deliver(leaf, leafData))
				require.NoError(t, d.Complete())
			}
			require.NoError(t, s.Close())
		}
	}
}
