package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	bsnetwork "github.com/ipfs/boxo/bitswap/network"
	bsnet "github.com/ipfs/boxo/bitswap/network/bsnet"
	"github.com/ipfs/boxo/bitswap/server"
	"github.com/ipfs/boxo/blockstore"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"
	"golang.org/x/time/rate"

	"peer/store"
	"peer/transfer"
)

// IPFS peers (Kubo, Helia, any Bitswap client) do not speak our transfer protocol: the node
// answers them over Bitswap, with boxo's Bitswap server on the node's host. The server sees the
// store through servedStore, which offers exactly what the transfer server offers
// (store.ServeBlock): blocks of the files held, not of a removed or changed one. The server only
// answers: it provides nothing on the DHT (the node provides file roots, discovery/) and stores
// nothing.

// BitswapProtocols are the Bitswap versions the node answers: 1.2.0 (HAVE/DONT_HAVE, what Kubo
// speaks first), 1.1.0, 1.0.0 and the unversioned /ipfs/bitswap.
var BitswapProtocols = []protocol.ID{
	bsnet.ProtocolBitswap, bsnet.ProtocolBitswapOneOne, bsnet.ProtocolBitswapOneZero, bsnet.ProtocolBitswapNoVers,
}

// BitswapLimits bound what one Bitswap peer can have the node do, so that none takes more than
// its share. Zero fields take the defaults (DefaultBitswapLimits).
type BitswapLimits struct {
	// Wantlist is how many wanted blocks the node keeps per peer; a longer wantlist is cut to
	// its highest-priority entries. Default 1024 (Kubo's).
	Wantlist int
	// OutstandingBytes is how many bytes of blocks the node has on their way to one peer at a
	// time: the peer's further wants wait until those are sent, so a peer that does not read
	// holds one of the Workers, not all. Default 1 MiB (Kubo's): one block of a file. Four
	// did not fetch faster (BenchmarkBitswapServe1GiB).
	OutstandingBytes int
	// MessageSize is the size the server aims each message at: it packs small blocks until
	// then. Default 16 KiB (Kubo's); 1 MiB was slower.
	MessageSize int
	// Workers is how many messages the node sends at once, to all Bitswap peers together.
	// Default 8 (Kubo's).
	Workers int
}

// DefaultBitswapLimits are the limits a node serves Bitswap with.
func DefaultBitswapLimits() BitswapLimits {
	return BitswapLimits{Wantlist: 1024, OutstandingBytes: 1 << 20, MessageSize: 16 << 10, Workers: 8}
}

func (l BitswapLimits) withDefaults() BitswapLimits {
	d := DefaultBitswapLimits()
	if l.Wantlist <= 0 {
		l.Wantlist = d.Wantlist
	}
	if l.OutstandingBytes <= 0 {
		l.OutstandingBytes = d.OutstandingBytes
	}
	if l.MessageSize <= 0 {
		l.MessageSize = d.MessageSize
	}
	if l.Workers <= 0 {
		l.Workers = d.Workers
	}
	return l
}

// serverOptions are the boxo server options that apply l.
func (l BitswapLimits) serverOptions() []server.Option {
	l = l.withDefaults()
	return []server.Option{
		server.MaxQueuedWantlistEntriesPerPeer(uint(l.Wantlist)),
		server.MaxOutstandingBytesPerPeer(l.OutstandingBytes),
		server.WithTargetMessageSize(l.MessageSize),
		server.TaskWorkerCount(l.Workers),
		server.EngineTaskWorkerCount(l.Workers),
	}
}

// bitswapServer is boxo's Bitswap server on the node's host.
type bitswapServer struct {
	h     host.Host
	net   interface{ Stop() }
	srv   *server.Server
	store servedStore
}

// bitswapNet is boxo's Bitswap network on h: the server answers over it, and fetches ask IPFS
// peers over it (transfer.Bitswap).
type bitswapNet struct {
	net bsnetwork.BitSwapNetwork
	evm *bsnetwork.ConnectEventManager
}

func newBitswapNet(h host.Host) bitswapNet {
	evm := bsnetwork.NewConnectEventManager()
	net := bsnet.NewFromIpfsHost(h, bsnet.SupportedProtocols(append([]protocol.ID(nil), BitswapProtocols...)),
		bsnet.WithConnectEventManager(evm))
	return bitswapNet{net: net, evm: evm}
}

// startBitswap registers the Bitswap protocols on h and answers them from st; what peers send
// in answer to the node's own wants goes to client. Blocks sent take their bytes from lim (nil:
// no cap), the bucket the transfer server takes from.
func startBitswap(h host.Host, bn bitswapNet, client *transfer.Bitswap, st *store.Store, m *Metrics, limits BitswapLimits, lim *rate.Limiter) *bitswapServer {
	net, evm := bn.net, bn.evm
	bs := servedStore{st: st, m: m, lim: lim}
	srv := server.New(context.Background(), net, bs, limits.serverOptions()...)
	receivers := []bsnetwork.Receiver{srv}
	if client != nil {
		receivers = append(receivers, client)
	}
	net.Start(receivers...) // sets the stream handlers and follows connections from now on
	// Peers connected before now are told of too, or their wantlists would outlive them.
	for _, p := range h.Network().Peers() {
		evm.Connected(p)
		if h.Network().Connectedness(p) != network.Connected {
			evm.Disconnected(p) // gone meanwhile; its event may have come first
		}
	}
	return &bitswapServer{h: h, net: net, srv: srv, store: bs}
}

// Close stops answering: the protocols are unregistered first, so no new stream reaches the
// server, then the server and its workers stop. It returns when they have. A worker may be
// writing to a peer that does not read (boxo's write deadline is up to two minutes): Bitswap
// streams are reset until the workers are gone, so a stalled peer cannot hold up Close.
func (b *bitswapServer) Close() error {
	for _, p := range BitswapProtocols {
		b.h.RemoveStreamHandler(p)
	}
	b.net.Stop()
	done := make(chan struct{})
	go func() {
		b.srv.Close()
		close(done)
	}()
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		b.resetStreams()
		select {
		case <-done:
			return nil
		case <-t.C:
		}
	}
}

// resetStreams resets every Bitswap stream on the host, in either direction.
func (b *bitswapServer) resetStreams() {
	for _, c := range b.h.Network().Conns() {
		for _, s := range c.GetStreams() {
			if slices.Contains(BitswapProtocols, s.Protocol()) {
				_ = s.Reset()
			}
		}
	}
}

// errReadOnly is the answer to a write: the Bitswap server never stores a block.
var errReadOnly = errors.New("the store is read-only over Bitswap")

// servedStore is the store as boxo's Bitswap server sees it: read-only, and only what
// store.ServeBlock serves. A block that is not served is ipld.ErrNotFound, which the server
// answers with DONT_HAVE.
type servedStore struct {
	st  *store.Store
	m   *Metrics      // nil: not counted (the gateway's reads)
	lim *rate.Limiter // upload_limit, shared with the transfer server; nil: no cap
}

var _ blockstore.Blockstore = servedStore{}

func notFound(c cid.Cid) error { return ipld.ErrNotFound{Cid: c} }

// Has reports whether the block is served (a referenced leaf is not read to answer).
func (b servedStore) Has(_ context.Context, c cid.Cid) (bool, error) { return b.st.ServeHas(c), nil }

// GetSize is a served block's size, read from its metadata.
func (b servedStore) GetSize(_ context.Context, c cid.Cid) (int, error) {
	n, err := b.st.ServeSize(c)
	if errors.Is(err, store.ErrNotFound) {
		return 0, notFound(c)
	}
	return n, err
}

// Get reads a served block without hashing it (the receiver verifies every block, as over our
// transfer protocol). The server keeps the bytes until the message is sent, so they are not
// taken from a reused pool. Under upload_limit it waits for the block's bytes first: the
// server's workers then send no faster than the cap, and Close (which cancels ctx) ends the wait.
func (b servedStore) Get(ctx context.Context, c cid.Cid) (blocks.Block, error) {
	data, err := b.st.ServeBlock(ctx, c, nil)
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound(c)
	}
	if err != nil {
		return nil, err
	}
	if b.lim != nil {
		if err := b.lim.WaitN(ctx, len(data)); err != nil {
			return nil, fmt.Errorf("upload limit: %w", err)
		}
	}
	blk, err := blocks.NewBlockWithCid(data, c)
	if err != nil {
		return nil, fmt.Errorf("serving %s: %w", c, err)
	}
	if b.m != nil {
		b.m.BlocksSent.Inc()
	}
	return blk, nil
}

// AllKeysChan lists the served blocks.
func (b servedStore) AllKeysChan(ctx context.Context) (<-chan cid.Cid, error) {
	keys := b.st.Served()
	out := make(chan cid.Cid)
	go func() {
		defer close(out)
		for _, c := range keys {
			select {
			case out <- c:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

func (servedStore) Put(context.Context, blocks.Block) error       { return errReadOnly }
func (servedStore) PutMany(context.Context, []blocks.Block) error { return errReadOnly }
func (servedStore) DeleteBlock(context.Context, cid.Cid) error    { return errReadOnly }
