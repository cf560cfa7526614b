package node

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/metrics"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/pnet"
	"github.com/libp2p/go-libp2p/core/sec"
	"github.com/libp2p/go-libp2p/core/transport"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"

	"peer/discovery"
	"peer/internal/config"
	"peer/internal/fsys"
	"peer/node/api"
	"peer/store"
	"peer/transfer"
)

// logger is the package's logger. It is looked up on each use so that a handler the program
// installs with slog.SetDefault after start-up applies.
func logger() *slog.Logger { return slog.Default().With("pkg", "node") }

// ErrNotStarted is returned by operations that need a started node.
var ErrNotStarted = errors.New("node is not running")

// Options is what a node is built from.
type Options struct {
	// Config is the repo's settings, after command-line overrides. Config.API "" runs no API.
	Config config.Config
	// Key is the node's identity (store.ReadIdentity). Required.
	Key ed25519.PrivateKey
	// Store is the open repo. Optional: without it, the store endpoints answer 503. The node
	// never closes it.
	Store *store.Store
	// RepoDir is where the API writes its address and token files. Default Store.Dir().
	RepoDir string
	// APIAllowRemote allows Config.API to be a non-loopback address.
	APIAllowRemote bool
	// GatewayAllowRemote allows Config.Gateway to be a non-loopback address.
	GatewayAllowRemote bool
	// HostOptions are appended to the libp2p options (tests: a connection gater, say).
	HostOptions []libp2p.Option
	// Host runs the node on a host built by the caller (a mocknet host with link latency, say)
	// instead of creating one; the node does not listen on it, and closes it on Close.
	Host host.Host
	// Transfer are extra options for the block exchange (a rate limit, say).
	Transfer []transfer.Option
	// NoBitswap turns off serving Bitswap whatever Config.Bitswap says (tests).
	NoBitswap bool
	// BitswapLimits bound each Bitswap peer; zero fields keep DefaultBitswapLimits.
	BitswapLimits BitswapLimits
	// FileCheck is how often the files the node references in place are checked for changes
	// (one stat each); a changed or deleted one is withdrawn. Default one minute.
	FileCheck time.Duration
	// Discovery overrides discovery settings the config does not carry (tests: short
	// timeouts). Zero fields keep the defaults; Network, Bootstrap, MDNS, Mode and PublicOnly
	// always come from Config.
	Discovery discovery.Config
}

// Node is one peer: a libp2p host, discovery, the subsystems, and the local API.
type Node struct {
	opts      Options
	cfg       config.Config
	key       crypto.PrivKey
	id        peer.ID
	psk       pnet.PSK
	pskFP     string
	listen    []ma.Multiaddr
	bootstrap []peer.AddrInfo

	reg     *prometheus.Registry
	bw      *metrics.BandwidthCounter
	bwHist  bandwidthHistory // the last minutes of bw, for the dashboard (bandwidth.go)
	metrics *Metrics
	api     *api.Server

	mu      sync.Mutex
	host    host.Host
	disc    *discovery.Discovery
	ex      *exchange // nil without a store
	closers []func() error
	gw      *gatewayServer // nil without Config.Gateway
	started time.Time
	running bool
	closed  bool
}

// New checks the options and builds a node. It opens no socket and starts nothing.
func New(opts Options) (*Node, error) {
	if len(opts.Key) != ed25519.PrivateKeySize {
		return nil, errors.New("node: no identity key")
	}
	cfg := opts.Config
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := discovery.ValidateNetwork(cfg.Network); err != nil {
		return nil, err
	}
	if _, err := discovery.ParseMode(cfg.DHTMode); err != nil {
		return nil, err
	}
	key, err := privKey(opts.Key)
	if err != nil {
		return nil, err
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return nil, err
	}
	n := &Node{opts: opts, cfg: cfg, key: key, id: id, reg: prometheus.NewRegistry(), bw: metrics.NewBandwidthCounter()}
	if cfg.SwarmKey != "" {
		n.psk, n.pskFP, err = LoadSwarmKey(cfg.SwarmKey)
		if err != nil {
			return nil, err
		}
	}
	var dropped []string
	n.listen, dropped, err = splitListen(cfg.Listen, n.psk != nil)
	if err != nil {
		return nil, err
	}
	if len(dropped) > 0 {
		logger().Info("private network: not listening on QUIC, which has no pre-shared key support", "dropped", dropped)
	}
	for _, s := range cfg.Bootstrap {
		ai, err := peer.AddrInfoFromString(s)
		if err != nil {
			return nil, fmt.Errorf("bootstrap address %q: %w (want a multiaddr ending in /p2p/ID)", s, err)
		}
		n.bootstrap = append(n.bootstrap, *ai)
	}
	n.metrics = newMetrics(n)
	if cfg.API != "" {
		dir := opts.RepoDir
		if dir == "" && opts.Store != nil {
			dir = opts.Store.Dir()
		}
		n.api, err = api.New(api.Config{Addr: cfg.API, RepoDir: dir, AllowRemote: opts.APIAllowRemote})
		if err != nil {
			return nil, err
		}
		n.routes()
	}
	if cfg.Gateway != "" {
		if opts.Store == nil {
			return nil, errors.New("the gateway needs a repo to serve from")
		}
		dir := opts.RepoDir
		if dir == "" {
			dir = opts.Store.Dir()
		}
		if n.gw, err = newGateway(n, cfg.Gateway, dir, opts.GatewayAllowRemote); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// Start starts the API first, answering 503 "starting" (api.Server.SetStarting) so that clients
// can tell a starting daemon from none, then listens on every configured address, starts
// discovery (bootstrapping off the configured peers, bounded by the config's bootstrap_timeout)
// and the other subsystems, and then lets the API answer. On error it stops what it started. ctx
// bounds the start only; stop the node with Close.
func (n *Node) Start(ctx context.Context) (err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.running || n.closed {
		return errors.New("node: already started or closed")
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, n.stopLocked())
		}
	}()

	// 0. The API, first: its address file tells the CLI a daemon runs on the repo, and until
	// the node is up every endpoint says that it is starting.
	if n.api != nil {
		n.api.SetStarting(fmt.Sprintf("the daemon is starting (bootstrapping takes up to %s): try again in a moment", time.Duration(n.cfg.BootstrapTimeout)))
		if err := n.api.Start(ctx); err != nil {
			return err
		}
	}

	// 1. The host, listening on each address in turn so a failure names it.
	h := n.opts.Host
	if h == nil {
		opts, err := n.hostOptions()
		if err != nil {
			return err
		}
		if h, err = libp2p.New(opts...); err != nil {
			return fmt.Errorf("creating libp2p host: %w", err)
		}
	}
	n.host = h
	n.closers = append(n.closers, h.Close)
	if n.opts.Host == nil {
		if err := n.listenAll(h); err != nil {
			return err
		}
	}

	// 2. Discovery: the DHT, bootstrap, provide queue, rendezvous, mDNS.
	dcfg := n.opts.Discovery
	dcfg.Network = n.cfg.Network
	dcfg.Mode, _ = discovery.ParseMode(n.cfg.DHTMode)
	dcfg.PublicOnly = n.cfg.DHTPublicOnly
	dcfg.Bootstrap = n.bootstrap
	dcfg.MDNS = n.cfg.MDNS
	dcfg.Rendezvous = n.cfg.Rendezvous
	if dcfg.BootstrapTimeout == 0 {
		dcfg.BootstrapTimeout = time.Duration(n.cfg.BootstrapTimeout)
	}
	if dcfg.Reprovide == 0 {
		dcfg.Reprovide = time.Duration(n.cfg.Reprovide)
	}
	d, err := discovery.New(h, dcfg)
	if err != nil {
		return err
	}
	if err := d.Start(ctx); err != nil {
		return err
	}
	n.disc = d
	n.closers = append(n.closers, d.Close)

	// 3. The block exchange and gossip, when there is a store to serve and fill.
	if err := n.startExchange(h, d); err != nil {
		return err
	}

	// 4. The gateway, once there is something to fetch with.
	if n.gw != nil {
		if err := n.gw.start(ctx, n.opts.Store); err != nil {
			return err
		}
		n.closers = append(n.closers, n.gw.Close)
	}

	n.started = time.Now()
	n.running = true
	n.closers = append(n.closers, n.bwHist.start(n.bw))
	if n.ex != nil {
		n.ex.tm.start() // resumes the transfers the log left queued or running
	}
	// 5. The API answers.
	if n.api != nil {
		n.api.SetStarting("")
	}
	logger().Info("node started", "id", n.id.String(), "addrs", h.Addrs(), "network", n.cfg.Network, "private", n.psk != nil)
	return nil
}

// listenAll listens on each configured address. A failure is an error naming the address,
// except that an IPv6 address this machine cannot bind (IPv6 disabled) is skipped with a
// warning while another address works, so the default config runs on IPv4-only hosts.
func (n *Node) listenAll(h host.Host) error {
	// The swarm's AddListenAddr keeps the transport's error; Listen flattens it to text.
	listen := h.Network().Listen
	if al, ok := h.Network().(interface{ AddListenAddr(ma.Multiaddr) error }); ok {
		listen = func(as ...ma.Multiaddr) error { return al.AddListenAddr(as[0]) }
	}
	ok := 0
	for _, a := range n.listen {
		err := listen(a)
		if err == nil {
			ok++
			continue
		}
		if _, v6 := a.ValueForProtocol(ma.P_IP6); v6 == nil && len(n.listen) > 1 &&
			fsys.IsAddrFamilyUnavailable(err) {
			logger().Warn("IPv6 is unavailable here: not listening on it", "addr", a.String(), "err", err)
			continue
		}
		if fsys.IsAddrInUse(err) {
			return fmt.Errorf("listening on %s: %w (another daemon or program uses the port: choose another with --listen, or port 0 for a free one)", a, err)
		}
		return fmt.Errorf("listening on %s: %w", a, err)
	}
	if ok == 0 {
		return errors.New("could not listen on any address: give one that works with --listen")
	}
	return nil
}

// Close stops the API, the subsystems, discovery and the host, in the reverse order of Start,
// and waits for them. It does not close the store. Safe to call more than once.
func (n *Node) Close() error {
	n.mu.Lock()
	n.closed = true
	closers := n.takeClosersLocked()
	n.mu.Unlock()
	// Run without the lock: API handlers still finishing may need it. The API stops first, as
	// it started first: no request reaches a subsystem that is stopping.
	return errors.Join(n.closeAPI(), runClosers(closers))
}

// stopLocked stops what a failed Start started. API handlers do not take n.mu while the API
// says it is starting, so closing it here cannot deadlock.
func (n *Node) stopLocked() error {
	return errors.Join(n.closeAPI(), runClosers(n.takeClosersLocked()))
}

// closeAPI stops the API server (a no-op when there is none or it is stopped).
func (n *Node) closeAPI() error {
	if n.api == nil {
		return nil
	}
	return n.api.Close()
}

func (n *Node) takeClosersLocked() []func() error {
	c := n.closers
	n.closers = nil
	n.running = false
	n.ex = nil
	return c
}

// runClosers calls closers in reverse order and joins their errors.
func runClosers(closers []func() error) error {
	var errs []error
	for i := len(closers) - 1; i >= 0; i-- {
		errs = append(errs, closers[i]())
	}
	return errors.Join(errs...)
}

// ID is the node's peer ID.
func (n *Node) ID() peer.ID { return n.id }

// GatewayURL is the gateway's base URL ("" when it does not run).
func (n *Node) GatewayURL() string {
	if n.gw == nil {
		return ""
	}
	return n.gw.URL()
}

// Host is the libp2p host (nil before Start).
func (n *Node) Host() host.Host {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.host
}

// Discovery is the node's DHT discovery (nil before Start).
func (n *Node) Discovery() *discovery.Discovery {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.disc
}

// Store is the repo the node serves (nil if none was given).
func (n *Node) Store() *store.Store { return n.opts.Store }

// Config is the node's settings.
func (n *Node) Config() config.Config { return n.cfg }

// API is the local API server (nil when Config.API is ""). Register more endpoints with
// API().Handle before or after Start.
func (n *Node) API() *api.Server { return n.api }

// Registry is the node's Prometheus registry, served at /metrics; register more collectors here.
func (n *Node) Registry() *prometheus.Registry { return n.reg }

// Metrics is the node's own metrics, for subsystems to count into.
func (n *Node) Metrics() *Metrics { return n.metrics }

// Private reports whether a swarm key keeps the node on a private network.
func (n *Node) Private() bool { return n.psk != nil }

// Addrs is the node's addresses with the /p2p/ID suffix (empty before Start). Listening on
// 0.0.0.0 gives one address per interface; port 0 gives the real port.
func (n *Node) Addrs() []ma.Multiaddr {
	h := n.Host()
	if h == nil {
		return nil
	}
	addrs, err := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()})
	if err != nil {
		return nil
	}
	return addrs
}

// connectTimeout bounds a Connect.
const connectTimeout = 30 * time.Second

// Connect dials addr (a multiaddr ending in /p2p/ID) itself, on a connection of its own, even
// when the peer is already connected through another address, so that success means that
// address reaches that peer. The error is one line that says why it failed: nothing listens
// there, no answer in time, another peer answers there (naming it), or the two could not agree
// on a protocol (a private network, say).
func (n *Node) Connect(ctx context.Context, addr string) (peer.AddrInfo, error) {
	h := n.Host()
	if h == nil {
		return peer.AddrInfo{}, ErrNotStarted
	}
	ai, err := peer.AddrInfoFromString(addr)
	if err != nil {
		return peer.AddrInfo{}, fmt.Errorf("%q is not a peer address: %v (want a multiaddr ending in /p2p/ID, as `peer id` prints)", addr, err)
	}
	if ai.ID == h.ID() {
		return *ai, errors.New("that address is this node's own")
	}
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	for _, a := range ai.Addrs {
		if err := n.dialAddr(ctx, h, ai.ID, a); err != nil {
			return *ai, n.explainDial(ai.ID, a, err)
		}
	}
	if err := h.Connect(network.WithForceDirectDial(ctx, "user asked"), *ai); err != nil {
		return *ai, n.explainDial(ai.ID, nil, err)
	}
	return *ai, nil
}

// dialAddr dials a, expecting peer p there, on a connection of its own that it then closes:
// the swarm would answer with a connection it already has, or dial other known addresses. An
// address no transport dials as it is (a DNS name) is left to the swarm's dial.
func (n *Node) dialAddr(ctx context.Context, h host.Host, p peer.ID, a ma.Multiaddr) error {
	sw, ok := h.Network().(interface {
		TransportForDialing(ma.Multiaddr) transport.Transport
	})
	if !ok { // a host of the caller's (mocknet): only the swarm's own dial
		return nil
	}
	t := sw.TransportForDialing(a)
	if t == nil { // not dialable as it is (a DNS name): the swarm resolves it in Connect
		return nil
	}
	c, err := t.Dial(ctx, a, p)
	if err != nil {
		return err
	}
	return c.Close()
}

// explainDial turns a failed dial of peer p at a (nil: at any address known) into one line.
func (n *Node) explainDial(p peer.ID, a ma.Multiaddr, err error) error {
	where := "peer " + p.String()
	if a != nil {
		where = a.String()
	}
	var mismatch sec.ErrPeerIDMismatch
	var nerr net.Error
	switch {
	case errors.As(err, &mismatch):
		return fmt.Errorf("%w: %s is peer %s, not %s: check the /p2p/ part of the address (`peer id` there prints it)", ErrWrongPeer, where, mismatch.Actual, p)
	case fsys.IsConnRefused(err):
		return fmt.Errorf("nothing listens at %s (connection refused): is its daemon running? is the port right?", where)
	case errors.Is(err, context.Canceled):
		return err
	}
	// A handshake under another swarm key fails at once or hangs: the hint fits both.
	hint := "if the peer runs a private network, start this daemon with its --swarm-key"
	if n.psk != nil {
		hint = fmt.Sprintf("this node is on a private network, swarm key %s: the peer must use the same swarm key", n.pskFP)
	}
	msg := oneLine(err)
	switch {
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &nerr) && nerr.Timeout()):
		return fmt.Errorf("no answer from %s in time: the machine may be down or a firewall drops the packets (%s)", where, hint)
	case strings.Contains(msg, "negotiate") || errors.Is(err, io.EOF) || fsys.IsConnReset(err):
		return fmt.Errorf("%s answered but the handshake failed: %s (is it a peer node? %s)", where, msg, hint)
	}
	return fmt.Errorf("connecting to %s failed: %s (%s)", where, msg, hint)
}

// ErrWrongPeer means another peer than the one named answered at an address.
var ErrWrongPeer = errors.New("wrong peer at that address")

// oneLine is err's text on one line (libp2p's dial errors list each address on a line).
func oneLine(err error) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", "; ")), " ")
}

// Peers lists the connected peers.
func (n *Node) Peers() []api.Peer {
	h := n.Host()
	if h == nil {
		return nil
	}
	var out []api.Peer
	for _, p := range h.Network().Peers() {
		conns := h.Network().ConnsToPeer(p)
		if len(conns) == 0 {
			continue
		}
		c := conns[0]
		dir := "outbound"
		if c.Stat().Direction == network.DirInbound {
			dir = "inbound"
		}
		out = append(out, api.Peer{
			ID:        p.String(),
			Addr:      c.RemoteMultiaddr().String(),
			Direction: dir,
			Latency:   h.Peerstore().LatencyEWMA(p),
			BytesIn:   n.bw.GetBandwidthForPeer(p).TotalIn,
			BytesOut:  n.bw.GetBandwidthForPeer(p).TotalOut,
		})
	}
	return out
}
