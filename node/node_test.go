package node_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/stretchr/testify/require"

	"peer/discovery"
	"peer/internal/config"
	"peer/internal/fsys"
	"peer/internal/nettest"
	"peer/node"
)

func newKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	return k
}

// testConfig is the default config on loopback with free ports and no API.
func testConfig() config.Config {
	c := config.Default()
	c.Listen = []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}
	c.API = ""
	return c
}

func startNode(t *testing.T, opts node.Options) *node.Node {
	t.Helper()
	if opts.Key == nil {
		opts.Key = newKey(t)
	}
	n, err := node.New(opts)
	require.NoError(t, err)
	require.NoError(t, n.Start(t.Context()))
	t.Cleanup(func() { require.NoError(t, n.Close()) })
	return n
}

// countingGater lets everything through and counts outbound dials.
type countingGater struct{ dials atomic.Int64 }

func (g *countingGater) InterceptPeerDial(peer.ID) bool { g.dials.Add(1); return true }
func (g *countingGater) InterceptAddrDial(peer.ID, ma.Multiaddr) bool {
	g.dials.Add(1)
	return true
}
func (g *countingGater) InterceptAccept(network.ConnMultiaddrs) bool { return true }
func (g *countingGater) InterceptSecured(network.Direction, peer.ID, network.ConnMultiaddrs) bool {
	return true
}
func (g *countingGater) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) {
	return true, 0
}

func TestDefaultsDialNothing(t *testing.T) {
	def := config.Default()
	require.Empty(t, def.Bootstrap)
	require.False(t, def.MDNS || def.AutoNAT || def.HolePunching || def.RelayClient || def.PortMapping,
		"defaults turn on no network service")

	g := &countingGater{}
	cfg := testConfig() // the defaults, on loopback ports chosen by the kernel
	cfg.API = "127.0.0.1:0"
	n := startNode(t, node.Options{Config: cfg, RepoDir: t.TempDir(), HostOptions: []libp2p.Option{libp2p.ConnectionGater(g)}})

	// Start has run the bootstrap round; run a full routing table refresh as well and wait for it.
	select {
	case <-n.Discovery().DHT().RefreshRoutingTable():
	case <-time.After(10 * time.Second):
		t.Fatal("routing table refresh did not finish")
	}
	require.Zero(t, g.dials.Load(), "no dial attempted")
	require.Empty(t, n.Host().Network().Conns())
	require.Empty(t, n.Peers())
}

func TestPeersConnectAndSeeEachOther(t *testing.T) {
	a := startNode(t, node.Options{Config: testConfig()})
	b := startNode(t, node.Options{Config: testConfig()})
	require.Len(t, a.Addrs(), 2, "one TCP and one QUIC address")
	for _, addr := range a.Addrs() {
		_, err := addr.ValueForProtocol(ma.P_P2P)
		require.NoError(t, err, "addresses carry /p2p/")
	}
	_, err := b.Connect(t.Context(), a.Addrs()[0].String())
	require.NoError(t, err)
	require.Eventually(t, func() bool { return len(a.Peers()) == 1 }, 5*time.Second, 10*time.Millisecond)
	require.Equal(t, b.ID().String(), a.Peers()[0].ID)
	require.Equal(t, "inbound", a.Peers()[0].Direction)

	_, err = b.Connect(t.Context(), "/ip4/127.0.0.1/tcp/1")
	require.ErrorContains(t, err, "/p2p/", "an address without a peer ID is refused with a hint")

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	nobody, err := node.New(node.Options{Config: testConfig(), Key: newKey(t)})
	require.NoError(t, err)
	closed := "/ip4/127.0.0.1/tcp/" + portOf(t, ln.Addr()) + "/p2p/" + nobody.ID().String()
	require.NoError(t, ln.Close())
	_, err = b.Connect(t.Context(), closed)
	require.ErrorContains(t, err, "is its daemon running?")
}

func TestBootstrapFromConfig(t *testing.T) {
	boot := startNode(t, node.Options{Config: testConfig()})
	cfg := testConfig()
	cfg.Network = "boot"
	boot2cfg := testConfig()
	boot2cfg.Network = "boot"
	boot2 := startNode(t, node.Options{Config: boot2cfg})
	_ = boot
	cfg.Bootstrap = []string{boot2.Addrs()[0].String()}
	n := startNode(t, node.Options{Config: cfg})
	require.Positive(t, n.Discovery().RoutingTableSize(), "Start waits for the routing table")
	require.Equal(t, 1, n.Status().Peers)
	require.Equal(t, "/peer/boot/kad/1.0.0", n.Status().DHT.Protocol)
}

func writeSwarmKey(t *testing.T) string {
	t.Helper()
	k := make([]byte, 32)
	_, err := rand.Read(k)
	require.NoError(t, err)
	p := filepath.Join(t.TempDir(), "swarm.key")
	require.NoError(t, os.WriteFile(p, []byte(node.FormatSwarmKey(k)), 0o600))
	return p
}

func TestPrivateNetwork(t *testing.T) {
	key1, key2 := writeSwarmKey(t), writeSwarmKey(t)
	private := func(key string) config.Config {
		c := testConfig()
		c.SwarmKey = key
		return c
	}
	a := startNode(t, node.Options{Config: private(key1)})
	require.True(t, a.Private())
	require.Len(t, a.Addrs(), 1, "QUIC is dropped on a private network")

	same := startNode(t, node.Options{Config: private(key1)})
	_, err := same.Connect(t.Context(), a.Addrs()[0].String())
	require.NoError(t, err, "matching swarm keys connect")

	// A handshake under the wrong key either fails at once or hangs until the deadline: keep
	// the deadline short.
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	other := startNode(t, node.Options{Config: private(key2)})
	_, err = other.Connect(ctx, a.Addrs()[0].String())
	require.Error(t, err, "another swarm key cannot connect")
	require.ErrorContains(t, err, "swarm key")
	t.Log(err)

	open := startNode(t, node.Options{Config: testConfig()})
	ctx, cancel = context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	_, err = open.Connect(ctx, a.Addrs()[0].String())
	require.Error(t, err, "a node without the key cannot connect")
	require.ErrorContains(t, err, "swarm-key")
	t.Log(err)
}

func TestPortInUseIsAClearError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	cfg := testConfig()
	cfg.Listen = []string{"/ip4/127.0.0.1/tcp/" + portOf(t, ln.Addr())}
	n, err := node.New(node.Options{Config: cfg, Key: newKey(t)})
	require.NoError(t, err)
	err = n.Start(t.Context())
	require.ErrorContains(t, err, "listening on /ip4/127.0.0.1/tcp/")
	require.True(t, fsys.IsAddrInUse(err), "%v", err)
	require.ErrorContains(t, err, "--listen")
	require.NoError(t, n.Close())
}

// TestSecondDaemonOnSamePortFails: a node asked to listen on the TCP (or QUIC) port another
// node listens on fails to start with an error naming the address, rather than sharing the port
// (SO_REUSEPORT) so that dialers reach either node at random.
func TestSecondDaemonOnSamePortFails(t *testing.T) {
	first := startNode(t, node.Options{Config: testConfig()})
	for _, proto := range []int{ma.P_TCP, ma.P_UDP} {
		var addr ma.Multiaddr
		for _, a := range first.Host().Network().ListenAddresses() {
			if _, err := a.ValueForProtocol(proto); err == nil {
				addr = a
			}
		}
		require.NotNil(t, addr, "the first node listens on protocol %d", proto)
		t.Run(addr.String(), func(t *testing.T) {
			cfg := testConfig()
			cfg.Listen = []string{addr.String()}
			second, err := node.New(node.Options{Config: cfg, Key: newKey(t)})
			require.NoError(t, err)
			defer second.Close()
			err = second.Start(t.Context())
			require.Error(t, err, "a second node on %s must not start", addr)
			require.True(t, fsys.IsAddrInUse(err), "%v", err)
			t.Log(err)
			msg := err.Error()
			require.Contains(t, msg, "listening on "+addr.String())
			require.Contains(t, msg, "another daemon or program uses the port")
			require.NotContains(t, msg, "\n", "one line")
			require.Less(t, strings.Count(msg, "listening on"), 2, "no repeated prefix: %s", msg)
		})
	}
}

func portOf(t *testing.T, a net.Addr) string {
	_, p, err := net.SplitHostPort(a.String())
	require.NoError(t, err)
	return p
}

func TestNewChecksConfig(t *testing.T) {
	bad := []func(*config.Config){
		func(c *config.Config) { c.Listen = []string{"not an address"} },
		func(c *config.Config) { c.Listen = nil },
		func(c *config.Config) { c.Bootstrap = []string{"/ip4/127.0.0.1/tcp/1"} },
		func(c *config.Config) { c.Network = "a/b" },
		func(c *config.Config) { c.DHTMode = "maybe" },
		func(c *config.Config) { c.SwarmKey = "/nonexistent/swarm.key" },
		func(c *config.Config) { c.API = "0.0.0.0:0" },
	}
	for i, f := range bad {
		c := testConfig()
		f(&c)
		_, err := node.New(node.Options{Config: c, Key: newKey(t), RepoDir: t.TempDir()})
		require.Error(t, err, "case %d", i)
	}
	c := testConfig()
	c.API = "0.0.0.0:0"
	_, err := node.New(node.Options{Config: c, Key: newKey(t), RepoDir: t.TempDir(), APIAllowRemote: true})
	require.NoError(t, err, "a remote API needs the explicit flag")
	_ = discovery.ModeAuto
}

// Connect dials the address it is given, even to a peer already connected through another, and
// says in one line why a dial failed: nothing listening, the wrong peer there (naming the one
// found), or no answer.
func TestConnectDialsTheAddressGiven(t *testing.T) {
	a := startNode(t, node.Options{Config: testConfig()})
	b := startNode(t, node.Options{Config: testConfig()})
	other := startNode(t, node.Options{Config: testConfig()})
	tcpA := a.Addrs()[0].String()
	_, err := b.Connect(t.Context(), tcpA)
	require.NoError(t, err)

	// A dead address of a peer b is connected to: not "connected".
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	dead := "/ip4/127.0.0.1/tcp/" + portOf(t, ln.Addr()) + "/p2p/" + a.ID().String()
	require.NoError(t, ln.Close())
	_, err = b.Connect(t.Context(), dead)
	require.Error(t, err, "a dead address is an error though the peer is connected")
	require.Contains(t, err.Error(), "nothing listens at /ip4/127.0.0.1/tcp/")
	require.NotContains(t, err.Error(), "\n")

	// Another peer's address with a's ID: the error names who is there.
	wrong := other.Addrs()[0].Decapsulate(ma.StringCast("/p2p/"+other.ID().String())).String() + "/p2p/" + a.ID().String()
	_, err = b.Connect(t.Context(), wrong)
	require.ErrorIs(t, err, node.ErrWrongPeer)
	require.Contains(t, err.Error(), "is peer "+other.ID().String()+", not "+a.ID().String())
	require.NotContains(t, err.Error(), "nothing listens")
	require.NotContains(t, err.Error(), "<peer.ID")
	require.NotContains(t, err.Error(), "\n")

	// An address that accepts and never answers: no answer in time.
	hang, _ := nettest.HangingListener(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	_, err = b.Connect(ctx, hang.String()+"/p2p/"+a.ID().String())
	require.ErrorContains(t, err, "no answer from "+hang.String())

	// The right address still works, and says connected.
	_, err = b.Connect(t.Context(), tcpA)
	require.NoError(t, err)
}
