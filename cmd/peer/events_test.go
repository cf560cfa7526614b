package main

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"peer/node"
	"peer/store"
)

// TestEventsTextNamesTransfers: in `peer events`, every event of a daemon transfer names the
// transfer, and a queued fetch of a path into a folder shows the path after the root.
func TestEventsTextNamesTransfers(t *testing.T) {
	const root = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"
	at := time.Date(2026, 12, 2, 1, 2, 3, 0, time.Local)
	for _, tc := range []struct {
		ev   store.Event
		want string
	}{
		{store.Event{Seq: 7, Time: at, Type: store.FetchQueued, Root: root, Transfer: "0a1b2c3d", Name: "b.iso", Path: "/tmp/b.iso"},
			"     7  2026-12-02 01:02:03  FetchQueued            " + root + "  transfer 0a1b2c3d  b.iso  /tmp/b.iso\n"},
		{store.Event{Seq: 8, Time: at, Type: store.FetchQueued, Root: root, Sub: "disc 1/02.flac", Transfer: "0a1b2c3e", Name: "02.flac"},
			"     8  2026-12-02 01:02:03  FetchQueued            " + root + "/disc 1/02.flac  transfer 0a1b2c3e  02.flac\n"},
		{store.Event{Seq: 9, Time: at, Type: store.FetchFailed, Root: root, Transfer: "0a1b2c3d", Error: "no providers"},
			"     9  2026-12-02 01:02:03  FetchFailed            " + root + "  transfer 0a1b2c3d  (no providers)\n"},
		{store.Event{Seq: 10, Time: at, Type: store.FetchCompleted, Root: root, Name: "b.iso"},
			"    10  2026-12-02 01:02:03  FetchCompleted         " + root + "  b.iso\n"},
	} {
		var b bytes.Buffer
		require.NoError(t, printEvent(&b, node.APIEvent(tc.ev), false))
		require.Equal(t, tc.want, b.String())
	}
	for _, typ := range []store.EventType{store.FetchQueued, store.FetchStarted, store.FetchPaused, store.FetchResumed,
		store.FetchCompleted, store.FetchFailed, store.FetchCanceled, store.FetchPromoted} {
		var b bytes.Buffer
		require.NoError(t, printEvent(&b, node.APIEvent(store.Event{Seq: 1, Time: at, Type: typ, Root: root, Transfer: "0a1b2c3d"}), false))
		require.Contains(t, b.String(), root+"  transfer 0a1b2c3d", "%s", typ)
	}
}
