package transfer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/time/rate"

	"peer/transfer/wire"
)

// ID is the libp2p protocol ID of the block exchange.
const ID = "/peer/transfer/1.0.0"

var (
	// ErrNotFound is wrapped by Blockstore.Get for a block it does not hold.
	ErrNotFound = errors.New("block not found")
	// ErrNoProviders ends a Fetch when no peer can serve what is missing.
	ErrNoProviders = errors.New("no providers")
	// ErrBadBlock is reported for a peer that sent a block whose hash does
	// not match its CID.
	ErrBadBlock = errors.New("block does not match its CID")
	// ErrUnrequested is reported for a peer that answered a CID never asked.
	ErrUnrequested = errors.New("answer for a CID that was not requested")
	// ErrClosed is returned by Fetch and Start after Close.
	ErrClosed = errors.New("transfer closed")
	// ErrStalled is the reason a peer that stopped sending is dropped.
	ErrStalled = errors.New("peer stalled")
	// ErrInvalidDAG is wrapped by a Request's Expand or Deliver for a block
	// that matches its CID but contradicts what its parent said of it (a
	// size): the fetch fails, and the peer that sent the parent is dropped
	// and banned.
	ErrInvalidDAG = errors.New("block contradicts its parent")
)

// Blockstore is where the server side reads the blocks it serves. Get may be
// called from many goroutines at once; it returns an error wrapping
// ErrNotFound for a missing block. The returned slice is only read, and not
// retained after the block is written.
type Blockstore interface {
	Get(ctx context.Context, c cid.Cid) ([]byte, error)
}

// BlockReleaser is implemented by a Blockstore that reuses the slices Get returns: the server
// hands each one back through Release once its bytes are written, or when it drops it. Release
// may be called from any goroutine.
type BlockReleaser interface {
	Release(data []byte)
}

// ServerStats counts what the server side did since Start.
type ServerStats struct {
	Streams         int64 // streams accepted
	StreamsRejected int64 // streams reset at once (too many from one peer, closed)
	Wants           int64 // CIDs requested by peers
	Blocks          int64 // blocks sent
	Bytes           int64 // block bytes sent
	DontHaves       int64 // DontHave answers sent
	// BytesHeld is the serving memory streams hold now: blocks read from the store and not yet
	// written out, and reservations for reads in progress. BytesHeldPeak is its highest value;
	// neither ever exceeds the serving budget (WithServeMemory).
	BytesHeld     int64
	BytesHeldPeak int64
	// StreamsEvicted counts streams reset because they sat on a block write for more than 2 s
	// while other streams waited for serving memory.
	StreamsEvicted int64
}

// Transfer is the block-exchange service of one host: the server that
// answers other peers and the client that fetches DAGs from them.
type Transfer struct {
	h       host.Host
	bs      Blockstore
	cfg     config
	cfgErr  error
	log     *slog.Logger
	limiter *rate.Limiter
	mem     *serveMemory

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	started bool
	closed  bool
	streams map[peer.ID]int       // open server streams per peer
	sending map[peer.ID]*sentTo   // what was sent to each peer with open server streams
	banned  map[peer.ID]time.Time // misbehaving peers, until when

	served struct {
		streams, rejected, wants, blocks, bytes, dontHaves atomic.Int64
	}
	fetches atomic.Uint64 // fetches started, to name each one's connection protection
}

// New builds a Transfer serving blocks from bs (nil: it holds nothing and
// answers DontHave). It starts nothing; an invalid option is reported by
// Start and Fetch.
func New(h host.Host, bs Blockstore, opts ...Option) *Transfer {
	cfg := defaultConfig()
	var errs []error
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			errs = append(errs, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	t := &Transfer{
		h:       h,
		bs:      bs,
		cfg:     cfg,
		cfgErr:  errors.Join(errs...),
		log:     cfg.logger,
		ctx:     ctx,
		cancel:  cancel,
		streams: make(map[peer.ID]int),
		sending: make(map[peer.ID]*sentTo),
		banned:  make(map[peer.ID]time.Time),
		mem:     newServeMemory(cfg.serveMemory, cfg.serveMemoryPerPeer),
	}
	if cfg.rateLimit > 0 {
		t.limiter = rate.NewLimiter(rate.Limit(cfg.rateLimit), wire.MaxFrameSize+16)
	}
	return t
}

// RateLimit is the token bucket that WithRateLimit set (nil: no cap). Another protocol the node
// serves blocks over may take from it too, so that the cap holds over everything sent.
func (t *Transfer) RateLimit() *rate.Limiter { return t.limiter }

// Start registers the stream handler: from then on the host serves blocks.
func (t *Transfer) Start() error {
	if t.cfgErr != nil {
		return fmt.Errorf("transfer options: %w", t.cfgErr)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return ErrClosed
	}
	if t.started {
		return errors.New("transfer already started")
	}
	t.started = true
	t.h.SetStreamHandler(ID, t.handleStream)
	return nil
}

// Close removes the stream handler, ends every stream being served and
// every Fetch in progress, and waits for them. It must not be called from
// a Request callback (it would wait for itself).
func (t *Transfer) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	started := t.started
	t.mu.Unlock()
	if started {
		t.h.RemoveStreamHandler(ID)
	}
	t.cancel()
	t.wg.Wait()
	return nil
}

// ServerStats returns the server-side counters.
func (t *Transfer) ServerStats() ServerStats {
	held, peak, evicted := t.mem.stats()
	return ServerStats{
		StreamsEvicted:  evicted,
		BytesHeld:       held,
		BytesHeldPeak:   peak,
		Streams:         t.served.streams.Load(),
		StreamsRejected: t.served.rejected.Load(),
		Wants:           t.served.wants.Load(),
		Blocks:          t.served.blocks.Load(),
		Bytes:           t.served.bytes.Load(),
		DontHaves:       t.served.dontHaves.Load(),
	}
}

// Banned reports whether p misbehaved recently enough that fetches avoid it.
func (t *Transfer) Banned(p peer.ID) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.bannedLocked(p)
}

func (t *Transfer) bannedLocked(p peer.ID) bool {
	until, ok := t.banned[p]
	if !ok {
		return false
	}
	if time.Now().After(until) {
		delete(t.banned, p)
		return false
	}
	return true
}

// misbehaved records that p broke the protocol or sent a bad block.
// A peer already banned is logged at debug level only, so that one that
// repeats itself cannot flood the log.
func (t *Transfer) misbehaved(p peer.ID, err error) {
	now := time.Now()
	t.mu.Lock()
	for q, until := range t.banned { // forget expired bans, so the map holds recent ones only
		if now.After(until) {
			delete(t.banned, q)
		}
	}
	_, again := t.banned[p]
	t.banned[p] = now.Add(t.cfg.banDuration)
	t.mu.Unlock()
	level := slog.LevelWarn
	if again {
		level = slog.LevelDebug
	} else {
		// The connection manager trims a banned peer first, until the ban ends.
		t.h.ConnManager().TagPeer(p, PenaltyTag, -100)
		time.AfterFunc(t.cfg.banDuration, func() { t.endPenalty(p) })
	}
	t.log.Log(context.Background(), level, "peer misbehaved; avoided until its ban ends", "peer", p.ShortString(), "ban", t.cfg.banDuration, "err", err)
	if t.cfg.onMisbehaviour != nil {
		t.cfg.onMisbehaviour(p, err)
	}
}

// PenaltyTag is the connection manager tag (value -100) of a peer banned for misbehaving; it
// ends with the ban.
const PenaltyTag = "peer-transfer-banned"

// endPenalty removes p's penalty tag once its ban is over (a ban renewed meanwhile is waited
// out).
func (t *Transfer) endPenalty(p peer.ID) {
	t.mu.Lock()
	until, ok := t.banned[p]
	t.mu.Unlock()
	if left := time.Until(until); ok && left > 0 {
		time.AfterFunc(left, func() { t.endPenalty(p) })
		return
	}
	t.h.ConnManager().UntagPeer(p, PenaltyTag)
}

// track registers a goroutine that Close must wait for; false after Close.
func (t *Transfer) track() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.wg.Add(1)
	return true
}

// shortCID is the compact log form of a CID: its last 8 characters.
func shortCID(c cid.Cid) string {
	s := c.String()
	if len(s) > 8 {
		return "…" + s[len(s)-8:]
	}
	return s
}
