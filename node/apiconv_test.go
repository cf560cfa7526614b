package node_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/stretchr/testify/require"

	"peer/node"
	"peer/node/api"
	"peer/store"
)

// The API's types give, byte for byte, the JSON the store's types gave before the API had types
// of its own (and still give: the CLI's offline --json and the snapshot use them). A field
// renamed, dropped or added on either side fails here, with every field set and with none.
func TestAPITypesKeepTheStoresJSON(t *testing.T) {
	c, err := cid.Decode("bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku")
	require.NoError(t, err)
	when := time.Date(2026, 12, 1, 12, 30, 45, 123456789, time.FixedZone("CET", 3600))
	same := func(t *testing.T, storeValue, apiValue any) {
		t.Helper()
		want, err := json.Marshal(storeValue)
		require.NoError(t, err)
		got, err := json.Marshal(apiValue)
		require.NoError(t, err)
		require.Equal(t, string(want), string(got))
	}

	t.Run("File", func(t *testing.T) {
		full := store.File{Root: c, CID: c.String(), Name: "a.txt", Size: 5, State: store.Partial, Path: "/p/a.txt",
			ModTime: when.UnixNano(), Added: when, Pinned: true, Shared: true, Error: "e", Have: 3, Source: "/s",
			Dir: true, Files: 2, Part: "/p/.a.part"}
		same(t, full, node.APIFile(full))
		same(t, store.File{}, node.APIFile(store.File{}))
		same(t, []store.File{full, {}}, node.APIFiles([]store.File{full, {}}))
		same(t, []store.File{}, node.APIFiles(nil))
		require.Equal(t, c, node.APIFile(full).Root)
	})
	t.Run("Event", func(t *testing.T) {
		full := store.Event{Seq: 7, Time: when, Type: store.FetchQueued, Root: c.String(), Name: "n", Size: 9,
			Path: "/p", Source: "/s", ModTime: when.UnixNano(), Peer: "12D3KooW", AnnTime: when.UnixMilli(),
			Error: "e", Have: 4, Dir: true, Files: 3, Part: "/p.part", Transfer: "t1", Force: true, Limit: 100, Sub: "a/b"}
		same(t, full, node.APIEvent(full))
		same(t, store.Event{}, node.APIEvent(store.Event{}))
	})
	t.Run("Offer", func(t *testing.T) {
		full := store.Offer{CID: c.String(), Name: "n", Size: 1, Providers: []string{"a", "b"}, LastSeen: when, Dir: true, Files: 2}
		same(t, []store.Offer{full, {}}, node.APIOffers([]store.Offer{full, {}}))
		same(t, []store.Offer{}, node.APIOffers(nil))
	})
	t.Run("Entry", func(t *testing.T) {
		full := store.Entry{Name: "n", CID: c.String(), Kind: "file", Size: 3}
		same(t, []store.Entry{full, {}}, node.APIEntries([]store.Entry{full, {}}))
		same(t, []store.Entry{}, node.APIEntries(nil))
	})
	t.Run("GCResult", func(t *testing.T) {
		same(t, store.GCResult{Removed: 1, Bytes: 2, Kept: 3}, node.APIGCResult(store.GCResult{Removed: 1, Bytes: 2, Kept: 3}))
		same(t, store.GCResult{}, node.APIGCResult(store.GCResult{}))
	})
	t.Run("ImportResult", func(t *testing.T) {
		full := store.ImportResult{Version: 2, Blocks: 3, Bytes: 4, New: 1, Roots: []store.ImportedRoot{
			{CID: c.String(), State: store.RootIncomplete, Size: 5, Missing: "bafy"}, {}}}
		same(t, full, node.APIImportResult(full))
		same(t, store.ImportResult{}, node.APIImportResult(store.ImportResult{}))
		require.Len(t, node.APIImportResult(full).Incomplete(), 1)
	})
	t.Run("states", func(t *testing.T) {
		require.Equal(t, []string{store.RootAdded, store.RootHeld, store.RootIncomplete}, []string{api.RootAdded, api.RootHeld, api.RootIncomplete})
		require.Equal(t, []api.FileState{api.FileComplete, api.FilePartial, api.FileChanged},
			[]api.FileState{api.FileState(store.Complete), api.FileState(store.Partial), api.FileState(store.Changed)})
	})
}
