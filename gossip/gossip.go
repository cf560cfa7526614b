package gossip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/time/rate"
	"google.golang.org/protobuf/proto"
)

// TopicName is the pubsub topic of a network: "/peer/announce/1/" + network,
// with network "ipfs" when it is empty (the public network).
func TopicName(network string) string {
	if network == "" {
		network = "ipfs"
	}
	return "/peer/announce/1/" + network
}

// Config tunes a Gossip. Zero fields take the value of DefaultConfig. All
// nodes of a network should use the same MaxClockSkew, RatePerPeer and Burst:
// a node rejects (and scores down) a sender that exceeds its own limits.
type Config struct {
	// Network names the network; it selects the topic (see TopicName).
	// Default "" (the public network, topic "/peer/announce/1/ipfs").
	Network string
	// MaxClockSkew rejects announcements dated more than this after the
	// receiver's clock. Default 5 minutes.
	MaxClockSkew time.Duration
	// RatePerPeer is the sustained number of announcements per second
	// accepted from one sender, with bursts of up to Burst. A sender's
	// first hop rejects the excess (and scores the sender down); later hops
	// ignore it. Publish paces itself below these limits. Defaults 2/s and
	// 20.
	RatePerPeer float64
	Burst       int
	// PublishWait bounds how long Publish waits for a first mesh peer when
	// the node is connected but has none yet, so that announcements made
	// right after start-up are not lost. After it, or at once on a node with
	// no connection at all, Publish sends anyway (reaching nobody now; peers
	// that join later get it by catalog exchange). Default 10 seconds.
	PublishWait time.Duration
	// Shared, if set, returns what this node currently shares. Peers that
	// join the topic get these announcements (signed by this node) through
	// the catalog exchange, so shares made before a restart need not be
	// published again. It is called from the exchange handler goroutine and
	// must not block for long. Default nil (only announcements this node has
	// published or seen are offered).
	Shared func() []Announcement
	// CatalogLimit is the number of signed announcements (latest per
	// provider and root) kept in memory to offer in the catalog exchange,
	// at most a tenth of them (and at least 1000) by one provider; past it
	// the one received longest ago is dropped. Default 10000 (about 3 MB).
	CatalogLimit int
	// ExchangeTimeout bounds one catalog exchange, request and reply.
	// Default 30 seconds.
	ExchangeTimeout time.Duration
	// CatalogRefresh is how long to wait before asking the same peer for its
	// catalog again when it rejoins the topic. Default 10 minutes.
	CatalogRefresh time.Duration
	// Logger receives the package's logs. Default slog.Default().
	Logger *slog.Logger
}

// DefaultConfig returns the configuration of a node of the public network.
func DefaultConfig() Config {
	return Config{
		Network:         "",
		MaxClockSkew:    5 * time.Minute,
		RatePerPeer:     2,
		Burst:           20,
		PublishWait:     10 * time.Second,
		CatalogLimit:    10000,
		ExchangeTimeout: 30 * time.Second,
		CatalogRefresh:  10 * time.Minute,
	}
}

func (c *Config) fill() error {
	d := DefaultConfig()
	if c.MaxClockSkew == 0 {
		c.MaxClockSkew = d.MaxClockSkew
	}
	if c.RatePerPeer == 0 {
		c.RatePerPeer = d.RatePerPeer
	}
	if c.Burst == 0 {
		c.Burst = d.Burst
	}
	if c.PublishWait == 0 {
		c.PublishWait = d.PublishWait
	}
	if c.CatalogLimit == 0 {
		c.CatalogLimit = d.CatalogLimit
	}
	if c.ExchangeTimeout == 0 {
		c.ExchangeTimeout = d.ExchangeTimeout
	}
	if c.CatalogRefresh == 0 {
		c.CatalogRefresh = d.CatalogRefresh
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	switch {
	case c.MaxClockSkew < 0:
		return fmt.Errorf("MaxClockSkew %v is negative", c.MaxClockSkew)
	case c.RatePerPeer < 0:
		return fmt.Errorf("RatePerPeer %v is negative", c.RatePerPeer)
	case c.Burst < 1:
		return fmt.Errorf("burst %d is below 1", c.Burst)
	case c.PublishWait < 0:
		return fmt.Errorf("PublishWait %v is negative", c.PublishWait)
	case c.CatalogLimit < 0:
		return fmt.Errorf("CatalogLimit %d is negative", c.CatalogLimit)
	case c.ExchangeTimeout < 0:
		return fmt.Errorf("ExchangeTimeout %v is negative", c.ExchangeTimeout)
	case c.CatalogRefresh < 0:
		return fmt.Errorf("CatalogRefresh %v is negative", c.CatalogRefresh)
	}
	return nil
}

// Stats counts what a Gossip has seen since Start.
type Stats struct {
	Published uint64 // announcements this node published
	Delivered uint64 // announcements from other peers handed to the callback
	Catalog   uint64 // of those, how many came by catalog exchange
	// Rejected counts refused messages by reason: the rule the validator
	// applied (e.g. "invalid file name", "rate limit") or the pubsub reason
	// for messages refused before it ran (e.g. "invalid signature",
	// "missing signature"). Messages relayed from over-rate senders, which
	// are ignored rather than rejected, count as "rate limit (relayed)";
	// messages and catalog entries past a budget (see budgets), also
	// ignored, as "forwarder rate", "forwarder hourly budget", "author
	// hourly budget" or "new authors budget".
	Rejected map[string]uint64
}

const (
	reasonRate        = "rate limit"
	reasonRateRelayed = "rate limit (relayed)"
	reasonAuthor      = "bad author"
)

// Gossip publishes and receives announcements on the topic of one network.
// It is safe for concurrent use.
type Gossip struct {
	h     host.Host
	cfg   Config
	log   *slog.Logger
	topic string
	opts  []pubsub.Option

	pubLimiter *rate.Limiter
	limiters   *limiters
	budgets    *budgets
	cache      *catalog
	serveGate  *serveGate

	mu      sync.Mutex
	started bool
	closed  bool
	ctx     context.Context // the router's; Close cancels it
	cancel  context.CancelFunc
	ps      *pubsub.PubSub
	t       *pubsub.Topic
	sub     *pubsub.Subscription
	evh     *pubsub.TopicEventHandler
	asked   map[peer.ID]time.Time // when we last asked a peer for its catalog
	served  map[peer.ID]time.Time // when a peer last gave us its catalog
	wg      sync.WaitGroup
	queue   chan Announcement
	scores  atomic.Pointer[map[peer.ID]float64]

	statsMu sync.Mutex
	stats   Stats

	meshMu sync.Mutex // never held while calling into pubsub
	mesh   map[peer.ID]struct{}
	joined chan struct{} // closed and replaced when a peer joins the topic or our mesh
}

// New prepares a Gossip on h: gossipsub with StrictSign (every message is
// signed by its author and verified by every receiver), flood publishing
// (our own announcements go to every topic peer, not only the mesh, so they
// are not lost while the mesh forms) and peer scoring (see scoreParams).
// It checks cfg and builds the router options but starts nothing: the
// gossipsub router starts goroutines and stream handlers when built, so
// Start builds it.
func New(h host.Host, cfg Config) (*Gossip, error) {
	if h == nil {
		return nil, errors.New("nil host")
	}
	if err := cfg.fill(); err != nil {
		return nil, fmt.Errorf("gossip config: %w", err)
	}
	if h.Peerstore().PrivKey(h.ID()) == nil {
		return nil, fmt.Errorf("no private key for host %s: announcements must be signed", h.ID())
	}
	g := &Gossip{
		h:     h,
		cfg:   cfg,
		log:   cfg.Logger.With("pkg", "gossip"),
		topic: TopicName(cfg.Network),
		// Pace our own announcements below what receivers accept, so a
		// node sharing a large directory is never rate limited by its peers
		// (who would score it down): 80% of the rate, half the burst.
		pubLimiter: rate.NewLimiter(rate.Limit(cfg.RatePerPeer*0.8), max(1, cfg.Burst/2)),
		limiters:   newLimiters(rate.Limit(cfg.RatePerPeer), cfg.Burst),
		budgets:    newBudgets(),
		cache:      newCatalog(cfg.CatalogLimit),
		// Serve 4 catalogs at a time, each peer at most once a minute (or
		// once per CatalogRefresh if shorter).
		serveGate: newServeGate(4, min(time.Minute, cfg.CatalogRefresh)),
		joined:    make(chan struct{}),
		asked:     make(map[peer.ID]time.Time),
		served:    make(map[peer.ID]time.Time),
		queue:     make(chan Announcement, 1024),
		mesh:      make(map[peer.ID]struct{}),
	}
	g.stats.Rejected = make(map[string]uint64)
	sp, th := scoreParams(g.topic, g.budgets.score)
	g.opts = []pubsub.Option{
		pubsub.WithMessageSignaturePolicy(pubsub.StrictSign),
		pubsub.WithFloodPublish(true),
		pubsub.WithPeerScore(sp, th),
		pubsub.WithPeerScoreInspect(pubsub.PeerScoreInspectFn(g.storeScores), time.Second),
		// Our validator is cheap and runs inline, so the throttle on
		// concurrent asynchronous validations (WithValidateThrottle) does
		// not apply; the queue in front of the validation workers is
		// enlarged so that a burst of announcements is not dropped.
		pubsub.WithValidateQueueSize(256),
		pubsub.WithRawTracer(rejectTracer{g}),
		// Only our topic is tracked: a peer announcing a million other topics
		// made pubsub keep a map entry for each. An RPC with more
		// subscriptions than a node ever needs is ignored whole.
		pubsub.WithSubscriptionFilter(pubsub.WrapLimitSubscriptionFilter(
			pubsub.NewAllowlistSubscriptionFilter(g.topic), maxSubscriptionsPerRPC)),
		// An announcement is at most MaxMessageSize; the RPCs that carry them
		// (with gossip control messages, which pubsub splits to fit) need far
		// less than pubsub's 1 MiB default, which is what a peer can make each
		// stream buffer.
		pubsub.WithMaxMessageSize(maxRPCSize),
		pubsub.WithMaxControlMessageSize(maxRPCSize),
	}
	return g, nil
}

const (
	// maxRPCSize caps one gossipsub RPC frame, read or written: room for 64
	// announcements, or for an IHAVE of pubsub's 5,000 message IDs.
	maxRPCSize = 256 << 10
	// maxSubscriptionsPerRPC: a node subscribes to one topic; an RPC listing
	// more than this is ignored.
	maxSubscriptionsPerRPC = 100
)

// Topic returns the name of the topic g uses.
func (g *Gossip) Topic() string { return g.topic }

// Start builds the gossipsub router, registers the validator, joins the
// topic and serves the catalog exchange. From then until Close it delivers
// every valid announcement from other peers to fn, from one goroutine, in
// arrival order; fn is never called concurrently and may block briefly
// (while it blocks, announcements queue up to a bound and then pubsub drops
// them). Announcements this node publishes are not delivered to fn. ctx
// bounds only the start-up; Close stops everything.
func (g *Gossip) Start(ctx context.Context, fn func(Announcement)) error {
	if fn == nil {
		return errors.New("starting gossip: nil callback")
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case g.closed:
		return errors.New("starting gossip: closed")
	case g.started:
		return errors.New("starting gossip: already started")
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("starting gossip: %w", err)
	}
	rctx, cancel := context.WithCancel(context.Background())
	ps, err := pubsub.NewGossipSub(rctx, g.h, g.opts...)
	if err != nil {
		cancel()
		return fmt.Errorf("starting gossipsub: %w", err)
	}
	fail := func(what string, err error) error {
		cancel()
		g.removeHandlers()
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := ps.RegisterTopicValidator(g.topic, pubsub.ValidatorEx(g.validate), pubsub.WithValidatorInline(true)); err != nil {
		return fail("registering validator", err)
	}
	t, err := ps.Join(g.topic)
	if err != nil {
		return fail("joining topic", err)
	}
	evh, err := t.EventHandler()
	if err != nil {
		return fail("watching topic peers", err)
	}
	sub, err := t.Subscribe(pubsub.WithBufferSize(1024))
	if err != nil {
		return fail("subscribing", err)
	}
	g.h.SetStreamHandler(CatalogProtocol, g.handleCatalog)
	g.started, g.ctx, g.cancel, g.ps, g.t, g.sub, g.evh = true, rctx, cancel, ps, t, sub, evh
	g.wg.Add(5)
	go func() { defer g.wg.Done(); g.readLoop(rctx, sub) }()
	go func() { defer g.wg.Done(); g.deliverLoop(rctx, fn) }()
	go func() { defer g.wg.Done(); g.peerLoop(rctx, evh) }()
	go func() { defer g.wg.Done(); g.limiters.janitor(rctx) }()
	go func() { defer g.wg.Done(); g.budgets.janitor(rctx) }()
	g.log.Debug("gossip started", "topic", g.topic)
	return nil
}

func (g *Gossip) removeHandlers() {
	g.h.RemoveStreamHandler(CatalogProtocol)
	for _, p := range pubsub.GossipSubDefaultProtocols {
		g.h.RemoveStreamHandler(p)
	}
}

// Close leaves the topic, stops the router and the catalog exchange (ends
// the catalogs being served), and waits for every goroutine Start started
// and every catalog handler. It is idempotent.
func (g *Gossip) Close() error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil
	}
	g.closed = true
	started := g.started
	g.mu.Unlock()
	if !started {
		return nil
	}
	g.sub.Cancel()
	g.evh.Cancel()
	g.cancel()
	g.removeHandlers()
	g.wg.Wait()
	return nil
}

// Publish signs a (through pubsub, with the host's key) and sends it to the
// topic. A zero a.Time is set to now; a.Provider is ignored. Publish first
// paces itself under the receivers' rate limit, then, if the node is
// connected but has no mesh peer yet, waits up to Config.PublishWait for one:
// a publish before the mesh forms reaches only the direct neighbours,
// although pubsub reports no error. After the wait (or at once with no
// connection at all) it sends anyway and returns nil. It returns an error if
// a is invalid, the Gossip is not started or closed, or ctx ends.
func (g *Gossip) Publish(ctx context.Context, a Announcement) error {
	t, err := g.topicHandle()
	if err != nil {
		return fmt.Errorf("publishing: %w", err)
	}
	if a.Time.IsZero() {
		a.Time = time.Now()
	}
	a.Provider = ""
	if err := a.Validate(time.Now(), g.cfg.MaxClockSkew); err != nil {
		return fmt.Errorf("publishing: %w", err)
	}
	data, err := a.MarshalBinary()
	if err != nil {
		return fmt.Errorf("publishing: %w", err)
	}
	if err := g.pubLimiter.Wait(ctx); err != nil {
		return fmt.Errorf("publishing: pacing: %w", err)
	}
	g.waitReady(ctx)
	if err := t.Publish(ctx, data); err != nil {
		return fmt.Errorf("publishing %s: %w", a.Root, err)
	}
	g.statsMu.Lock()
	g.stats.Published++
	g.statsMu.Unlock()
	return nil
}

func (g *Gossip) topicHandle() (*pubsub.Topic, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case g.closed:
		return nil, errors.New("gossip closed")
	case !g.started:
		return nil, errors.New("gossip not started")
	}
	return g.t, nil
}

// waitReady returns once this node has a mesh peer on the topic,
// PublishWait has passed, or ctx is done. A flood publish reaches every
// topic peer, but those peers forward only to their own mesh, which forms at
// the heartbeat after a peer joins: a message sent before that reaches the
// direct neighbours only, and gossipsub never re-sends it to mesh peers. Having a
// mesh peer ourselves means at least one heartbeat has passed since our
// peers appeared.
func (g *Gossip) waitReady(ctx context.Context) {
	timer := time.NewTimer(g.cfg.PublishWait)
	defer timer.Stop()
	for {
		g.meshMu.Lock()
		ready := len(g.mesh) > 0
		joined := g.joined
		g.meshMu.Unlock()
		// A node with no connection at all has nobody to wait for: peers that come later learn
		// the announcement by catalog exchange.
		if ready || len(g.h.Network().Peers()) == 0 {
			return
		}
		select {
		case <-joined:
		case <-timer.C:
			g.log.Debug("publishing before the mesh formed", "topic", g.topic, "peers", len(g.Peers()))
			return
		case <-ctx.Done():
			return
		}
	}
}

// signalLocked wakes the publishers waiting in waitReady. meshMu is held.
func (g *Gossip) signalLocked() {
	close(g.joined)
	g.joined = make(chan struct{})
}

// MeshPeers returns the topic peers in this node's gossipsub mesh: the peers
// it forwards announcements to (its own go to every topic peer).
func (g *Gossip) MeshPeers() []peer.ID {
	g.meshMu.Lock()
	defer g.meshMu.Unlock()
	return slices.Collect(maps.Keys(g.mesh))
}

// Peers returns the peers known to be subscribed to the topic.
func (g *Gossip) Peers() []peer.ID {
	t, err := g.topicHandle()
	if err != nil {
		return nil
	}
	return t.ListPeers()
}

// Scores returns the latest gossipsub peer scores (refreshed every second),
// by peer.
func (g *Gossip) Scores() map[peer.ID]float64 {
	m := g.scores.Load()
	if m == nil {
		return map[peer.ID]float64{}
	}
	return maps.Clone(*m)
}

func (g *Gossip) storeScores(m map[peer.ID]float64) {
	m = maps.Clone(m)
	g.scores.Store(&m)
}

// Stats returns a copy of the counters.
func (g *Gossip) Stats() Stats {
	g.statsMu.Lock()
	defer g.statsMu.Unlock()
	s := g.stats
	s.Rejected = maps.Clone(g.stats.Rejected)
	return s
}

func (g *Gossip) countReject(why string) {
	g.statsMu.Lock()
	g.stats.Rejected[why]++
	g.statsMu.Unlock()
}

// validate is the topic validator. pubsub has verified the signature against
// msg.From (StrictSign) before calling it; src is the peer that forwarded the
// message, which is the author only on its first hop.
func (g *Gossip) validate(_ context.Context, src peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
	local := src == g.h.ID()
	from, err := peer.IDFromBytes(msg.Message.GetFrom())
	if err != nil {
		g.countReject(reasonAuthor)
		return pubsub.ValidationReject
	}
	var a Announcement
	if err := a.UnmarshalBinary(msg.GetData()); err != nil {
		return g.reject(src, from, err)
	}
	if err := a.Validate(time.Now(), g.cfg.MaxClockSkew); err != nil {
		return g.reject(src, from, err)
	}
	if !local && from != g.h.ID() && !g.limiters.allow(from) {
		if src == from {
			// The author itself is flooding us: reject, so its score drops.
			g.countReject(reasonRate)
			g.log.Debug("rejecting announcement over rate", "author", shortID(from))
			return pubsub.ValidationReject
		}
		// Relayed: the forwarder may be honest (its own limiter let the
		// burst through); neither forward nor penalize it.
		g.countReject(reasonRateRelayed)
		return pubsub.ValidationIgnore
	}
	if !local && from != g.h.ID() {
		// Past the budgets of the forwarder, the author or new authors, a message is ignored:
		// not forwarded, not delivered, and not held against the forwarder, which may be an
		// honest relay of an honest burst (another mesh peer may then bring it, within its own
		// budget). A forwarder of strangers is scored down instead (budgets.score).
		if why := g.budgets.admit(src, from, g.connected(from), true, time.Now()); why != "" {
			g.countReject(why)
			return pubsub.ValidationIgnore
		}
	}
	a.Provider = from
	msg.ValidatorData = a
	return pubsub.ValidationAccept
}

func (g *Gossip) connected(p peer.ID) bool {
	return g.h.Network().Connectedness(p) == network.Connected
}

func (g *Gossip) reject(src, from peer.ID, err error) pubsub.ValidationResult {
	g.countReject(reason(err))
	g.log.Debug("rejecting announcement", "from", shortID(src), "author", shortID(from), "err", err)
	return pubsub.ValidationReject
}

// readLoop moves accepted messages from the subscription to the delivery
// queue, keeping the latest of each in the catalog cache.
func (g *Gossip) readLoop(ctx context.Context, sub *pubsub.Subscription) {
	for {
		msg, err := sub.Next(ctx)
		if err != nil {
			return
		}
		a, ok := msg.ValidatorData.(Announcement)
		if !ok {
			continue // cannot happen: the validator accepted it
		}
		raw, err := proto.Marshal(msg.Message)
		if err != nil {
			continue
		}
		fresh := g.cache.offer(a, raw, time.Now())
		if a.Provider == g.h.ID() || !fresh {
			continue
		}
		select {
		case g.queue <- a:
		case <-ctx.Done():
			return
		}
	}
}

// enqueue hands an announcement learnt by catalog exchange to the delivery
// goroutine.
func (g *Gossip) enqueue(ctx context.Context, a Announcement) bool {
	select {
	case g.queue <- a:
		g.statsMu.Lock()
		g.stats.Catalog++
		g.statsMu.Unlock()
		return true
	case <-ctx.Done():
		return false
	}
}

func (g *Gossip) deliverLoop(ctx context.Context, fn func(Announcement)) {
	for {
		select {
		case a := <-g.queue:
			g.statsMu.Lock()
			g.stats.Delivered++
			g.statsMu.Unlock()
			fn(a)
		case <-ctx.Done():
			return
		}
	}
}

// peerLoop watches peers join the topic: it wakes publishers waiting for a
// first peer and asks each new peer for its catalog.
func (g *Gossip) peerLoop(ctx context.Context, evh *pubsub.TopicEventHandler) {
	sem := make(chan struct{}, 4) // concurrent exchanges
	for {
		ev, err := evh.NextPeerEvent(ctx)
		if err != nil {
			return
		}
		if ev.Type != pubsub.PeerJoin {
			continue
		}
		g.meshMu.Lock()
		g.signalLocked()
		g.meshMu.Unlock()
		g.mu.Lock()
		now := time.Now()
		last, seen := g.asked[ev.Peer]
		ask := !seen || now.Sub(last) >= g.cfg.CatalogRefresh
		if ask {
			g.asked[ev.Peer] = now
			for p, t := range g.asked {
				if now.Sub(t) >= g.cfg.CatalogRefresh {
					delete(g.asked, p)
				}
			}
		}
		g.mu.Unlock()
		if !ask {
			continue
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		g.wg.Add(1)
		go func(p peer.ID) {
			defer g.wg.Done()
			g.exchangeWith(ctx, p, sem)
		}(ev.Peer)
	}
}

// Retrying a refused catalog exchange: a peer refuses when it already serves as many catalogs
// as it will (or is gone), so the exchange is tried again soon, after 2 s, 4 s, 8 s … up to
// catalogRetryMax, catalogRetries times in all: first with another topic peer that has not
// given us its catalog within CatalogRefresh, if there is one (a newcomer gets a catalog from
// someone at once), and then with the peer that refused (it may hold entries no one else does).
const (
	catalogRetries    = 6
	catalogRetryFirst = 2 * time.Second
	catalogRetryMax   = time.Minute
)

// exchangeWith fetches p's catalog, holding a slot of sem (taken by the caller) while it runs;
// after a failure it waits, without the slot, and tries the peer retryPeer picks, until p has
// given its catalog or the tries run out.
func (g *Gossip) exchangeWith(ctx context.Context, p peer.ID, sem chan struct{}) {
	wait := catalogRetryFirst
	target := p
	for attempt := 0; ; attempt++ {
		n, err := g.fetchCatalog(ctx, target)
		<-sem
		if ctx.Err() != nil {
			return
		}
		if err == nil || errors.Is(err, errBadEntry) {
			// A peer that forged an entry is not asked again either (until CatalogRefresh).
			g.mu.Lock()
			g.served[target] = time.Now()
			g.mu.Unlock()
		}
		if err == nil {
			g.log.Debug("catalog exchange done", "peer", shortID(target), "new", n)
		} else {
			g.log.Debug("catalog exchange failed", "peer", shortID(target), "attempt", attempt+1, "err", err)
		}
		if target == p && (err == nil || errors.Is(err, errBadEntry)) || attempt+1 >= catalogRetries {
			return
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
		wait = min(2*wait, catalogRetryMax)
		if target = g.retryPeer(p); target == "" {
			return
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
	}
}

// retryPeer picks whom to ask after p refused us: a topic peer other than p that has not given
// us its catalog within CatalogRefresh, else p if it has not either and is still a topic peer,
// else "".
func (g *Gossip) retryPeer(p peer.ID) peer.ID {
	peers := g.Peers()
	g.mu.Lock()
	defer g.mu.Unlock()
	now := time.Now()
	for q, t := range g.served {
		if now.Sub(t) >= g.cfg.CatalogRefresh {
			delete(g.served, q)
		}
	}
	pick := peer.ID("")
	for _, q := range peers {
		if _, ok := g.served[q]; ok {
			continue
		}
		if q != p {
			pick = q
			break
		}
		pick = q
	}
	if pick != "" {
		g.asked[pick] = now
	}
	return pick
}

// shortID is the compact log form of a peer ID.
func shortID(p peer.ID) string {
	s := p.String()
	if len(s) > 10 {
		return "…" + s[len(s)-8:]
	}
	return s
}

// limiters holds one token bucket per sender.
type limiters struct {
	r     rate.Limit
	burst int
	mu    sync.Mutex
	m     map[peer.ID]*rate.Limiter
}

func newLimiters(r rate.Limit, burst int) *limiters {
	return &limiters{r: r, burst: burst, m: make(map[peer.ID]*rate.Limiter)}
}

func (l *limiters) allow(p peer.ID) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, ok := l.m[p]
	if !ok {
		lim = rate.NewLimiter(l.r, l.burst)
		l.m[p] = lim
	}
	return lim.Allow()
}

// janitor forgets the buckets that have refilled, which behave exactly like
// new ones, so the map holds only recently active senders.
func (l *limiters) janitor(ctx context.Context) {
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			now := time.Now()
			l.mu.Lock()
			for p, lim := range l.m {
				if lim.TokensAt(now) >= float64(l.burst) {
					delete(l.m, p)
				}
			}
			l.mu.Unlock()
		case <-ctx.Done():
			return
		}
	}
}
