package node

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/ipfs/boxo/blockstore"
	bsexchange "github.com/ipfs/boxo/exchange"
	boxogw "github.com/ipfs/boxo/gateway"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"

	"peer/store"
	"peer/transfer"
)

// Content the node does not hold is served by the gateway as boxo's reader asks for it: the
// gateway's block service has an exchange (gatewayExchange) that fetches each block it is asked
// for through the transfer scheduler (verified against its CID like every fetched block) from
// the providers of the root the request names. A range of a file not held thus costs the blocks
// on the path to the range and the leaves under it, fetched first; a folder is resolved and
// listed by fetching its directory nodes. Meanwhile the whole file is fetched into the repo in
// the background (gatewayServer.fetchBehind), and blocks it has already brought are read from
// its download instead of being asked again.

// gatewayRootKey is the context key of the root a gateway request names: its providers are
// asked for the blocks the request needs.
type gatewayRootKey struct{}

func withGatewayRoot(ctx context.Context, root cid.Cid) context.Context {
	return context.WithValue(ctx, gatewayRootKey{}, root)
}

func gatewayRoot(ctx context.Context) (cid.Cid, bool) {
	c, ok := ctx.Value(gatewayRootKey{}).(cid.Cid)
	return c, ok
}

// gatewayExchange fetches single blocks for the gateway's block service.
type gatewayExchange struct{ n *Node }

var _ bsexchange.Interface = gatewayExchange{}

// GetBlock fetches c from the providers of the request's root; a request that names no root
// (the node holds what it asked) fetches nothing.
func (x gatewayExchange) GetBlock(ctx context.Context, c cid.Cid) (blocks.Block, error) {
	root, ok := gatewayRoot(ctx)
	if !ok {
		return nil, notFound(c)
	}
	ex, err := x.n.exchange()
	if err != nil {
		return nil, boxogw.NewErrorStatusCode(err, http.StatusServiceUnavailable)
	}
	if d := ex.download(root); d != nil {
		// The whole file is being fetched: a reader that follows it (a player playing from the
		// start) gets its blocks as they land, instead of asking for each a second time.
		wctx, cancel := context.WithTimeout(ctx, downloadGrace)
		data, err := d.Wait(wctx, c)
		cancel()
		if err == nil {
			return blocks.NewBlockWithCid(data, c)
		}
	}
	data, err := ex.fetchBlock(ctx, c, root) // fetchtree.go
	if errors.Is(err, transfer.ErrNoProviders) {
		return nil, boxogw.NewErrorStatusCode(err, http.StatusNotFound)
	}
	if err != nil {
		return nil, err
	}
	return blocks.NewBlockWithCid(data, c)
}

// downloadGrace is how long a block the gateway reads waits for the download of its root, when
// one runs, before it is asked for on its own.
const downloadGrace = 100 * time.Millisecond

// gatewayPrefetch is how many blocks of one GetBlocks call are fetched at once.
const gatewayPrefetch = 4

// GetBlocks fetches ks, gatewayPrefetch at a time, and sends each block as it comes.
func (x gatewayExchange) GetBlocks(ctx context.Context, ks []cid.Cid) (<-chan blocks.Block, error) {
	out := make(chan blocks.Block)
	go func() {
		defer close(out)
		var wg sync.WaitGroup
		slots := make(chan struct{}, gatewayPrefetch)
		for _, c := range ks {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				wg.Wait()
				return
			}
			wg.Go(func() {
				defer func() { <-slots }()
				b, err := x.GetBlock(ctx, c)
				if err != nil {
					return // the reader asks again with GetBlock and gets the error
				}
				select {
				case out <- b:
				case <-ctx.Done():
				}
			})
		}
		wg.Wait()
	}()
	return out, nil
}

func (gatewayExchange) NotifyNewBlocks(context.Context, ...blocks.Block) error { return nil }
func (gatewayExchange) Close() error                                           { return nil }

// download is the fetch of root in progress, or nil.
func (ex *exchange) download(root cid.Cid) *store.Download {
	ex.mu.Lock()
	defer ex.mu.Unlock()
	return ex.fetching[root.String()]
}

// gatewayCacheBytes bounds the blocks the gateway keeps of content it does not hold: those a
// request fetched on demand, for the next request that reads them (a player asks many ranges).
const gatewayCacheBytes = 64 << 20

// gatewayStore is the gateway's blockstore: what the node serves, then the blocks that the
// download of the request's root has brought so far, then the blocks fetched on demand lately.
// Puts (of blocks fetched on demand) go to the cache only: the repo gets the file through its
// download.
type gatewayStore struct {
	servedStore
	n     *Node
	cache *blockCache
}

var _ blockstore.Blockstore = gatewayStore{}

func (s gatewayStore) Has(ctx context.Context, c cid.Cid) (bool, error) {
	if ok, _ := s.servedStore.Has(ctx, c); ok {
		return true, nil
	}
	if _, ok := s.cache.get(c); ok {
		return true, nil
	}
	_, err := s.fromDownload(ctx, c)
	return err == nil, nil
}

func (s gatewayStore) GetSize(ctx context.Context, c cid.Cid) (int, error) {
	if n, err := s.servedStore.GetSize(ctx, c); err == nil {
		return n, nil
	}
	b, err := s.Get(ctx, c)
	if err != nil {
		return 0, err
	}
	return len(b.RawData()), nil
}

func (s gatewayStore) Get(ctx context.Context, c cid.Cid) (blocks.Block, error) {
	b, err := s.servedStore.Get(ctx, c)
	if err == nil {
		return b, nil
	}
	if data, ok := s.cache.get(c); ok {
		return blocks.NewBlockWithCid(data, c)
	}
	if data, err := s.fromDownload(ctx, c); err == nil {
		return blocks.NewBlockWithCid(data, c)
	}
	return nil, notFound(c)
}

// fromDownload reads c from the download of the request's root, if one runs and has it.
func (s gatewayStore) fromDownload(ctx context.Context, c cid.Cid) ([]byte, error) {
	root, ok := gatewayRoot(ctx)
	if !ok {
		return nil, notFound(c)
	}
	ex, err := s.n.exchange()
	if err != nil {
		return nil, err
	}
	d := ex.download(root)
	if d == nil {
		return nil, notFound(c)
	}
	data, err := d.Get(ctx, c) // verified by the store
	if err != nil {
		return nil, notFound(c)
	}
	return data, nil
}

func (s gatewayStore) Put(_ context.Context, b blocks.Block) error {
	s.cache.add(b.Cid(), b.RawData())
	return nil
}

func (s gatewayStore) PutMany(ctx context.Context, bs []blocks.Block) error {
	for _, b := range bs {
		_ = s.Put(ctx, b)
	}
	return nil
}

// blockCache keeps up to max bytes of blocks, the oldest put evicted first.
type blockCache struct {
	mu    sync.Mutex
	max   int
	size  int
	data  map[cid.Cid][]byte
	order []cid.Cid
}

func newBlockCache(max int) *blockCache {
	return &blockCache{max: max, data: make(map[cid.Cid][]byte)}
}

func (bc *blockCache) get(c cid.Cid) ([]byte, bool) {
	bc.mu.Lock()
	defer bc.mu.Unlock()
	b, ok := bc.data[c]
	return b, ok
}

func (bc *blockCache) add(c cid.Cid, b []byte) {
	if len(b) > bc.max {
		return
	}
	bc.mu.Lock()
	defer bc.mu.Unlock()
	if _, ok := bc.data[c]; ok {
		return
	}
	for bc.size+len(b) > bc.max && len(bc.order) > 0 {
		old := bc.order[0]
		bc.order[0] = cid.Undef
		bc.order = bc.order[1:]
		bc.size -= len(bc.data[old])
		delete(bc.data, old)
	}
	bc.data[c] = b
	bc.size += len(b)
	bc.order = append(bc.order, c)
}
