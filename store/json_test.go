package store_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"peer/store"
)

const emptyCID = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"

// The JSON people and scripts read keeps zero values, names the CID "cid", and writes times as
// RFC 3339; it reads back to the same value, and older integer times still read.
func TestFileJSONKeepsZerosAndWritesTimes(t *testing.T) {
	mtime := time.Date(2026, 11, 27, 9, 0, 0, 123456789, time.UTC)
	f := store.File{CID: emptyCID, Name: "a", State: store.Complete, Added: mtime, ModTime: mtime.UnixNano(), Path: "/x"}
	b, err := json.Marshal(f)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	for _, k := range []string{"cid", "name", "size", "state", "path", "mtime", "added", "pinned", "shared", "error", "have"} {
		require.Contains(t, m, k, "zero values are kept: %s", b)
	}
	require.Equal(t, 0.0, m["size"])
	require.Equal(t, false, m["pinned"])
	require.Equal(t, "2026-11-27T09:00:00.123456789Z", m["mtime"])
	var back store.File
	require.NoError(t, json.Unmarshal(b, &back))
	require.Equal(t, f, back)

	owned, err := json.Marshal(store.File{CID: emptyCID})
	require.NoError(t, err)
	require.Contains(t, string(owned), `"mtime":null`)

	var old store.File
	require.NoError(t, json.Unmarshal([]byte(`{"cid":"`+emptyCID+`","mtime":1764234000123456789}`), &old))
	require.Equal(t, int64(1764234000123456789), old.ModTime)
}

func TestEventJSON(t *testing.T) {
	at := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	e := store.Event{Seq: 3, Time: at, Type: store.AnnounceSeen, Root: emptyCID, Name: "x", Peer: "12D3KooW", AnnTime: at.UnixMilli()}
	b, err := json.Marshal(e)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	require.Equal(t, emptyCID, m["cid"])
	require.Equal(t, emptyCID, m["root"], "the documented name stays")
	require.Equal(t, "2026-11-27T09:00:00Z", m["atime"])
	require.Nil(t, m["mtime"])
	require.Contains(t, m, "mtime")
	require.Equal(t, 0.0, m["size"], "zero values are kept")
	require.Equal(t, "", m["path"])
	var back store.Event
	require.NoError(t, json.Unmarshal(b, &back))
	require.Equal(t, e, back)
}

// The log keeps its own encoding: integer times, as older versions wrote and read them.
func TestLogKeepsIntegerTimes(t *testing.T) {
	dir := newRepo(t)
	s, err := store.Open(dir)
	require.NoError(t, err)
	require.NoError(t, s.Record(store.Event{Type: store.FileChanged, Root: emptyCID, ModTime: 1764234000123456789, AnnTime: 1764234000123}))
	var got []store.Event
	require.NoError(t, s.Events(0, func(e store.Event) error { got = append(got, e); return nil }))
	require.NoError(t, s.Close())
	require.Len(t, got, 1)
	require.Equal(t, int64(1764234000123456789), got[0].ModTime)
	require.Equal(t, int64(1764234000123), got[0].AnnTime)
	raw, err := os.ReadFile(filepath.Join(dir, "events.log"))
	require.NoError(t, err)
	require.True(t, strings.Contains(string(raw), `"mtime":1764234000123456789`), "%q", raw)
	require.NotContains(t, string(raw), `"cid"`)
}
