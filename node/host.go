package node

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/pnet"
	"github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"

	"peer/internal/tlsbatch"
)

// UserAgent is what the node tells peers it runs.
const UserAgent = "peer/0.1"

// Limits returns the resource manager limits of a node. They start from libp2p's defaults
// scaled to the machine (1/8 of RAM and half the file descriptors; on a 24 GiB machine that is
// 3 GiB, ~448 connections and ~6000 streams in all) and raise what a file-sharing node needs:
//
//   - per peer: 512 inbound and 1024 outbound streams (default 256/512 before scaling), so a
//     fetch pipeline, the DHT and gossip to the same peer never starve each other;
//   - per protocol per peer: 256 inbound streams (default 64 + 4/GiB, ~75 here), so a peer's
//     fetch keeping many requests in flight is not refused, while one protocol still cannot take
//     a peer's whole budget;
//   - per peer memory 256 MiB base (default 64), the stream windows of a fast transfer.
//
// Connection limits stay libp2p's; the connection manager (config conn_low/conn_high) trims
// below them.
func Limits() rcmgr.ConcreteLimitConfig {
	l := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&l)
	l.PeerBaseLimit.StreamsInbound = 512
	l.PeerBaseLimit.StreamsOutbound = 1024
	l.PeerBaseLimit.Streams = 1024
	l.PeerBaseLimit.Memory = 256 << 20
	l.ProtocolPeerBaseLimit.StreamsInbound = 256
	l.ProtocolPeerBaseLimit.StreamsOutbound = 256
	l.ProtocolPeerBaseLimit.Streams = 512
	l.ProtocolPeerBaseLimit.Memory = 128 << 20
	return l.AutoScale()
}

// connGrace is how long a new connection is safe from trimming (Kubo's default too).
const connGrace = 20 * time.Second

// connWatermarks keeps the connection manager's watermarks below the resource manager's limit
// on inbound connections, so that the node trims its least useful connections before it must
// refuse new ones. With watermarks above that limit (libp2p's inbound limit is about 250 on a
// 24 GiB machine, the default high watermark 400), strangers could take every inbound slot
// and nothing was ever trimmed, so an honest node could not connect.
func connWatermarks(low, high int, l rcmgr.ConcreteLimitConfig) (int, int) {
	if in := int(l.ToPartialLimitConfig().System.ConnsInbound); in > 0 && high > in*4/5 {
		high = in * 4 / 5
		low = min(low, high/2)
	}
	return low, high
}

// hostOptions turns the node's settings into libp2p options. The host listens on nothing:
// Start listens on each address itself so a failure names the address.
func (n *Node) hostOptions() ([]libp2p.Option, error) {
	cfg := n.cfg
	str, err := rcmgr.NewStatsTraceReporter()
	if err != nil {
		return nil, err
	}
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(Limits()), rcmgr.WithTraceReporter(str))
	if err != nil {
		return nil, fmt.Errorf("resource manager: %w", err)
	}
	low, high := cfg.ConnLow, cfg.ConnHigh
	if high == 0 {
		low, high = 100, 400
	}
	low, high = connWatermarks(low, high, Limits())
	cm, err := connmgr.NewConnManager(low, high, connmgr.WithGracePeriod(connGrace))
	if err != nil {
		rm.Close()
		return nil, fmt.Errorf("connection manager: %w", err)
	}
	opts := []libp2p.Option{
		libp2p.Identity(n.key),
		libp2p.NoListenAddrs,
		libp2p.UserAgent(UserAgent),
		// TLS first: it is about twice as fast per stream as Noise here; Noise is kept for
		// peers that only speak it. tlsbatch is libp2p's TLS writing each large write to TCP
		// in one call rather than one per 16 KiB record.
		libp2p.Security(tlsbatch.ID, tlsbatch.New),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Muxer(yamux.ID, muxer()),
		// No SO_REUSEPORT: with it, a second daemon asked for the same port would share it, and
		// dialers would reach either at random ("peer id mismatch"). Without it the second one
		// fails at start, naming the port. Outgoing TCP then leaves from ephemeral ports; hole
		// punching still has QUIC, whose listener is an ordinary UDP socket (a port in use is
		// already refused there).
		libp2p.Transport(tcp.NewTCPTransport, tcp.DisableReuseport()),
		libp2p.ResourceManager(rm),
		libp2p.ConnectionManager(cm),
		libp2p.PrometheusRegisterer(n.reg),
		libp2p.BandwidthReporter(n.bw),
	}
	if n.psk != nil {
		// QUIC has no pre-shared key support: a private network is TCP only.
		opts = append(opts, libp2p.PrivateNetwork(n.psk))
	} else {
		opts = append(opts, libp2p.Transport(quic.NewTransport))
	}
	if cfg.RelayClient {
		opts = append(opts, libp2p.EnableRelay())
	} else {
		opts = append(opts, libp2p.DisableRelay())
	}
	if cfg.AutoNAT {
		opts = append(opts, libp2p.EnableNATService(), libp2p.EnableAutoNATv2())
	}
	if cfg.HolePunching {
		opts = append(opts, libp2p.EnableHolePunching())
	}
	if cfg.PortMapping {
		opts = append(opts, libp2p.NATPortMap())
	}
	return append(opts, n.opts.HostOptions...), nil
}

// splitListen parses listen addresses; with a swarm key, QUIC addresses are dropped (logged).
func splitListen(addrs []string, private bool) ([]ma.Multiaddr, []string, error) {
	var out []ma.Multiaddr
	var dropped []string
	for _, s := range addrs {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, nil, fmt.Errorf("listen address %q: %w", s, err)
		}
		if private && isQUIC(a) {
			dropped = append(dropped, s)
			continue
		}
		out = append(out, a)
	}
	if len(out) == 0 {
		if len(dropped) > 0 {
			return nil, dropped, errors.New("a private network (swarm key) runs over TCP only, and every listen address is QUIC: add a TCP one with --listen")
		}
		return nil, nil, errors.New("no listen address: give one with --listen (e.g. /ip4/0.0.0.0/tcp/4040)")
	}
	return out, dropped, nil
}

func isQUIC(a ma.Multiaddr) bool {
	_, err := a.ValueForProtocol(ma.P_QUIC_V1)
	if err == nil {
		return true
	}
	_, err = a.ValueForProtocol(ma.P_UDP)
	return err == nil
}

// LoadSwarmKey reads a libp2p pre-shared key file (the "/key/swarm/psk/1.0.0/" format, as
// written by ipfs-swarm-key-gen) and returns the key and a short fingerprint for messages.
func LoadSwarmKey(path string) (pnet.PSK, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, "", fmt.Errorf("reading swarm key: %w", err)
	}
	defer f.Close()
	psk, err := pnet.DecodeV1PSK(f)
	if err != nil {
		return nil, "", fmt.Errorf("swarm key %s: %w (want the /key/swarm/psk/1.0.0/ format)", path, err)
	}
	return psk, SwarmKeyFingerprint(psk), nil
}

// SwarmKeyFingerprint names a key without revealing it: the first 8 bytes of its SHA-256, hex.
func SwarmKeyFingerprint(psk pnet.PSK) string {
	h := sha256.Sum256(psk)
	return fmt.Sprintf("%x", h[:8])
}

// FormatSwarmKey encodes a 32-byte key in the swarm key file format.
func FormatSwarmKey(key []byte) string {
	return "/key/swarm/psk/1.0.0/\n/base16/\n" + strings.ToLower(fmt.Sprintf("%x", key)) + "\n"
}

func privKey(raw []byte) (crypto.PrivKey, error) {
	k, err := crypto.UnmarshalEd25519PrivateKey(raw)
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	return k, nil
}

// muxer is yamux with three changes to its defaults, for fast streams that strangers cannot
// turn into memory:
//
//   - 256 KiB messages instead of 64 KiB: a block moves in four frames instead of sixteen, which
//     saves the sender a quarter of its per-frame work. Receivers accept any message that fits
//     the window, so every yamux peer understands them.
//   - a 4 MiB initial window for the streams this node opens (its fetches) instead of 256 KiB.
//     yamux grows a window only when its reader drains half of it within four round trips; on
//     loopback or a fast LAN a round trip is tens of microseconds, so the window stayed near
//     256 KiB and a fetch's reader descheduled for a millisecond stopped the sender. Paired
//     fetches of 1 GiB between two daemons went from 601 to 701 MB/s (16 MiB: 721).
//   - yamux's own 256 KiB for the streams peers open to this node (InboundStreamWindowSize, a
//     field of the patched yamux in third_party/go-yamux), growing as yamux tunes them, each
//     growth reserved from the resource manager. yamux reserves only the first 256 KiB of a
//     window, so with 4 MiB on those too any peer could make the node buffer 4 MiB per stream
//     it opens, unaccounted, for as long as the handler lags: 32 identities flooding
//     ADD_PROVIDER held 128 MiB of payload in yamux buffers (half as much again in their
//     per-frame overhead). The streams a fetch serves from carry only requests.
func muxer() *yamux.Transport {
	t := *yamux.DefaultTransport
	t.MaxMessageSize = 256 << 10
	t.InitialStreamWindowSize = 4 << 20
	t.InboundStreamWindowSize = 256 << 10
	return &t
}
