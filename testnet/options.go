package testnet

import (
	"errors"
	"fmt"
	"time"

	"peer/internal/config"
	"peer/node"
)

// DefaultNetwork is the private network name of testnets: DHT /peer/testnet and its own gossip
// topic, so a testnet never mixes with the public IPFS DHT.
const DefaultNetwork = "testnet"

type options struct {
	network      string
	mock         bool
	latency      time.Duration
	bandwidth    float64
	dir          string
	concurrency  int
	readyTimeout time.Duration
	config       func(i int, c *config.Config)
	node         func(i int, o *node.Options)
}

func defaultOptions() options {
	return options{network: DefaultNetwork, concurrency: 16}
}

// Option changes how a network is built. Options validate their arguments.
type Option func(*options) error

// WithNetwork sets the network name (DHT prefix /peer/NAME and gossip topic). Default "testnet".
func WithNetwork(name string) Option {
	return func(o *options) error {
		if name == "" {
			return errors.New("testnet: empty network name (a testnet never joins the public network)")
		}
		o.network = name
		return nil
	}
}

// WithMocknet runs the nodes on an in-process libp2p mocknet instead of loopback TCP. Every link
// has the given one-way latency and bandwidth in bytes per second (0: unlimited).
func WithMocknet(latency time.Duration, bandwidth float64) Option {
	return func(o *options) error {
		if latency < 0 || bandwidth < 0 {
			return fmt.Errorf("testnet: negative latency (%v) or bandwidth (%v)", latency, bandwidth)
		}
		o.mock, o.latency, o.bandwidth = true, latency, bandwidth
		return nil
	}
}

// WithDir puts the repos in dir/node-i (kept after Close). Default: a temporary directory that
// Close removes (New: the test's TempDir).
func WithDir(dir string) Option {
	return func(o *options) error { o.dir = dir; return nil }
}

// WithConcurrency bounds how many nodes start at once. Default 16.
func WithConcurrency(n int) Option {
	return func(o *options) error {
		if n <= 0 {
			return fmt.Errorf("testnet: concurrency %d must be positive", n)
		}
		o.concurrency = n
		return nil
	}
}

// WithReadyTimeout bounds the wait for every node to be connected with a non-empty routing
// table. Default 30 s plus 100 ms per node.
func WithReadyTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("testnet: ready timeout %v must be positive", d)
		}
		o.readyTimeout = d
		return nil
	}
}

// WithConfig edits node i's config before it is built (after the testnet's own settings:
// loopback TCP listen address, no API, the network name, node 0 as bootstrap).
func WithConfig(f func(i int, c *config.Config)) Option {
	return func(o *options) error { o.config = f; return nil }
}

// WithNodeOptions edits node i's options before node.New (a transfer rate limit, say).
func WithNodeOptions(f func(i int, o *node.Options)) Option {
	return func(o *options) error { o.node = f; return nil }
}
