package discovery

import (
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/peer"
	libp2ptest "github.com/libp2p/go-libp2p/core/test"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/stretchr/testify/require"

	"peer/internal/nettest"
)

// TestMDNSDialsBounded: a LAN host that answers mDNS with many peers, each hanging in its
// handshake, gets only a few connection attempts at a time, and only so many peers in hand: the
// others wait for a dial slot, and those past the bound are skipped.
func TestMDNSDialsBounded(t *testing.T) {
	addr, peak := nettest.HangingListener(t)

	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
	require.NoError(t, err)
	t.Cleanup(func() { _ = h.Close() })
	d, err := New(h, Config{Network: "mdns"})
	require.NoError(t, err)
	require.NoError(t, d.Start(t.Context()))
	for range maxMDNSPending + 20 {
		id, err := libp2ptest.RandPeerID()
		require.NoError(t, err)
		notifee{d}.HandlePeerFound(peer.AddrInfo{ID: id, Addrs: []ma.Multiaddr{addr}})
	}
	require.Eventually(t, func() bool { return peak() >= maxMDNSDials }, 5*time.Second, 10*time.Millisecond)
	require.Never(t, func() bool { return peak() > maxMDNSDials }, 300*time.Millisecond, 10*time.Millisecond)
	require.Len(t, d.mdnsPending, maxMDNSPending, "the peers past the bound were skipped; the rest wait")
	require.NoError(t, d.Close(), "Close ends the dials in progress")
}
