package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	coredisc "github.com/libp2p/go-libp2p/core/discovery"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
	drouting "github.com/libp2p/go-libp2p/p2p/discovery/routing"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// logger is the package's logger. It is looked up on each use so that a handler the program
// installs with slog.SetDefault after start-up applies.
func logger() *slog.Logger { return slog.Default().With("pkg", "discovery") }

// DefaultPrefix is the DHT protocol prefix of the public IPFS network.
const DefaultPrefix = "/ipfs"

// Mode says whether the node answers DHT queries.
type Mode int

const (
	// ModeAuto serves on a named network (LANs, testnets) and, off the public-only DHT, when the
	// node listens only on loopback or private addresses. On the public-only DHT (the public
	// profile) reachability decides: a node with only private addresses queries until AutoNAT
	// finds it reachable, one with a public address serves until AutoNAT finds it unreachable.
	ModeAuto Mode = iota
	// ModeServer always answers DHT queries.
	ModeServer
	// ModeClient only queries.
	ModeClient
)

// ParseMode reads "auto", "server" or "client" ("" is auto).
func ParseMode(s string) (Mode, error) {
	switch s {
	case "", "auto":
		return ModeAuto, nil
	case "server":
		return ModeServer, nil
	case "client":
		return ModeClient, nil
	}
	return ModeAuto, fmt.Errorf("dht mode %q: want auto, server or client", s)
}

var networkName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// ValidateNetwork checks a network name: 1 to 63 letters, digits, '.', '_' or '-'.
func ValidateNetwork(name string) error {
	if name != "" && !networkName.MatchString(name) {
		return fmt.Errorf("network name %q: use 1 to 63 letters, digits, '.', '_' or '-'", name)
	}
	return nil
}

// ProtocolPrefix is the DHT protocol prefix of a network: /ipfs for "" (the public IPFS DHT),
// /peer/NAME otherwise.
func ProtocolPrefix(network string) protocol.ID {
	if network == "" {
		return DefaultPrefix
	}
	return protocol.ID("/peer/" + network)
}

// RendezvousKey is the key under which the peers of a network advertise themselves.
func RendezvousKey(network string) string {
	if network == "" {
		return "peer/rendezvous/ipfs"
	}
	return "peer/rendezvous/" + network
}

// Config is what Discovery needs. Zero values take the documented defaults.
type Config struct {
	// Network names a private DHT (/peer/NAME); "" is the public IPFS DHT (/ipfs).
	Network string
	// Mode is the DHT mode. Default ModeAuto.
	Mode Mode
	// PublicOnly keeps private and loopback addresses out of the DHT (public IPFS DHT). Default
	// false: private addresses are accepted, so LANs and loopback networks work.
	PublicOnly bool
	// Bootstrap is the peers to connect to at start and whenever the routing table empties.
	// Default none: the DHT then dials nobody until a peer connects or is connected to.
	Bootstrap []peer.AddrInfo
	// BootstrapTimeout bounds Start's wait for the routing table to hold a peer. Default 10s.
	BootstrapTimeout time.Duration
	// Reprovide is how often every root is provided again. Default 22h; negative: never.
	Reprovide time.Duration
	// ProvideBatch is how many queued roots one round of the provide worker takes. Default 64.
	ProvideBatch int
	// ProvideConcurrency is how many provides of a batch run at once. Default 8.
	ProvideConcurrency int
	// ProvideTimeout bounds one provide. Default 1m.
	ProvideTimeout time.Duration
	// ProvideRetry is the first wait before roots whose provide failed are tried again; each
	// round that fails again doubles it, up to ProvideRetryMax, and a round that succeeds resets
	// it. Roots queued while the routing table is empty are provided as soon as a peer is
	// identified, not after this wait. Default 5s.
	ProvideRetry time.Duration
	// ProvideRetryMax caps the wait between failed provide rounds. Default 30m.
	ProvideRetryMax time.Duration
	// Rendezvous advertises this node under the network's rendezvous key and connects to the
	// peers found there. Default false (node turns it on from its config).
	Rendezvous bool
	// RendezvousInterval is how often the rendezvous key is looked up. Default 5m.
	RendezvousInterval time.Duration
	// RendezvousPeers caps the peers connected to per lookup. Default 16.
	RendezvousPeers int
	// MDNS finds peers on the LAN by multicast DNS. Default false.
	MDNS bool
	// ProviderRecordBytes caps the provider records other peers store on this node (counted
	// with their bookkeeping). Default DefaultProviderBytes (32 MiB).
	ProviderRecordBytes int64
	// ProviderRecordsPerPeer caps the provider records of one provider. Default
	// DefaultProviderPerPeer (10,000).
	ProviderRecordsPerPeer int
	// ValueRecordBytes caps the value records (IPNS, public keys) stored for others on the
	// public DHT; a private network stores none. Default DefaultValueBytes (8 MiB).
	ValueRecordBytes int64
}

func (c *Config) defaults() error {
	if err := ValidateNetwork(c.Network); err != nil {
		return err
	}
	if c.BootstrapTimeout <= 0 {
		c.BootstrapTimeout = 10 * time.Second
	}
	if c.ProviderRecordBytes <= 0 {
		c.ProviderRecordBytes = DefaultProviderBytes
	}
	if c.ProviderRecordsPerPeer <= 0 {
		c.ProviderRecordsPerPeer = DefaultProviderPerPeer
	}
	if c.ValueRecordBytes <= 0 {
		c.ValueRecordBytes = DefaultValueBytes
	}
	if c.Reprovide == 0 {
		c.Reprovide = 22 * time.Hour
	}
	if c.ProvideBatch <= 0 {
		c.ProvideBatch = 64
	}
	if c.ProvideConcurrency <= 0 {
		c.ProvideConcurrency = 8
	}
	if c.ProvideTimeout <= 0 {
		c.ProvideTimeout = time.Minute
	}
	if c.ProvideRetry <= 0 {
		c.ProvideRetry = 5 * time.Second
	}
	if c.ProvideRetryMax <= 0 {
		c.ProvideRetryMax = 30 * time.Minute
	}
	if c.ProvideRetryMax < c.ProvideRetry {
		c.ProvideRetryMax = c.ProvideRetry
	}
	if c.RendezvousInterval <= 0 {
		c.RendezvousInterval = 5 * time.Minute
	}
	if c.RendezvousPeers <= 0 {
		c.RendezvousPeers = 16
	}
	return nil
}

// Discovery is the node's DHT, provider queue, rendezvous and mDNS. New builds it, Start starts
// it, Close stops everything Start started and waits for it.
type Discovery struct {
	h   host.Host
	cfg Config

	// kad is set once by Start and read without d.mu, so goroutines that Close waits for
	// (which holds d.mu) can still reach the DHT.
	kad  atomic.Pointer[dht.IpfsDHT]
	rd   *drouting.RoutingDiscovery
	mdns mdns.Service
	prov *provider
	mode Mode

	providers, values *records // what other peers store on this node; values nil on a private network

	ctx         context.Context
	cancel      context.CancelFunc
	wg          sync.WaitGroup
	mdnsDials   chan struct{} // a slot per dial to an mDNS peer in progress
	mdnsPending chan struct{} // a slot per mDNS peer being connected (waiting or dialing)
	mu          sync.Mutex
	closed      bool
}

// maxMDNSDials bounds the dials to peers found by mDNS made at once, and maxMDNSPending the
// peers found and not yet connected or given up: anyone on the LAN can answer with as many peers
// as it likes.
const (
	maxMDNSDials   = 8
	maxMDNSPending = 64
)

// New checks cfg and builds a Discovery for h. It starts nothing.
func New(h host.Host, cfg Config) (*Discovery, error) {
	if h == nil {
		return nil, errors.New("discovery: no host")
	}
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	d := &Discovery{h: h, cfg: cfg, mdnsDials: make(chan struct{}, maxMDNSDials), mdnsPending: make(chan struct{}, maxMDNSPending)}
	d.prov = newProvider(d)
	return d, nil
}

// Start creates the DHT, connects to the bootstrap peers and waits (at most BootstrapTimeout)
// for the routing table to hold a peer, then starts the provide worker, the rendezvous and mDNS.
// A bootstrap that finds nobody is logged, not an error: the node still serves and can be
// connected to. ctx bounds the start only.
func (d *Discovery) Start(ctx context.Context) (err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case d.closed:
		return errors.New("discovery: closed")
	case d.kad.Load() != nil:
		return errors.New("discovery: already started")
	}
	d.mode = d.cfg.Mode
	dmode := dht.ModeClient
	switch d.cfg.Mode {
	case ModeServer:
		dmode = dht.ModeServer
	case ModeAuto:
		private := onlyPrivateAddrs(d.h.Addrs())
		switch {
		case d.cfg.Network != "" || (private && !d.cfg.PublicOnly):
			dmode, d.mode = dht.ModeServer, ModeServer
		case private:
			// Behind NAT on the public DHT: a server nobody can reach would only slow others'
			// queries, so start as a client and let AutoNAT promote it.
			dmode = dht.ModeAuto
		default:
			dmode = dht.ModeAutoServer
		}
	}
	opts := []dht.Option{
		dht.Mode(dmode),
		dht.ProtocolPrefix(ProtocolPrefix(d.cfg.Network)),
	}
	if d.cfg.PublicOnly {
		opts = append(opts,
			dht.QueryFilter(dht.PublicQueryFilter),
			dht.RoutingTableFilter(dht.PublicRoutingTableFilter),
			dht.AddressFilter(func(as []ma.Multiaddr) []ma.Multiaddr { return ma.FilterAddrs(as, manet.IsPublicAddr) }),
		)
	} else {
		// Accept every address and peer: the defaults of this version already do, and saying
		// so keeps a future default from dropping loopback and LAN peers.
		opts = append(opts,
			dht.QueryFilter(func(any, peer.AddrInfo) bool { return true }),
			dht.RoutingTableFilter(func(any, peer.ID) bool { return true }),
			dht.AddressFilter(func(as []ma.Multiaddr) []ma.Multiaddr { return as }),
		)
	}
	if len(d.cfg.Bootstrap) > 0 {
		opts = append(opts, dht.BootstrapPeers(d.cfg.Bootstrap...))
	}
	// Records other peers store on us are bounded in bytes, and provider records per provider.
	// A network of our own needs only provider records; the public DHT also keeps values (IPNS
	// names, public keys) for its other users.
	d.providers = newRecords(d.cfg.ProviderRecordBytes, d.cfg.ProviderRecordsPerPeer)
	opts = append(opts, dht.ProviderDatastore(d.providers))
	if d.cfg.Network != "" {
		opts = append(opts, dht.DisableValues())
	} else {
		d.values = newRecords(d.cfg.ValueRecordBytes, 0)
		opts = append(opts, dht.ValueDatastore(d.values))
	}
	kad, err := dht.New(d.h, opts...)
	if err != nil {
		return fmt.Errorf("starting DHT: %w", err)
	}
	// rd first: storing kad publishes it to Advertise and FindPeers, which do not take d.mu.
	d.rd = drouting.NewRoutingDiscovery(kad)
	d.kad.Store(kad)
	d.ctx, d.cancel = context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			// Stopped for good: a later Close must not close the DHT again.
			d.closed = true
			err = errors.Join(err, d.stopLocked())
		}
	}()

	if len(d.cfg.Bootstrap) > 0 {
		if err := d.bootstrap(ctx, d.cfg.Bootstrap); err != nil {
			logger().Warn("bootstrap found no peer; the node runs, can be connected to, and tries again", "err", err)
			d.wg.Add(1)
			go func() { defer d.wg.Done(); d.rebootstrap(d.ctx) }()
		}
	}

	d.wg.Add(1)
	go func() { defer d.wg.Done(); d.prov.run(d.ctx) }()

	if d.cfg.Rendezvous {
		d.wg.Add(1)
		go func() { defer d.wg.Done(); d.rendezvous(d.ctx) }()
	}
	if d.cfg.MDNS {
		name := "_peer._udp"
		if d.cfg.Network != "" {
			name = "_peer-" + d.cfg.Network + "._udp"
		}
		d.mdns = mdns.NewMdnsService(d.h, name, notifee{d})
		if err := d.mdns.Start(); err != nil {
			return fmt.Errorf("starting mDNS: %w", err)
		}
	}
	logger().Info("discovery started", "protocol", d.Protocol(), "mode", d.modeName(kad), "bootstrap", len(d.cfg.Bootstrap), "mdns", d.cfg.MDNS, "routing_table", kad.RoutingTable().Size())
	return nil
}

func onlyPrivateAddrs(addrs []ma.Multiaddr) bool {
	for _, a := range addrs {
		if !manet.IsPrivateAddr(a) && !manet.IsIPLoopback(a) {
			return false
		}
	}
	return true
}

// Bootstrap connects to peers (concurrently, each bounded by BootstrapTimeout), asks the DHT to
// refresh, and waits until the routing table holds a peer or BootstrapTimeout passes.
func (d *Discovery) Bootstrap(ctx context.Context, peers []peer.AddrInfo) error {
	if d.DHT() == nil {
		return errors.New("discovery: not started")
	}
	return d.bootstrap(ctx, peers)
}

// BootstrapTag protects the connections to bootstrap peers from the connection manager.
const BootstrapTag = "peer-bootstrap"

func (d *Discovery) bootstrap(ctx context.Context, peers []peer.AddrInfo) error {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.BootstrapTimeout)
	defer cancel()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		ok   int
	)
	for _, ai := range peers {
		if ai.ID == d.h.ID() {
			continue
		}
		// The connection manager never trims the peers the node joins the network through.
		d.h.ConnManager().Protect(ai.ID, BootstrapTag)
		wg.Add(1)
		go func(ai peer.AddrInfo) {
			defer wg.Done()
			err := d.h.Connect(ctx, ai)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", ai.ID, err))
				return
			}
			ok++
		}(ai)
	}
	wg.Wait()
	if ok == 0 && len(errs) > 0 {
		return fmt.Errorf("connecting to bootstrap peers: %w", errors.Join(errs...))
	}
	if err := d.kad.Load().Bootstrap(ctx); err != nil {
		return err
	}
	return d.waitRoutingTable(ctx)
}

// rebootstrap tries the bootstrap peers again, the wait doubling from a second to a minute,
// until the routing table holds a peer (from them or any other) or ctx ends: a node started
// while its bootstrap peers were down or slow to answer joins the network when they are back.
func (d *Discovery) rebootstrap(ctx context.Context) {
	for wait := time.Second; sleepCtx(ctx, wait); wait = min(2*wait, time.Minute) {
		if d.kad.Load().RoutingTable().Size() > 0 {
			return
		}
		if err := d.bootstrap(ctx, d.cfg.Bootstrap); err == nil {
			logger().Info("bootstrap found a peer", "routing_table", d.kad.Load().RoutingTable().Size())
			return
		}
	}
}

// waitRoutingTable returns once the routing table holds a peer, or ctx ends.
func (d *Discovery) waitRoutingTable(ctx context.Context) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for d.kad.Load().RoutingTable().Size() == 0 {
		select {
		case <-ctx.Done():
			return fmt.Errorf("routing table still empty: %w", ctx.Err())
		case <-t.C:
		}
	}
	return nil
}

// Close stops mDNS, the rendezvous, the provide worker and the DHT, and waits for them.
func (d *Discovery) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	return d.stopLocked()
}

func (d *Discovery) stopLocked() error {
	var errs []error
	if d.mdns != nil {
		errs = append(errs, d.mdns.Close())
		d.mdns = nil
	}
	if d.cancel != nil {
		d.cancel()
	}
	d.wg.Wait()
	if kad := d.kad.Load(); kad != nil {
		errs = append(errs, kad.Close())
	}
	return errors.Join(errs...)
}

// DHT is the underlying DHT (nil before Start), for routing needs this package does not cover.
func (d *Discovery) DHT() *dht.IpfsDHT { return d.kad.Load() }

// RoutingTableSize is the number of peers in the DHT routing table (0 before Start).
func (d *Discovery) RoutingTableSize() int {
	if k := d.DHT(); k != nil {
		return k.RoutingTable().Size()
	}
	return 0
}

// Protocol is the DHT protocol ID, e.g. /ipfs/kad/1.0.0.
func (d *Discovery) Protocol() protocol.ID { return ProtocolPrefix(d.cfg.Network) + "/kad/1.0.0" }

// ModeName is "server", "client" or "auto" (auto: AutoNAT's reachability decides).
func (d *Discovery) ModeName() string { return d.modeName(d.DHT()) }

func (d *Discovery) modeName(k *dht.IpfsDHT) string {
	if k != nil {
		switch k.Mode() {
		case dht.ModeServer:
			return "server"
		case dht.ModeClient:
			return "client"
		}
	}
	switch d.mode {
	case ModeServer:
		return "server"
	case ModeClient:
		return "client"
	}
	return "auto"
}

// FindProviders streams the providers of c other than this node; the channel closes when the
// search ends or ctx does. Bound ctx (the search otherwise walks the whole DHT) and cancel it
// when you stop reading early, which ends the search.
func (d *Discovery) FindProviders(ctx context.Context, c cid.Cid) <-chan peer.AddrInfo {
	k := d.DHT()
	if k == nil {
		out := make(chan peer.AddrInfo)
		close(out)
		return out
	}
	return d.withoutSelf(ctx, k.FindProvidersAsync(ctx, c, 0))
}

// withoutSelf forwards in, less this node, until in closes or ctx ends.
func (d *Discovery) withoutSelf(ctx context.Context, in <-chan peer.AddrInfo) <-chan peer.AddrInfo {
	out := make(chan peer.AddrInfo)
	go func() {
		defer close(out)
		for ai := range in {
			if ai.ID == d.h.ID() {
				continue
			}
			select {
			case out <- ai:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// Advertise announces this node under rendezvous key ns once (a provider record valid ~24h).
func (d *Discovery) Advertise(ctx context.Context, ns string) error {
	if d.DHT() == nil {
		return errors.New("discovery: not started")
	}
	_, err := d.rd.Advertise(ctx, ns)
	return err
}

// FindPeers streams peers advertised under rendezvous key ns (at most limit; 0: 100).
func (d *Discovery) FindPeers(ctx context.Context, ns string, limit int) (<-chan peer.AddrInfo, error) {
	if d.DHT() == nil {
		return nil, errors.New("discovery: not started")
	}
	if limit <= 0 {
		limit = 100
	}
	ch, err := d.rd.FindPeers(ctx, ns, coredisc.Limit(limit))
	if err != nil {
		return nil, err
	}
	return d.withoutSelf(ctx, ch), nil
}

// rendezvous advertises the network's key and connects to the peers found under it: once the
// routing table holds a peer, then every RendezvousInterval (advertising every 3h).
func (d *Discovery) rendezvous(ctx context.Context) {
	ns := RendezvousKey(d.cfg.Network)
	var lastAdvertised time.Time
	t := time.NewTicker(time.Second)
	defer t.Stop()
	next := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if now.Before(next) || d.kad.Load().RoutingTable().Size() == 0 {
				continue
			}
			if now.Sub(lastAdvertised) > 3*time.Hour*7/8 {
				actx, cancel := context.WithTimeout(ctx, time.Minute)
				if err := d.Advertise(actx, ns); err != nil {
					logger().Debug("rendezvous advertise failed", "err", err)
				} else {
					lastAdvertised = now
				}
				cancel()
			}
			d.connectRendezvous(ctx, ns)
			next = time.Now().Add(d.cfg.RendezvousInterval)
		}
	}
}

func (d *Discovery) connectRendezvous(ctx context.Context, ns string) {
	fctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	ch, err := d.FindPeers(fctx, ns, d.cfg.RendezvousPeers)
	if err != nil {
		logger().Debug("rendezvous lookup failed", "err", err)
		return
	}
	for ai := range ch {
		if len(ai.Addrs) == 0 || d.h.Network().Connectedness(ai.ID) == network.Connected {
			continue
		}
		cctx, ccancel := context.WithTimeout(fctx, 10*time.Second)
		if err := d.h.Connect(cctx, ai); err != nil {
			logger().Debug("rendezvous connect failed", "peer", ai.ID.ShortString(), "err", err)
		}
		ccancel()
	}
}

// notifee connects to the peers mDNS finds. HandlePeerFound is called from the mDNS
// goroutine and must not block it, so it connects in a goroutine of ours. mDNS reports a peer
// once, so a peer found is not dropped because others are being dialed: it waits for one of the
// maxMDNSDials slots. Only past maxMDNSPending peers in hand (a LAN flooding us) is one skipped.
type notifee struct{ d *Discovery }

func (n notifee) HandlePeerFound(ai peer.AddrInfo) {
	d := n.d
	if ai.ID == d.h.ID() || d.h.Network().Connectedness(ai.ID) == network.Connected {
		return
	}
	ctx := d.ctx
	if ctx == nil || ctx.Err() != nil {
		return
	}
	select {
	case d.mdnsPending <- struct{}{}:
	default:
		logger().Debug("mDNS peer skipped: too many peers being connected", "peer", ai.ID.ShortString())
		return
	}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		defer func() { <-d.mdnsPending }()
		if err := d.connectLAN(ctx, ai); err != nil {
			logger().Debug("mDNS peer unreachable", "peer", ai.ID.ShortString(), "err", err)
			return
		}
		logger().Info("found peer on the LAN", "peer", ai.ID.ShortString())
	}()
}

// lanDialDelay is how long the end of a LAN pair with the larger peer ID waits for the other to
// dial before it dials itself.
const lanDialDelay = 2 * time.Second

// connectLAN connects to a peer found by mDNS. Two peers usually find each other at the same
// moment, and if both dialed at once, TCP's simultaneous open (libp2p dials from the port it
// listens on) could merge the two dials into one connection whose two TLS clients both fail;
// mDNS reports a peer once, so the pair would stay apart. So the end with the smaller peer ID
// dials at once and the other only if no connection came meanwhile, and a failed dial is tried
// once more.
func (d *Discovery) connectLAN(ctx context.Context, ai peer.AddrInfo) error {
	connected := func() bool { return d.h.Network().Connectedness(ai.ID) == network.Connected }
	if d.h.ID() > ai.ID && !sleepCtx(ctx, lanDialDelay) {
		return ctx.Err()
	}
	var err error
	for attempt := range 2 {
		if attempt > 0 && !sleepCtx(ctx, time.Second+time.Duration(rand.Int64N(int64(time.Second)))) {
			return ctx.Err()
		}
		if connected() {
			return nil
		}
		select {
		case d.mdnsDials <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err = d.h.Connect(cctx, ai)
		cancel()
		<-d.mdnsDials
		if err == nil {
			return nil
		}
	}
	return err
}

// sleepCtx waits for d or until ctx ends; it reports whether the wait was whole.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
