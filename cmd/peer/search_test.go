package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"peer/store"
)

// With no daemon running, search reads the catalog from the repo's event log: what the node heard
// while it ran.
func TestSearchWithoutADaemon(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	initRepo(t, a)
	initRepo(t, b)
	startDaemonProcess(t, a, "--network", "offline-search")
	bd, _, _ := startDaemonProcess(t, b, "--network", "offline-search", "--bootstrap", daemonAddr(t, a))

	src := filepath.Join(t.TempDir(), "holiday.jpg")
	writeRandom(t, src, 70_000, 9)
	out, errOut, code := peerCmd(t, a, "share", src)
	require.Zero(t, code, errOut)
	root := strings.TrimSpace(out)
	require.Eventually(t, func() bool {
		out, _, code := peerCmd(t, b, "search", "holiday", "--json")
		return code == 0 && strings.Contains(out, root)
	}, 20*time.Second, 50*time.Millisecond, "the announcement reaches b")
	stopDaemon(t, bd)

	out, errOut, code = peerCmd(t, b, "search", "holiday", "--json")
	require.Zero(t, code, errOut)
	var offers []store.Offer
	require.NoError(t, json.Unmarshal([]byte(out), &offers))
	require.Len(t, offers, 1)
	require.Equal(t, root, offers[0].CID)
	out, errOut, code = peerCmd(t, b, "search", "holiday")
	require.Zero(t, code, errOut)
	require.Contains(t, out, "holiday.jpg")
	_, errOut, code = peerCmd(t, b, "search", "nothing-like-it")
	require.Zero(t, code, errOut)
	require.Contains(t, errOut, "nothing announced matches")
}
