package gossiptest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	mh "github.com/multiformats/go-multihash"

	"peer/gossip"
)

// Received is an announcement and when the node's callback got it.
type Received struct {
	gossip.Announcement
	At time.Time
}

// Node is one gossip node of a Network.
type Node struct {
	Index  int
	Host   host.Host
	Gossip *gossip.Gossip

	mu      sync.Mutex
	got     []Received
	changed chan struct{} // closed and replaced on every receipt
	onRecv  func(*Node, Received)
}

func (n *Node) receive(a gossip.Announcement) {
	r := Received{Announcement: a, At: time.Now()}
	n.mu.Lock()
	n.got = append(n.got, r)
	close(n.changed)
	n.changed = make(chan struct{})
	hook := n.onRecv
	n.mu.Unlock()
	if hook != nil {
		hook(n, r)
	}
}

// Received returns what the node has received so far, in order.
func (n *Node) Received() []Received {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.got)
}

// WaitFor waits until the node has received an announcement for which match
// is true, and returns it.
func (n *Node) WaitFor(ctx context.Context, match func(gossip.Announcement) bool) (Received, error) {
	for {
		n.mu.Lock()
		for _, r := range n.got {
			if match(r.Announcement) {
				n.mu.Unlock()
				return r, nil
			}
		}
		ch := n.changed
		n.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return Received{}, fmt.Errorf("node %d: %w", n.Index, ctx.Err())
		}
	}
}

// Options shape a Network.
type Options struct {
	// Latency of every link (mocknet LinkOptions). Default 0.
	Latency time.Duration
	// Degree is the average number of connections per node: a ring, plus
	// random chords. Default 4; at most n-1.
	Degree int
	// Seed makes the topology reproducible.
	Seed uint64
	// Config is the gossip configuration of every node (Shared excluded).
	Config gossip.Config
}

// Network is a set of gossip nodes on one mocknet.
type Network struct {
	Mocknet mocknet.Mocknet
	Nodes   []*Node
	opts    Options
	rng     *rand.Rand
}

// NewNetwork starts n gossip nodes connected in a sparse random topology of
// average degree opts.Degree (a ring, so it is connected, plus chords).
// Close it when done.
func NewNetwork(ctx context.Context, n int, opts Options) (*Network, error) {
	if n < 2 {
		return nil, fmt.Errorf("network of %d nodes", n)
	}
	if opts.Degree == 0 {
		opts.Degree = 4
	}
	opts.Degree = min(opts.Degree, n-1)
	nw := &Network{
		Mocknet: mocknet.New(),
		opts:    opts,
		rng:     rand.New(rand.NewPCG(opts.Seed, 0x9055)),
	}
	nw.Mocknet.SetLinkDefaults(mocknet.LinkOptions{Latency: opts.Latency})
	for range n {
		if _, err := nw.addNode(ctx, nil); err != nil {
			nw.Close()
			return nil, err
		}
	}
	edges := map[[2]int]bool{}
	link := func(a, b int) {
		if a == b {
			return
		}
		edges[[2]int{min(a, b), max(a, b)}] = true
	}
	for i := range n {
		link(i, (i+1)%n)
	}
	want := n * opts.Degree / 2
	for tries := 0; len(edges) < want && tries < 100*n; tries++ {
		link(nw.rng.IntN(n), nw.rng.IntN(n))
	}
	for e := range edges {
		if err := nw.Connect(e[0], e[1]); err != nil {
			nw.Close()
			return nil, err
		}
	}
	return nw, nil
}

// Connect links and connects nodes a and b.
func (nw *Network) Connect(a, b int) error {
	ha, hb := nw.Nodes[a].Host, nw.Nodes[b].Host
	if _, err := nw.Mocknet.LinkPeers(ha.ID(), hb.ID()); err != nil {
		return fmt.Errorf("linking %d-%d: %w", a, b, err)
	}
	if _, err := nw.Mocknet.ConnectPeers(ha.ID(), hb.ID()); err != nil {
		return fmt.Errorf("connecting %d-%d: %w", a, b, err)
	}
	return nil
}

// AddNode starts one more node, with shared as its Config.Shared (may be
// nil), and connects it to the given nodes.
func (nw *Network) AddNode(ctx context.Context, shared func() []gossip.Announcement, connectTo ...int) (*Node, error) {
	nd, err := nw.addNode(ctx, shared)
	if err != nil {
		return nil, err
	}
	for _, i := range connectTo {
		if err := nw.Connect(nd.Index, i); err != nil {
			return nil, err
		}
	}
	return nd, nil
}

func (nw *Network) addNode(ctx context.Context, shared func() []gossip.Announcement) (*Node, error) {
	h, err := nw.Mocknet.GenPeer()
	if err != nil {
		return nil, fmt.Errorf("creating host: %w", err)
	}
	cfg := nw.opts.Config
	cfg.Shared = shared
	g, err := gossip.New(h, cfg)
	if err != nil {
		return nil, err
	}
	nd := &Node{Index: len(nw.Nodes), Host: h, Gossip: g, changed: make(chan struct{})}
	if err := g.Start(ctx, nd.receive); err != nil {
		return nil, err
	}
	nw.Nodes = append(nw.Nodes, nd)
	return nd, nil
}

// WaitMesh waits until every node sees each peer it is connected to as a
// topic peer, and has grafted them into its mesh (all of them, or at least
// gossipsub's Dlo). Announcements published before that may not reach
// everyone.
func (nw *Network) WaitMesh(ctx context.Context) error {
	for {
		ready := true
		for _, nd := range nw.Nodes {
			conns := len(nd.Host.Network().Peers())
			if len(nd.Gossip.Peers()) < conns || len(nd.Gossip.MeshPeers()) < min(conns, pubsub.GossipSubDlo) {
				ready = false
				break
			}
		}
		if ready {
			return nil
		}
		t := time.NewTimer(20 * time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("waiting for the mesh: %w", ctx.Err())
		}
	}
}

// Close stops every node and the mocknet.
func (nw *Network) Close() error {
	var errs []error
	for _, nd := range nw.Nodes {
		errs = append(errs, nd.Gossip.Close())
	}
	errs = append(errs, nw.Mocknet.Close())
	return errors.Join(errs...)
}

// TestCID returns a CIDv1 raw sha2-256 CID derived from s.
func TestCID(s string) cid.Cid {
	sum := sha256.Sum256([]byte(s))
	m, err := mh.Encode(sum[:], mh.SHA2_256)
	if err != nil {
		panic(err)
	}
	return cid.NewCidV1(cid.Raw, m)
}
