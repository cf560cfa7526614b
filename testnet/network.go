package testnet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"

	"peer/internal/config"
	"peer/node"
	"peer/store"
)

// logger is the package's logger, looked up on each use so slog.SetDefault applies.
func logger() *slog.Logger { return slog.Default().With("pkg", "testnet") }

// Node is one in-process node of a Network, with its own repo.
type Node struct {
	*node.Node
	// Index is the node's position in Network.Nodes; node 0 is the bootstrap.
	Index int
	// Dir is the node's repo.
	Dir string

	mu     sync.Mutex
	closed bool
}

// Alive reports whether the node has not been stopped.
func (n *Node) Alive() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return !n.closed
}

// stop closes the node and its store once.
func (n *Node) stop() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	n.mu.Unlock()
	var errs []error
	errs = append(errs, n.Node.Close())
	if st := n.Node.Store(); st != nil {
		errs = append(errs, st.Close())
	}
	return errors.Join(errs...)
}

// Network is a set of in-process nodes: node 0 is the bootstrap of the others.
type Network struct {
	Nodes []*Node
	// Mocknet is the in-process network the nodes run on, nil on loopback TCP.
	Mocknet mocknet.Mocknet
	// Setup is how long Start took, ready included.
	Setup time.Duration

	opts    options
	dir     string
	tempDir bool
	mu      sync.Mutex
	next    int
}

// TB is the part of testing.TB that New uses (testing.T and testing.B satisfy it).
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Cleanup(func())
	TempDir() string
}

// New starts a network of n nodes for a test, waits until it is ready and closes it when the
// test ends. It fails the test on error.
//
//	nw := testnet.New(t, 5)
//	nw.Nodes[1].Connect(...)
func New(tb TB, n int, opts ...Option) *Network {
	tb.Helper()
	opts = append([]Option{WithDir(tb.TempDir())}, opts...)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	nw, err := Start(ctx, n, opts...)
	if err != nil {
		tb.Fatalf("testnet: %v", err)
		return nil
	}
	tb.Cleanup(func() {
		if err := nw.Close(); err != nil {
			tb.Fatalf("testnet: close: %v", err)
		}
	})
	return nw
}

// Start builds n nodes, starts node 0, then the others (a few at a time) bootstrapping off it,
// and waits until every node has a connection and a non-empty routing table. On error it stops
// what it started. ctx bounds the start only; stop the network with Close.
func Start(ctx context.Context, n int, opts ...Option) (_ *Network, err error) {
	if n < 2 {
		return nil, fmt.Errorf("testnet: a network needs at least 2 nodes, not %d", n)
	}
	o := defaultOptions()
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if o.readyTimeout == 0 {
		o.readyTimeout = 30*time.Second + time.Duration(n)*100*time.Millisecond
	}
	t0 := time.Now()
	nw := &Network{opts: o, dir: o.dir}
	if nw.dir == "" {
		if nw.dir, err = os.MkdirTemp("", "peer-testnet-"); err != nil {
			return nil, fmt.Errorf("testnet: %w", err)
		}
		nw.tempDir = true
	}
	if !o.mock {
		if err := raiseFileLimit(fdsFor(n)); err != nil {
			logger().Warn("dials may fail; a mocknet (WithMocknet) needs no descriptors", "err", err)
		}
	}
	if o.mock {
		nw.Mocknet = mocknet.New()
		nw.Mocknet.SetLinkDefaults(mocknet.LinkOptions{Latency: o.latency, Bandwidth: o.bandwidth})
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, nw.Close())
		}
	}()

	boot, err := nw.startNode(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("testnet: node 0: %w", err)
	}
	bootAI := peer.AddrInfo{ID: boot.ID(), Addrs: boot.Host().Addrs()}
	if err := nw.AddNodes(ctx, n-1, bootAI); err != nil {
		return nil, err
	}
	rctx, cancel := context.WithTimeout(ctx, o.readyTimeout)
	defer cancel()
	if err := nw.WaitReady(rctx); err != nil {
		return nil, err
	}
	nw.Setup = time.Since(t0)
	logger().Debug("testnet ready", "nodes", n, "setup", nw.Setup, "mocknet", o.mock)
	return nw, nil
}

// AddNodes starts k more nodes bootstrapping off boot, at most the network's concurrency at a
// time. It does not wait for readiness beyond each node's own bootstrap.
func (nw *Network) AddNodes(ctx context.Context, k int, boot peer.AddrInfo) error {
	sem := make(chan struct{}, nw.opts.concurrency)
	var wg sync.WaitGroup
	errc := make(chan error, k)
	for range k {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if _, err := nw.startNode(ctx, &boot); err != nil {
				errc <- err
			}
		}()
	}
	wg.Wait()
	close(errc)
	var errs []error
	for err := range errc {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("testnet: starting nodes: %w", errors.Join(errs...))
	}
	return nil
}

// startNode creates a repo, builds and starts one node, and adds it to nw.Nodes.
func (nw *Network) startNode(ctx context.Context, boot *peer.AddrInfo) (*Node, error) {
	nw.mu.Lock()
	i := nw.next
	nw.next++
	nw.mu.Unlock()

	dir := filepath.Join(nw.dir, fmt.Sprintf("node-%d", i))
	if _, err := store.Init(dir); err != nil {
		return nil, err
	}
	key, err := store.ReadIdentity(dir)
	if err != nil {
		return nil, err
	}
	st, err := store.Open(dir)
	if err != nil {
		return nil, err
	}
	cfg := config.Default()
	cfg.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.API = ""
	cfg.Network = nw.opts.network
	cfg.DHTMode = "server"
	cfg.MDNS = false
	cfg.ConnLow, cfg.ConnHigh = 400, 800
	// Rendezvous off: every node already connects to node 0 and to its DHT peers, and the
	// rendezvous lookups would add DHT traffic to every measurement. WithConfig turns it on.
	cfg.Rendezvous = false
	if boot != nil {
		addrs, err := peer.AddrInfoToP2pAddrs(boot)
		if err != nil || len(addrs) == 0 {
			st.Close()
			return nil, fmt.Errorf("bootstrap address of %s: %v", boot.ID, err)
		}
		cfg.Bootstrap = []string{addrs[0].String()}
	}
	if nw.opts.config != nil {
		nw.opts.config(i, &cfg)
	}
	opts := node.Options{Config: cfg, Key: key, Store: st, RepoDir: dir}
	if nw.Mocknet != nil {
		if err := nw.mockHost(i, key, &opts); err != nil {
			st.Close()
			return nil, err
		}
	}
	if nw.opts.node != nil {
		nw.opts.node(i, &opts)
	}
	nd, err := node.New(opts)
	if err != nil {
		st.Close()
		return nil, err
	}
	if err := nd.Start(ctx); err != nil {
		st.Close()
		return nil, fmt.Errorf("node %d: %w", i, err)
	}
	tn := &Node{Node: nd, Index: i, Dir: dir}
	nw.mu.Lock()
	for len(nw.Nodes) <= i {
		nw.Nodes = append(nw.Nodes, nil)
	}
	nw.Nodes[i] = tn
	nw.mu.Unlock()
	return tn, nil
}

// Ready reports whether every live node has a connected peer and a non-empty routing table.
func (nw *Network) Ready() bool {
	for _, n := range nw.Live() {
		if len(n.Host().Network().Peers()) == 0 || n.Discovery().RoutingTableSize() == 0 {
			return false
		}
	}
	return true
}

// WaitReady waits until Ready, or ctx ends.
func (nw *Network) WaitReady(ctx context.Context) error {
	if err := waitFor(ctx, nw.Ready); err != nil {
		return fmt.Errorf("testnet: waiting for every node to connect and fill its routing table: %w", err)
	}
	return nil
}

// Live is the nodes that have not been stopped.
func (nw *Network) Live() []*Node {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	var out []*Node
	for _, n := range nw.Nodes {
		if n != nil && n.Alive() {
			out = append(out, n)
		}
	}
	return out
}

// Kill stops node i (its host, discovery and store), as a crash would take it off the network.
func (nw *Network) Kill(i int) error {
	nw.mu.Lock()
	if i < 0 || i >= len(nw.Nodes) || nw.Nodes[i] == nil {
		nw.mu.Unlock()
		return fmt.Errorf("testnet: no node %d", i)
	}
	n := nw.Nodes[i]
	nw.mu.Unlock()
	return n.stop()
}

// Dir is where the node repos are.
func (nw *Network) Dir() string { return nw.dir }

// Close stops every node (concurrently), the mocknet, and removes the repos if the network
// created their directory. Safe to call more than once.
func (nw *Network) Close() error {
	nw.mu.Lock()
	nodes := append([]*Node(nil), nw.Nodes...)
	nw.mu.Unlock()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	sem := make(chan struct{}, 32)
	for _, n := range nodes {
		if n == nil {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := n.stop(); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("node %d: %w", n.Index, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if nw.Mocknet != nil {
		errs = append(errs, nw.Mocknet.Close())
	}
	if nw.tempDir {
		errs = append(errs, os.RemoveAll(nw.dir))
		nw.tempDir = false
	}
	return errors.Join(errs...)
}
