package transfer

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// config holds every tunable; defaultConfig documents the defaults.
type config struct {
	logger             *slog.Logger
	rateLimit          float64              // server bytes/s, 0 = unlimited
	onMisbehaviour     func(peer.ID, error) // called from network goroutines
	idleTimeout        time.Duration        // longest wait for the next frame
	maxStreamsPerPeer  int                  // server streams per remote peer
	maxQueuedPerStream int                  // CIDs queued per server stream
	serveMemory        int64                // block bytes all server streams hold at once
	serveMemoryPerPeer int64                // of which one peer's streams
	noProviders        time.Duration        // how long a fetch waits for a provider
	stallTimeout       time.Duration        // least silence before a busy peer is dropped
	initialWindow      int64                // bytes in flight per peer at start
	maxWindow          int64                // cap of the adaptive window
	verifyWorkers      int                  // goroutines hashing blocks per fetch
	banDuration        time.Duration        // how long a misbehaving peer is avoided
	maxPeers           int                  // peers used by one fetch
	dialTimeout        time.Duration        // connecting to a provider from Find
	progressInterval   time.Duration        // least time between Progress calls
	endgameStallFactor float64              // multiple of expected block time before duplicating
	bitswap            *Bitswap             // asks peers that do not speak ID; nil: none
}

func defaultConfig() config {
	return config{
		logger:             slog.Default().With("pkg", "transfer"),
		idleTimeout:        60 * time.Second,
		maxStreamsPerPeer:  8,
		maxQueuedPerStream: 2048,
		serveMemory:        64 << 20,
		serveMemoryPerPeer: 16 << 20,
		noProviders:        30 * time.Second,
		stallTimeout:       10 * time.Second,
		initialWindow:      4 << 20,
		maxWindow:          64 << 20,
		verifyWorkers:      2,
		banDuration:        10 * time.Minute,
		maxPeers:           32,
		dialTimeout:        10 * time.Second,
		progressInterval:   100 * time.Millisecond,
		endgameStallFactor: 4,
	}
}

// maxOutstanding caps the CIDs a client keeps requested on one stream; it
// stays well below the server's default queue cap.
const maxOutstanding = 1024

// Option configures a Transfer.
type Option func(*config) error

// WithLogger sets the logger (default: slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return errors.New("nil logger")
		}
		c.logger = l
		return nil
	}
}

// WithRateLimit caps everything the server sends, over all its streams, at
// bytesPerSec (token bucket). 0 means unlimited (the default).
func WithRateLimit(bytesPerSec int64) Option {
	return func(c *config) error {
		if bytesPerSec < 0 {
			return errors.New("rate limit must be >= 0")
		}
		c.rateLimit = float64(bytesPerSec)
		return nil
	}
}

// WithMisbehaviour sets a callback told about every peer that broke the
// protocol or sent a bad block. It is called from network goroutines,
// possibly concurrently, and must not block.
func WithMisbehaviour(f func(p peer.ID, err error)) Option {
	return func(c *config) error {
		c.onMisbehaviour = f
		return nil
	}
}

// WithIdleTimeout sets how long either side waits for the next frame
// (default 60 s).
func WithIdleTimeout(d time.Duration) Option {
	return positiveDuration("idle timeout", d, func(c *config) { c.idleTimeout = d })
}

// WithNoProvidersTimeout sets how long a Fetch waits when no provider can
// serve what is missing before it fails with ErrNoProviders (default 30 s).
func WithNoProvidersTimeout(d time.Duration) Option {
	return positiveDuration("no-providers timeout", d, func(c *config) { c.noProviders = d })
}

// WithStallTimeout sets the least silence of a peer with requests pending
// before its work moves to others (default 10 s; scaled up for slow peers).
func WithStallTimeout(d time.Duration) Option {
	return positiveDuration("stall timeout", d, func(c *config) { c.stallTimeout = d })
}

// WithBanDuration sets how long a misbehaving peer is avoided by later
// fetches (default 10 min).
func WithBanDuration(d time.Duration) Option {
	return positiveDuration("ban duration", d, func(c *config) { c.banDuration = d })
}

// WithWindow sets the initial and the largest number of bytes in flight per
// peer (defaults 4 MiB and 64 MiB).
func WithWindow(initial, maximum int64) Option {
	return func(c *config) error {
		if initial <= 0 || maximum < initial {
			return errors.New("window: need 0 < initial <= maximum")
		}
		c.initialWindow, c.maxWindow = initial, maximum
		return nil
	}
}

// WithMaxStreamsPerPeer caps concurrent server streams from one peer
// (default 8); more are reset.
func WithMaxStreamsPerPeer(n int) Option {
	return positiveInt("max streams per peer", n, func(c *config) { c.maxStreamsPerPeer = n })
}

// WithMaxQueuedPerStream caps the CIDs waiting on one server stream
// (default 2048); a client that asks more has its stream reset. Clients of
// this package keep up to 1024 CIDs in flight per stream, so a smaller cap
// resets them.
func WithMaxQueuedPerStream(n int) Option {
	return positiveInt("max queued per stream", n, func(c *config) { c.maxQueuedPerStream = n })
}

// WithServeMemory caps the block bytes the server holds for all its streams at once (default
// 64 MiB), and for the streams of one peer (default 16 MiB): blocks read from the store and not
// yet written out. A stream that cannot get memory waits for it. Both must be at least the
// largest block (2 MiB), and perPeer at most total.
func WithServeMemory(total, perPeer int64) Option {
	return func(c *config) error {
		if perPeer < readReserve || total < perPeer {
			return fmt.Errorf("serve memory: need %d <= perPeer <= total", readReserve)
		}
		c.serveMemory, c.serveMemoryPerPeer = total, perPeer
		return nil
	}
}

// WithVerifyWorkers sets how many goroutines hash blocks per fetch (default 2).
func WithVerifyWorkers(n int) Option {
	return positiveInt("verify workers", n, func(c *config) { c.verifyWorkers = n })
}

// WithMaxPeers caps the peers one fetch uses (default 32).
func WithMaxPeers(n int) Option {
	return positiveInt("max peers", n, func(c *config) { c.maxPeers = n })
}

func positiveInt(name string, n int, set func(*config)) Option {
	return func(c *config) error {
		if n <= 0 {
			return errors.New(name + " must be > 0")
		}
		set(c)
		return nil
	}
}

func positiveDuration(name string, d time.Duration, set func(*config)) Option {
	return func(c *config) error {
		if d <= 0 {
			return errors.New(name + " must be > 0")
		}
		set(c)
		return nil
	}
}
