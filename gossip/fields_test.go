package gossip_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"peer/gossip"
)

// TestFolderFields round-trips the folder fields, next to a field no node knows yet: validation
// accepts it and decoding keeps it, so newer fields pass older nodes.
func TestFolderFields(t *testing.T) {
	a := gossip.Announcement{Root: sha256CID(t, 1, 0x70, "album"), Name: "album", Size: 1 << 20, Time: time.UnixMilli(time.Now().UnixMilli())}
	a.Fields = gossip.FolderFields(120)
	a.Fields["x.future-field"] = "anything"
	require.NoError(t, a.Validate(time.Now(), time.Minute))
	b, err := a.MarshalBinary()
	require.NoError(t, err)
	var got gossip.Announcement
	require.NoError(t, got.UnmarshalBinary(b))
	require.NoError(t, got.Validate(time.Now(), time.Minute))
	dir, files := got.Folder()
	require.True(t, dir)
	require.Equal(t, uint64(120), files)
	require.Equal(t, "anything", got.Fields["x.future-field"])

	for _, tc := range []struct {
		fields map[string]string
		dir    bool
		files  uint64
	}{
		{nil, false, 0},
		{map[string]string{"dir": "0", "files": "3"}, false, 0},
		{map[string]string{"dir": "1"}, true, 0},
		{map[string]string{"dir": "1", "files": "-4"}, true, 0},
		{map[string]string{"dir": "1", "files": "99999999999999999"}, true, 99999999999999999},
	} {
		dir, files := gossip.Announcement{Fields: tc.fields}.Folder()
		require.Equal(t, tc.dir, dir, tc.fields)
		require.Equal(t, tc.files, files, tc.fields)
	}
}
