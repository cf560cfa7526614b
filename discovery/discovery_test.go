package discovery_test

import (
	"context"
	"crypto/rand"
	"slices"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multihash"
	"github.com/stretchr/testify/require"

	"peer/discovery"
)

func newHost(t *testing.T) host.Host {
	t.Helper()
	h, err := libp2p.New(
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		libp2p.DisableRelay(),
		libp2p.DisableMetrics(),
	)
	require.NoError(t, err)
	t.Cleanup(func() { h.Close() })
	return h
}

func randomCID(t *testing.T) cid.Cid {
	t.Helper()
	b := make([]byte, 64)
	_, err := rand.Read(b)
	require.NoError(t, err)
	mh, err := multihash.Sum(b, multihash.SHA2_256, -1)
	require.NoError(t, err)
	return cid.NewCidV1(cid.Raw, mh)
}

// network starts n nodes: the first bootstraps off nobody, the others off the first.
func startNetwork(t *testing.T, n int, cfg discovery.Config) ([]host.Host, []*discovery.Discovery) {
	t.Helper()
	var hosts []host.Host
	var ds []*discovery.Discovery
	for i := range n {
		h := newHost(t)
		c := cfg
		c.BootstrapTimeout = 10 * time.Second
		c.ProvideRetry = 100 * time.Millisecond
		if i > 0 {
			c.Bootstrap = []peer.AddrInfo{{ID: hosts[0].ID(), Addrs: hosts[0].Addrs()}}
		}
		d, err := discovery.New(h, c)
		require.NoError(t, err)
		require.NoError(t, d.Start(t.Context()))
		t.Cleanup(func() { require.NoError(t, d.Close()) })
		if i > 0 {
			require.Positive(t, d.RoutingTableSize(), "node %d bootstrapped", i)
		}
		hosts = append(hosts, h)
		ds = append(ds, d)
	}
	return hosts, ds
}

func findsProvider(ctx context.Context, d *discovery.Discovery, c cid.Cid, want peer.ID) bool {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for ai := range d.FindProviders(ctx, c) {
		if ai.ID == want {
			return true
		}
	}
	return false
}

func TestProvidedRootIsFoundFromEveryNode(t *testing.T) {
	for _, network := range []string{"", "test"} {
		t.Run("network="+network, func(t *testing.T) {
			hosts, ds := startNetwork(t, 4, discovery.Config{Network: network})
			for _, d := range ds {
				require.Equal(t, "server", d.ModeName(), "loopback nodes serve the DHT")
				require.Equal(t, string(discovery.ProtocolPrefix(network))+"/kad/1.0.0", string(d.Protocol()))
			}
			root := randomCID(t)
			ds[2].Provide(root)
			require.Eventually(t, func() bool { return ds[2].Stats().Provided == 1 }, 20*time.Second, 20*time.Millisecond)
			for i, d := range ds {
				if i == 2 {
					continue
				}
				require.Eventually(t, func() bool { return findsProvider(t.Context(), d, root, hosts[2].ID()) },
					20*time.Second, 50*time.Millisecond, "node %d finds the provider", i)
			}
		})
	}
}

func TestProvideInBatches(t *testing.T) {
	hosts, ds := startNetwork(t, 3, discovery.Config{Network: "batch", ProvideBatch: 8, ProvideConcurrency: 4})
	const n = 40
	roots := make([]cid.Cid, n)
	for i := range roots {
		roots[i] = randomCID(t)
	}
	ds[1].Provide(roots...)
	ds[1].Provide(roots[:10]...) // queued twice: provided once
	require.Eventually(t, func() bool {
		s := ds[1].Stats()
		return s.Pending == 0 && s.Provided >= n
	}, 30*time.Second, 20*time.Millisecond)
	s := ds[1].Stats()
	require.Equal(t, n, s.Roots)
	require.EqualValues(t, n, s.Provided, "each root is provided once")
	require.True(t, findsProvider(t.Context(), ds[2], roots[n-1], hosts[1].ID()))

	ds[1].Unprovide(roots[0])
	require.Equal(t, n-1, ds[1].Stats().Roots)
}

func TestReprovideOnSchedule(t *testing.T) {
	_, ds := startNetwork(t, 2, discovery.Config{Network: "re", Reprovide: 200 * time.Millisecond})
	ds[1].Provide(randomCID(t), randomCID(t))
	require.Eventually(t, func() bool {
		s := ds[1].Stats()
		return !s.LastReprovide.IsZero() && s.Provided >= 4
	}, 20*time.Second, 20*time.Millisecond, "every root is provided again on schedule")
}

func TestRendezvousFindsPeersOfOneNetwork(t *testing.T) {
	hosts, ds := startNetwork(t, 3, discovery.Config{Network: "rdv"})
	ns := discovery.RendezvousKey("rdv")
	require.NoError(t, ds[1].Advertise(t.Context(), ns))
	found := func() bool {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		ch, err := ds[2].FindPeers(ctx, ns, 10)
		require.NoError(t, err)
		for ai := range ch {
			if ai.ID == hosts[1].ID() {
				return true
			}
		}
		return false
	}
	require.Eventually(t, found, 20*time.Second, 50*time.Millisecond)
}

func TestNoBootstrapDialsNobody(t *testing.T) {
	h := newHost(t)
	d, err := discovery.New(h, discovery.Config{Rendezvous: true})
	require.NoError(t, err)
	require.NoError(t, d.Start(t.Context()))
	t.Cleanup(func() { d.Close() })
	d.Provide(randomCID(t))
	// A full refresh round with an empty table finishes without anyone to ask.
	select {
	case <-d.DHT().RefreshRoutingTable():
	case <-time.After(10 * time.Second):
		t.Fatal("refresh did not finish")
	}
	require.Empty(t, h.Network().Conns())
	require.Equal(t, 0, d.RoutingTableSize())
}

func TestConfigChecks(t *testing.T) {
	h := newHost(t)
	_, err := discovery.New(h, discovery.Config{Network: "bad name"})
	require.ErrorContains(t, err, "network name")
	_, err = discovery.ParseMode("sometimes")
	require.Error(t, err)
	require.Equal(t, "/ipfs", string(discovery.ProtocolPrefix("")))
	require.Equal(t, "/peer/lab", string(discovery.ProtocolPrefix("lab")))
	require.NotEqual(t, discovery.RendezvousKey(""), discovery.RendezvousKey("lab"))
}

// TestUnprovideLeavesTheQueue: a root removed while it waits for a routing table is not
// provided once peers come.
func TestUnprovideLeavesTheQueue(t *testing.T) {
	d, err := discovery.New(newHost(t), discovery.Config{Network: "unprovide", ProvideRetry: time.Hour})
	require.NoError(t, err)
	require.NoError(t, d.Start(t.Context()))
	t.Cleanup(func() { require.NoError(t, d.Close()) })
	gone, kept := randomCID(t), randomCID(t)
	d.Provide(gone, kept)
	require.Eventually(t, func() bool { return d.Stats().Pending == 2 }, 10*time.Second, 10*time.Millisecond,
		"with an empty routing table both roots wait")
	d.Unprovide(gone)
	require.Eventually(t, func() bool { s := d.Stats(); return s.Pending == 1 && s.Roots == 1 }, 10*time.Second, 10*time.Millisecond)
}

func TestStartTwiceOrAfterClose(t *testing.T) {
	d, err := discovery.New(newHost(t), discovery.Config{Network: "twice"})
	require.NoError(t, err)
	require.NoError(t, d.Start(t.Context()))
	require.ErrorContains(t, d.Start(t.Context()), "already started")
	require.NoError(t, d.Close())
	require.NoError(t, d.Close(), "Close is idempotent")
	require.ErrorContains(t, d.Start(t.Context()), "closed")
}

// On the public-only DHT a node with only loopback addresses must not claim to serve: it starts
// as a client (AutoNAT may promote it) and does not offer the DHT protocol. A named network, or
// a loopback node off the public-only DHT, serves.
func TestModeAutoByNetworkAndReachability(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cfg    discovery.Config
		server bool
	}{
		{"public-only loopback", discovery.Config{PublicOnly: true}, false},
		{"named network loopback", discovery.Config{Network: "lan"}, true},
		{"default loopback", discovery.Config{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHost(t)
			d, err := discovery.New(h, tc.cfg)
			require.NoError(t, err)
			require.NoError(t, d.Start(t.Context()))
			t.Cleanup(func() { require.NoError(t, d.Close()) })
			require.Equal(t, tc.server, d.ModeName() == "server", "mode %s", d.ModeName())
			require.Equal(t, tc.server, slices.Contains(h.Mux().Protocols(), d.Protocol()),
				"DHT protocol offered")
		})
	}
}

// A root shared while the routing table is empty is provided when the first peer arrives, not
// after the retry wait (an hour here, so only the peer's arrival can trigger it).
func TestProvideWhenFirstPeerArrives(t *testing.T) {
	h1 := newHost(t)
	d1, err := discovery.New(h1, discovery.Config{Network: "first", ProvideRetry: time.Hour})
	require.NoError(t, err)
	require.NoError(t, d1.Start(t.Context()))
	t.Cleanup(func() { require.NoError(t, d1.Close()) })
	c := randomCID(t)
	d1.Provide(c)
	require.Eventually(t, func() bool { return d1.Stats().Pending == 1 }, 10*time.Second, 10*time.Millisecond)
	require.Zero(t, d1.Stats().Provided)
	require.Zero(t, d1.Stats().Failed)

	d2, err := discovery.New(newHost(t), discovery.Config{Network: "first", ProvideRetry: time.Hour,
		Bootstrap: []peer.AddrInfo{{ID: h1.ID(), Addrs: h1.Addrs()}}})
	require.NoError(t, err)
	require.NoError(t, d2.Start(t.Context()))
	t.Cleanup(func() { require.NoError(t, d2.Close()) })

	require.Eventually(t, func() bool { return d1.Stats().Provided == 1 }, 30*time.Second, 20*time.Millisecond)
	require.Zero(t, d1.Stats().Pending)
	require.True(t, findsProvider(t.Context(), d2, c, h1.ID()))
}
