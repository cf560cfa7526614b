package transfer

import (
	"bytes"
	"container/heap"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multihash"

	"peer/transfer/wire"
)

// Local is what this node already holds; a Fetch reads it to resume.
// Both methods may be called from several goroutines at once.
type Local interface {
	Has(ctx context.Context, c cid.Cid) (bool, error)
	Get(ctx context.Context, c cid.Cid) ([]byte, error)
}

// Request describes one Fetch.
type Request struct {
	// Root is the CID of the DAG to fetch.
	Root cid.Cid
	// Providers are peers believed to hold the DAG, connected or dialable.
	Providers []peer.ID
	// Find, if not nil, is called once and yields more providers (e.g. from
	// the DHT) until its context ends or it closes the channel.
	Find func(ctx context.Context) <-chan peer.AddrInfo
	// Local, if not nil, says which blocks are already held: they are not
	// fetched (nor delivered), and local inner nodes are read and expanded.
	Local Local
	// Expand returns the children of a verified block, in file order
	// (leaves: none). It is called from verification goroutines,
	// concurrently, and must not retain block after it returns. An error
	// wrapping ErrInvalidDAG (here or from Deliver) blames the parent's sender.
	Expand func(c cid.Cid, block []byte) ([]cid.Cid, error)
	// Deliver receives each verified block once, in any order (once more if
	// the DAG links to it again after it was delivered: Expand has then
	// given it a new place). Blocks
	// that arrive from peers are delivered by one goroutine per fetch, so a
	// Deliver that blocks (a disk write) ties up one thread, not every hashing
	// worker; blocks inlined in their CIDs are delivered from others. It must
	// not retain block after it returns (the buffer is reused). An error
	// aborts the fetch.
	Deliver func(c cid.Cid, block []byte) error
	// Progress, if not nil, is called at most ~10 times a second from the
	// fetch's own goroutine, and once at the end; it must not block.
	Progress func(Progress)
	// MaxDepth, if positive, bounds the DAG's depth: an inner node more
	// than MaxDepth links below the root fails the fetch (raw leaves may
	// sit one level deeper), as a reader with the same bound would.
	MaxDepth int
}

// Progress is a snapshot of a running Fetch.
type Progress struct {
	Blocks     int     // blocks known so far (the DAG unfolds as it arrives)
	BlocksDone int     // blocks verified and delivered, or found locally
	Bytes      int64   // bytes received from peers (duplicates and bad blocks included)
	BytesDone  int64   // bytes of the blocks verified and delivered
	Peers      int     // peers that delivered at least one verified block
	Rate       float64 // bytes received per second, smoothed
	Duplicates int64   // bytes received twice
}

// PeerStats is what one peer did for a Fetch.
type PeerStats struct {
	Blocks     int   // blocks that it sent first and that verified
	Bytes      int64 // bytes received from it
	Duplicates int64 // bytes received from it that another peer sent first
	Bad        int   // blocks from it that did not verify
	Dropped    error // why it was dropped from the fetch, if it was
	MaxWindow  int64 // the largest window (bytes in flight) its session grew to
	Bitswap    bool  // it was asked over Bitswap: it does not speak ID
}

// Stats summarises a Fetch.
type Stats struct {
	Blocks         int   // blocks fetched, verified and delivered
	LocalBlocks    int   // blocks found in Local
	Bytes          int64 // bytes of the delivered blocks
	Received       int64 // all bytes received
	DuplicateBytes int64 // bytes received more than once
	BadBlocks      int   // blocks that failed verification
	Peers          map[peer.ID]PeerStats
	Duration       time.Duration
}

// Sources is how many peers delivered at least one verified block: the peers the file came from.
// Peers holds every peer asked, whether it sent anything or not.
func (s Stats) Sources() int {
	n := 0
	for _, p := range s.Peers {
		if p.Blocks > 0 {
			n++
		}
	}
	return n
}

type blockState uint8

const (
	stateChecking  blockState = iota // being looked up in Local
	stateQueued                      // waiting for a peer
	stateRequested                   // asked from one or more peers
	stateVerifying                   // first copy received, being hashed
	stateDone                        // delivered or local
)

// block is one CID of the DAG being fetched. Fields are guarded by fetch.mu.
type block struct {
	c       cid.Cid
	path    []uint32 // child indexes from the root: the DAG order
	parent  *block   // the block that first linked to it; nil for the root
	from    peer.ID  // who sent it, once verified; "" when local or inline
	inner   bool     // not a raw leaf: fetched first
	state   blockState
	holders []*session // sessions it is requested from
	lacking []peer.ID  // peers that answered DontHave
	idx     int        // index in the queue heap, -1 when not queued
	// again is the place where the DAG links to it once more, found while it
	// was being delivered: it is taken up again once done.
	again []uint32
}

func (b *block) lacks(p peer.ID) bool {
	for _, q := range b.lacking {
		if q == p {
			return true
		}
	}
	return false
}

func (b *block) dropHolder(s *session) {
	for i, h := range b.holders {
		if h == s {
			b.holders = append(b.holders[:i], b.holders[i+1:]...)
			return
		}
	}
}

// blockQueue orders waiting blocks: inner nodes first, then DAG order.
type blockQueue []*block

func (q blockQueue) Len() int { return len(q) }
func (q blockQueue) Less(i, j int) bool {
	a, b := q[i], q[j]
	if a.inner != b.inner {
		return a.inner
	}
	for k := 0; k < len(a.path) && k < len(b.path); k++ {
		if a.path[k] != b.path[k] {
			return a.path[k] < b.path[k]
		}
	}
	return len(a.path) < len(b.path)
}
func (q blockQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].idx, q[j].idx = i, j
}
func (q *blockQueue) Push(x any) {
	b := x.(*block)
	b.idx = len(*q)
	*q = append(*q, b)
}
func (q *blockQueue) Pop() any {
	old := *q
	b := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	b.idx = -1
	return b
}

// frontierBound bounds the blocks a fetch knows and has not finished, plus the
// children it holds and has not yet taken up, plus maxFanout for each inner
// node it has asked for and not yet expanded. A DAG unfolds lazily within it:
// memory follows depth × fanout, not the number of leaves a root can name.
const frontierBound = 16 << 10

// maxFanout is as many links as a node may have (unixfs.MaxLinks): what an
// inner node not yet seen may add.
const maxFanout = 1024

// expansion is the children of an expanded inner node, taken up in DAG order
// as the frontier allows.
type expansion struct {
	parent *block
	path   []uint32 // the parent's path
	kids   []cid.Cid
	next   int // first child not yet taken up
}

// expansionQueue orders expansions by the DAG position of their next child.
type expansionQueue []*expansion

func (q expansionQueue) Len() int { return len(q) }
func (q expansionQueue) Less(i, j int) bool {
	a, b := q[i], q[j]
	n := min(len(a.path), len(b.path))
	for k := 0; k < n; k++ {
		if a.path[k] != b.path[k] {
			return a.path[k] < b.path[k]
		}
	}
	// One path is a prefix of the other: compare the next child's index
	// with the longer path's element at that depth.
	switch {
	case len(a.path) == len(b.path):
		return a.next < b.next
	case len(a.path) < len(b.path):
		return uint32(a.next) <= b.path[n]
	default:
		return uint32(b.next) > a.path[n]
	}
}
func (q expansionQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *expansionQueue) Push(x any)   { *q = append(*q, x.(*expansion)) }
func (q *expansionQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	return e
}

// verifyItem is a received block on its way to a verification worker.
type verifyItem struct {
	s    *session
	b    *block
	data []byte
}

// fetch is the state of one Fetch call.
type fetch struct {
	t       *Transfer
	tag     string // protects the connections of its sessions from the connection manager
	req     Request
	ctx     context.Context
	cancel  context.CancelCauseFunc
	start   time.Time
	verify  chan verifyItem // received blocks, to hash
	deliver chan verifyItem // verified and expanded blocks, to Deliver
	wg      sync.WaitGroup
	done    chan struct{} // closed when every block is done

	mu          sync.Mutex
	blocks      map[cid.Cid]*block
	queue       blockQueue
	lacked      []*block // queued blocks every live peer lacks, out of the queue until a new peer comes
	remaining   int      // blocks known and not done
	pending     expansionQueue
	pendingKids int // children in pending not yet taken up
	innerOpen   int // inner blocks known and not yet expanded
	sessions    map[peer.ID]*session
	dialing     map[peer.ID]struct{} // providers from Find being connected
	findOpen    bool                 // Find may still yield providers
	stuckSince  time.Time
	leafEst     int64 // expected size of a leaf, learnt from arrivals
	innerEst    int64
	stats       Stats
	rate        float64 // smoothed bytes/s received
	lastRecv    int64
	lastTick    time.Time
	lastProblem error // last reason a peer was dropped, for the final error
}

// Fetch downloads the DAG under req.Root from the providers, verifying every
// block before handing it to req.Deliver. It returns when every block is
// delivered (nil), when ctx ends, when Deliver or Expand fails, or when no
// provider can serve what is missing for the no-providers timeout (an error
// wrapping ErrNoProviders). Blocks delivered before an error stay delivered.
func (t *Transfer) Fetch(ctx context.Context, req Request) (Stats, error) {
	if t.cfgErr != nil {
		return Stats{}, fmt.Errorf("transfer options: %w", t.cfgErr)
	}
	if !req.Root.Defined() || req.Expand == nil || req.Deliver == nil {
		return Stats{}, errors.New("fetch: Root, Expand and Deliver are required")
	}
	if req.Root.ByteLen() > wire.MaxCIDLen {
		return Stats{}, fmt.Errorf("fetch: root CID longer than %d bytes", wire.MaxCIDLen)
	}
	if !t.track() {
		return Stats{}, ErrClosed
	}
	defer t.wg.Done()

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := context.AfterFunc(t.ctx, func() { cancel(ErrClosed) })
	defer stop()

	f := &fetch{
		t:        t,
		tag:      fmt.Sprintf("peer-fetch-%d", t.fetches.Add(1)),
		req:      req,
		ctx:      ctx,
		cancel:   cancel,
		start:    time.Now(),
		verify:   make(chan verifyItem, t.cfg.verifyWorkers),
		deliver:  make(chan verifyItem, t.cfg.verifyWorkers),
		done:     make(chan struct{}),
		blocks:   make(map[cid.Cid]*block),
		sessions: make(map[peer.ID]*session),
		dialing:  make(map[peer.ID]struct{}),
		findOpen: req.Find != nil,
		leafEst:  256 << 10,
		innerEst: 64 << 10,
		lastTick: time.Now(),
	}
	f.stats.Peers = make(map[peer.ID]PeerStats)
	err := f.run()
	return f.finish(), err
}

func (f *fetch) run() error {
	root := &block{c: f.req.Root, inner: f.req.Root.Type() != cid.Raw, state: stateChecking, idx: -1}
	f.blocks[root.c] = root
	f.remaining = 1
	if root.inner {
		f.innerOpen = 1
	}
	if err := f.resolve([]*block{root}); err != nil {
		return err
	}
	if err := f.pump(); err != nil {
		return err
	}
	f.mu.Lock()
	finished := f.remaining == 0
	f.mu.Unlock()
	if finished {
		return nil
	}

	for range f.t.cfg.verifyWorkers {
		f.wg.Go(f.verifyLoop)
	}
	f.wg.Go(f.deliverLoop)
	for _, p := range f.req.Providers {
		f.addPeer(p)
	}
	if f.req.Find != nil {
		f.wg.Go(f.findLoop)
	}
	f.wg.Go(f.tickLoop)

	select {
	case <-f.done:
		return nil
	case <-f.ctx.Done():
		select {
		case <-f.done: // finished in the same instant
			return nil
		default:
		}
		err := context.Cause(f.ctx)
		if err == nil {
			err = f.ctx.Err()
		}
		return fmt.Errorf("fetching %s: %w", f.req.Root, err)
	}
}

// finish stops every goroutine of the fetch and returns its stats.
func (f *fetch) finish() Stats {
	f.cancel(nil)
	f.wg.Wait()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.sessions {
		f.stats.Peers[s.p] = s.stats
	}
	f.stats.Duration = time.Since(f.start)
	if f.req.Progress != nil {
		p := f.progressLocked()
		f.mu.Unlock()
		f.req.Progress(p)
		f.mu.Lock()
	}
	return f.stats
}

func (f *fetch) fail(err error) {
	f.cancel(err)
}

// pump takes up children of expanded nodes while the frontier has room, and
// resolves them; it returns when the frontier is full or nothing is pending.
func (f *fetch) pump() error {
	for {
		f.mu.Lock()
		fresh := f.admitLocked()
		f.mu.Unlock()
		if len(fresh) == 0 {
			return nil
		}
		if err := f.resolve(fresh); err != nil {
			return err
		}
	}
}

// admitLocked takes up pending children in DAG order: every raw leaf (its
// CID is held already), and an inner node only while the frontier has room
// for what it may add, or when nothing else is under way (so a fetch always
// progresses).
func (f *fetch) admitLocked() []*block {
	var fresh []*block
	for len(f.pending) > 0 && f.ctx.Err() == nil {
		e := f.pending[0]
		c := e.kids[e.next]
		inner := c.Type() != cid.Raw
		if inner && f.remaining > 0 && f.remaining+f.pendingKids+(f.innerOpen+1)*maxFanout > frontierBound {
			break
		}
		path := make([]uint32, len(e.path)+1)
		copy(path, e.path)
		path[len(e.path)] = uint32(e.next)
		e.next++
		f.pendingKids--
		if e.next == len(e.kids) {
			heap.Pop(&f.pending)
		} else {
			heap.Fix(&f.pending, 0)
		}
		if k := f.takeUpLocked(c, path, e.parent); k != nil {
			fresh = append(fresh, k)
		}
	}
	return fresh
}

// takeUpLocked registers the block c at path and returns it, or nil if it is
// already on its way. A block met again once done is taken up again: its new
// place (which Expand has recorded) needs it too.
func (f *fetch) takeUpLocked(c cid.Cid, path []uint32, parent *block) *block {
	k, ok := f.blocks[c]
	if ok {
		switch k.state {
		case stateDone:
		case stateVerifying:
			if k.again == nil {
				k.again = path
			}
			return nil
		default:
			return nil // a repeated block (say, a chunk of zeros) is fetched once
		}
		k.state, k.path, k.parent, k.from = stateChecking, path, parent, ""
	} else {
		k = &block{c: c, path: path, parent: parent, inner: c.Type() != cid.Raw, state: stateChecking, idx: -1}
		f.blocks[c] = k
	}
	f.remaining++
	if k.inner {
		f.innerOpen++
	}
	return k
}

// resolve checks new blocks against Local: local leaves are done, local
// inner nodes are read and expanded, the rest is queued for peers.
func (f *fetch) resolve(bs []*block) error {
	var queue []*block
	for _, b := range bs {
		if b.c.Prefix().MhType == multihash.IDENTITY {
			// The block is inline in its CID: nothing to ask anyone.
			if err := f.inline(b); err != nil {
				return err
			}
			continue
		}
		has := false
		if f.req.Local != nil {
			var err error
			if has, err = f.req.Local.Has(f.ctx, b.c); err != nil {
				return fmt.Errorf("checking local %s: %w", shortCID(b.c), err)
			}
		}
		if !has {
			queue = append(queue, b)
			continue
		}
		if b.c.Type() != cid.Raw {
			data, err := f.req.Local.Get(f.ctx, b.c)
			if err != nil {
				return fmt.Errorf("reading local %s: %w", shortCID(b.c), err)
			}
			if !verify(b.c, data) {
				// A damaged local copy: fetch it again.
				queue = append(queue, b)
				continue
			}
			kids, err := f.req.Expand(b.c, data)
			if err != nil {
				return fmt.Errorf("expanding %s: %w", shortCID(b.c), err)
			}
			if err := f.expanded(b, kids); err != nil {
				return err
			}
		}
		f.mu.Lock()
		f.stats.LocalBlocks++
		f.doneLocked(b)
		f.mu.Unlock()
	}
	if len(queue) == 0 {
		return nil
	}
	f.mu.Lock()
	for _, b := range queue {
		b.state = stateQueued
		heap.Push(&f.queue, b)
	}
	f.kickAllLocked()
	f.mu.Unlock()
	return nil
}

// inline expands and delivers a block carried by its identity CID.
func (f *fetch) inline(b *block) error {
	dm, err := multihash.Decode(b.c.Hash())
	if err != nil {
		return fmt.Errorf("decoding inline block %s: %w", shortCID(b.c), err)
	}
	kids, err := f.req.Expand(b.c, dm.Digest)
	if err != nil {
		return fmt.Errorf("expanding %s: %w", shortCID(b.c), err)
	}
	if err := f.expanded(b, kids); err != nil {
		return err
	}
	if err := f.req.Deliver(b.c, dm.Digest); err != nil {
		return fmt.Errorf("delivering %s: %w", shortCID(b.c), err)
	}
	f.mu.Lock()
	f.stats.Blocks++
	f.stats.Bytes += int64(len(dm.Digest))
	f.doneLocked(b)
	f.mu.Unlock()
	return nil
}

// expanded records that inner block b was expanded into kids, which are
// taken up later, in DAG order, as the frontier allows (pump).
func (f *fetch) expanded(b *block, kids []cid.Cid) error {
	for _, c := range kids {
		if !c.Defined() || c.ByteLen() > wire.MaxCIDLen {
			return fmt.Errorf("block %s links to an invalid CID", shortCID(b.c))
		}
	}
	if f.req.MaxDepth > 0 && len(b.path) >= f.req.MaxDepth {
		for _, c := range kids {
			if c.Type() != cid.Raw {
				return fmt.Errorf("block %s links to an inner node deeper than %d levels", shortCID(b.c), f.req.MaxDepth)
			}
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if b.inner {
		f.innerOpen--
	}
	if len(kids) > 0 {
		heap.Push(&f.pending, &expansion{parent: b, path: b.path, kids: kids})
		f.pendingKids += len(kids)
	}
	return nil
}

func (f *fetch) doneLocked(b *block) {
	b.state = stateDone
	b.path, b.holders, b.lacking = nil, nil, nil
	f.remaining--
	if f.remaining == 0 && len(f.pending) == 0 {
		close(f.done)
	}
}

func (f *fetch) kickAllLocked() {
	for _, s := range f.sessions {
		if !s.dead {
			s.wake()
		}
	}
}

// verify reports whether data hashes to c.
func verify(c cid.Cid, data []byte) bool {
	h := c.Hash()
	if len(h) == 34 && h[0] == multihash.SHA2_256 && h[1] == 32 {
		sum := sha256.Sum256(data)
		return bytes.Equal(sum[:], h[2:])
	}
	got, err := c.Prefix().Sum(data)
	return err == nil && got.Equals(c)
}

func (f *fetch) verifyLoop() {
	for {
		select {
		case <-f.ctx.Done():
			return
		case it := <-f.verify:
			if !f.check(it) {
				wire.PutBuffer(it.data)
			}
		}
	}
}

// deliverLoop hands verified blocks to Deliver, one at a time: the hashing
// workers go on while a block is written.
func (f *fetch) deliverLoop() {
	for {
		select {
		case <-f.ctx.Done():
			return
		case it := <-f.deliver:
			f.deliverBlock(it)
			wire.PutBuffer(it.data)
		}
	}
}

func (f *fetch) deliverBlock(it verifyItem) {
	if err := f.req.Deliver(it.b.c, it.data); err != nil {
		f.failBlock(it.b, fmt.Errorf("delivering %s: %w", shortCID(it.b.c), err))
		return
	}
	f.mu.Lock()
	f.stats.Blocks++
	f.stats.Bytes += int64(len(it.data))
	it.s.stats.Blocks++
	var again *block
	if b := it.b; b.again != nil {
		// Linked again while it was on its way: taken up again at once (never
		// done in between, so the fetch cannot end without it).
		again = b
		b.state, b.path, b.again, b.from = stateChecking, b.again, nil, ""
		b.holders, b.lacking = nil, nil
		if b.inner {
			f.innerOpen++
		}
	} else {
		f.doneLocked(b)
	}
	f.mu.Unlock()
	err := error(nil)
	if again != nil {
		err = f.resolve([]*block{again})
	}
	if err == nil {
		err = f.pump()
	}
	if err != nil {
		f.fail(err)
	}
}

// check verifies one received block and expands it, then queues it for
// delivery; it reports whether the block went on (and its buffer with it).
func (f *fetch) check(it verifyItem) bool {
	b := it.b
	if !verify(b.c, it.data) {
		f.mu.Lock()
		f.stats.BadBlocks++
		it.s.stats.Bad++
		b.lacking = append(b.lacking, it.s.p)
		b.state = stateRequested // with no holder: back to the queue
		f.requeueLocked(b)
		f.mu.Unlock()
		f.dropSession(it.s, fmt.Errorf("%w: %s", ErrBadBlock, b.c), true)
		return false
	}
	f.mu.Lock()
	b.from = it.s.p
	f.mu.Unlock()
	kids, err := f.req.Expand(b.c, it.data)
	if err != nil {
		f.failBlock(b, fmt.Errorf("expanding %s: %w", shortCID(b.c), err))
		return false
	}
	err = f.expanded(b, kids)
	if err == nil {
		err = f.pump()
	}
	if err != nil {
		f.fail(err)
		return false
	}
	select {
	case f.deliver <- it:
		return true
	case <-f.ctx.Done():
		return false
	}
}

// failBlock ends the fetch because of b. When b contradicts its parent
// (ErrInvalidDAG), the peer that sent the parent lied about it: it is dropped
// and banned.
func (f *fetch) failBlock(b *block, err error) {
	if errors.Is(err, ErrInvalidDAG) {
		f.mu.Lock()
		var liar peer.ID
		if b.parent != nil {
			liar = b.parent.from
		}
		s := f.sessions[liar]
		f.mu.Unlock()
		switch {
		case s != nil:
			f.dropSession(s, err, true)
		case liar != "":
			f.t.misbehaved(liar, err)
		}
	}
	f.fail(err)
}

// addPeer starts a session with p unless it is known, banned or us.
func (f *fetch) addPeer(p peer.ID) {
	if p == f.t.h.ID() || f.t.Banned(p) {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.sessions[p]; ok || f.liveLocked() >= f.t.cfg.maxPeers || f.ctx.Err() != nil {
		return
	}
	s := newSession(f, p)
	f.sessions[p] = s
	// The newcomer may have what everyone else lacks.
	for i, b := range f.lacked {
		heap.Push(&f.queue, b)
		f.lacked[i] = nil
	}
	f.lacked = f.lacked[:0]
	f.wg.Go(s.run)
}

// maxDials bounds the providers from Find that one fetch connects to at
// once: a DHT may yield thousands.
const maxDials = 8

// findLoop connects to the providers Find yields and adds them, at most
// maxDials at a time and none once the fetch has all the peers it may use.
func (f *fetch) findLoop() {
	defer func() {
		f.mu.Lock()
		f.findOpen = false
		f.mu.Unlock()
	}()
	slots := make(chan struct{}, maxDials)
	ch := f.req.Find(f.ctx)
	for {
		var ai peer.AddrInfo
		var ok bool
		select {
		case <-f.ctx.Done():
			return
		case ai, ok = <-ch:
			if !ok {
				return
			}
		}
		select {
		case slots <- struct{}{}:
		case <-f.ctx.Done():
			return
		}
		f.mu.Lock()
		_, known := f.sessions[ai.ID]
		_, dialing := f.dialing[ai.ID]
		full := f.liveLocked() >= f.t.cfg.maxPeers
		if known || dialing || full || ai.ID == f.t.h.ID() {
			f.mu.Unlock()
			<-slots
			continue
		}
		f.dialing[ai.ID] = struct{}{}
		f.mu.Unlock()
		f.wg.Go(func() {
			defer func() { <-slots }()
			if len(ai.Addrs) > 0 {
				ctx, cancel := context.WithTimeout(f.ctx, f.t.cfg.dialTimeout)
				err := f.t.h.Connect(ctx, ai)
				cancel()
				if err != nil {
					f.t.log.Debug("provider unreachable", "peer", ai.ID.ShortString(), "err", err)
				}
			}
			f.addPeer(ai.ID)
			f.mu.Lock()
			delete(f.dialing, ai.ID)
			f.mu.Unlock()
		})
	}
}

// tickLoop measures rates, adapts windows, drops stalled peers, detects a
// fetch nobody can serve and reports progress.
func (f *fetch) tickLoop() {
	tick := time.NewTicker(f.t.cfg.progressInterval)
	defer tick.Stop()
	for {
		select {
		case <-f.ctx.Done():
			return
		case <-tick.C:
		}
		now := time.Now()
		var stalled []*session
		f.mu.Lock()
		dt := now.Sub(f.lastTick).Seconds()
		f.lastTick = now
		if dt > 0 {
			inst := float64(f.stats.Received-f.lastRecv) / dt
			f.rate = 0.7*f.rate + 0.3*inst
			f.lastRecv = f.stats.Received
		}
		for _, s := range f.sessions {
			if s.dead {
				continue
			}
			s.tickLocked(now, dt)
			if s.stalledLocked(now) {
				stalled = append(stalled, s)
			}
		}
		if len(f.queue) == 0 {
			f.kickAllLocked() // idle peers may take over slow peers' work
		}
		var noProv error
		if f.stuckLocked() {
			if f.stuckSince.IsZero() {
				f.stuckSince = now
			}
			hopeless := f.liveLocked() == 0 && !f.findOpen && len(f.dialing) == 0
			if hopeless || now.Sub(f.stuckSince) >= f.t.cfg.noProviders {
				noProv = f.noProvidersErrLocked(now.Sub(f.stuckSince), hopeless)
			}
		} else {
			f.stuckSince = time.Time{}
		}
		var p Progress
		if f.req.Progress != nil {
			p = f.progressLocked()
		}
		f.mu.Unlock()
		for _, s := range stalled {
			f.dropSession(s, ErrStalled, false)
		}
		if noProv != nil {
			f.fail(noProv)
			return
		}
		if f.req.Progress != nil {
			f.req.Progress(p)
		}
	}
}

func (f *fetch) liveLocked() int {
	n := 0
	for _, s := range f.sessions {
		if !s.dead {
			n++
		}
	}
	return n
}

// stuckLocked reports whether no peer is able to make progress: none is
// connected, or none has work in flight and the waiting blocks are all
// lacked by every live peer.
func (f *fetch) stuckLocked() bool {
	if len(f.dialing) > 0 {
		return false
	}
	live := 0
	for _, s := range f.sessions {
		if s.dead {
			continue
		}
		live++
		if !s.opened || len(s.out) > 0 {
			return false
		}
	}
	if live == 0 || len(f.lacked) > 0 {
		return true
	}
	if len(f.queue) == 0 {
		return false // everything is being verified
	}
	for _, b := range f.queue {
		for _, s := range f.sessions {
			if !s.dead && !b.lacks(s.p) {
				return false
			}
		}
	}
	return true
}

func (f *fetch) noProvidersErrLocked(waited time.Duration, hopeless bool) error {
	more := fmt.Sprintf("no other provider came within %s", waited.Round(time.Millisecond))
	if hopeless {
		more = "there is no way to find more (no Find, or it ended)"
	}
	missing := "1 block missing"
	if f.remaining != 1 {
		missing = fmt.Sprintf("%d blocks missing", f.remaining)
	}
	asked := "no peer was found to ask"
	switch n := len(f.sessions); {
	case n == 1:
		asked = "the one peer asked cannot serve them"
	case n > 1:
		asked = fmt.Sprintf("none of the %d peers asked can serve them", n)
	}
	err := fmt.Errorf("%s: %s, and %s: %w", missing, asked, more, ErrNoProviders)
	if f.lastProblem != nil {
		err = fmt.Errorf("%w (last peer dropped: %w)", err, f.lastProblem)
	}
	return err
}

// sourcesLocked counts the peers that delivered a verified block, dropped since or not.
func (f *fetch) sourcesLocked() int {
	n := 0
	for _, s := range f.sessions {
		if s.stats.Blocks > 0 {
			n++
		}
	}
	return n
}

func (f *fetch) progressLocked() Progress {
	return Progress{
		Blocks:     len(f.blocks),
		BlocksDone: len(f.blocks) - f.remaining,
		Bytes:      f.stats.Received,
		BytesDone:  f.stats.Bytes,
		Peers:      f.sourcesLocked(),
		Rate:       f.rate,
		Duplicates: f.stats.DuplicateBytes,
	}
}

// dropSession removes a peer from the fetch and requeues its work.
func (f *fetch) dropSession(s *session, reason error, misbehaved bool) {
	f.mu.Lock()
	if s.dead {
		f.mu.Unlock()
		return
	}
	s.dead = true
	s.stats.Dropped = reason
	if f.ctx.Err() == nil {
		f.lastProblem = fmt.Errorf("peer %s: %w", s.p, reason)
	}
	for c := range s.out {
		b := f.blocks[c]
		b.dropHolder(s)
		f.requeueLocked(b)
	}
	s.out = nil
	f.kickAllLocked()
	f.mu.Unlock()
	s.stop()
	if misbehaved {
		f.t.misbehaved(s.p, reason)
	} else if f.ctx.Err() == nil {
		f.t.log.Debug("peer dropped from fetch", "peer", s.p.ShortString(), "root", shortCID(f.req.Root), "reason", reason)
	}
}
