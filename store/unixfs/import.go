package unixfs

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/ipfs/go-cid"
)

// Block is one block of an imported DAG, as handed to Import's put callback.
type Block struct {
	Cid    cid.Cid
	Data   []byte // valid only during the put callback; buffers are reused
	Leaf   bool   // raw leaf holding file bytes
	Offset uint64 // for leaves: offset of Data in the file
}

// ImportOptions tune Import. The zero value gives the unixfs-v1-2025 profile.
type ImportOptions struct {
	// ChunkSize is the leaf size in bytes: 0 means DefaultChunkSize, anything
	// else must be in [MinChunkSize, MaxChunkSize]. It changes the root CID.
	ChunkSize int
	// Workers is the number of hashing goroutines; 0 means
	// runtime.GOMAXPROCS(0). More than maxWorkers (64) count as 64. Import
	// holds at most 2*Workers+2 chunks in memory.
	Workers int
	// Progress, if not nil, is called with the total bytes read so far after
	// each chunk. It is called from the goroutine reading the input and must
	// not block.
	Progress func(read int64)
}

// ImportResult describes an imported file.
type ImportResult struct {
	Root   cid.Cid
	Size   uint64 // file bytes
	Tsize  uint64 // bytes of every block of the DAG: the dag-pb Tsize of a link to it
	Blocks int    // blocks passed to put (leaves and inner nodes)
}

// Import reads r to EOF, cuts it into fixed-size chunks, hashes the chunks on
// opts.Workers goroutines and builds the balanced UnixFS DAG that IPFS builds
// for the same bytes under the unixfs-v1-2025 profile.
//
// put is called for every block in a deterministic order, the same order in
// which IPFS's balanced builder stores them: leaves in file order, each inner
// node after the blocks it links, the root last. put is called from Import's
// own goroutine, never concurrently; Block.Data is only valid during the call.
// A put error stops the import and is returned. put == nil only hashes.
//
// Memory stays bounded by a few chunks per worker whatever the file size.
// Cancelling ctx stops the import; a Read on r that blocks delays the return
// until it comes back.
func Import(ctx context.Context, r io.Reader, opts ImportOptions, put func(Block) error) (ImportResult, error) {
	return importFile(ctx, r, opts, MaxLinks, put)
}

// importFile is Import with a configurable fan-out, so that tests can build
// deep trees from few chunks.
func importFile(ctx context.Context, r io.Reader, opts ImportOptions, maxLinks int, put func(Block) error) (ImportResult, error) {
	chunkSize := opts.ChunkSize
	if chunkSize == 0 {
		chunkSize = DefaultChunkSize
	}
	if chunkSize < MinChunkSize || chunkSize > MaxChunkSize {
		return ImportResult{}, fmt.Errorf("import: chunk size %d is outside [%d, %d]", chunkSize, MinChunkSize, MaxChunkSize)
	}
	workers := opts.Workers
	if workers == 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	if workers < 0 {
		return ImportResult{}, fmt.Errorf("import: %d workers", workers)
	}
	workers = min(workers, maxWorkers)
	if maxLinks < 2 || maxLinks > MaxLinks {
		return ImportResult{}, fmt.Errorf("import: %d links per node is outside [2, %d]", maxLinks, MaxLinks)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	p := newPipeline(chunkSize, workers)
	p.start(ctx, r, opts.Progress)
	b := &builder{ctx: ctx, p: p, put: put, maxLinks: maxLinks}
	root, err := b.layout()
	cancel()
	p.stop()
	if err != nil {
		return ImportResult{}, fmt.Errorf("import: %w", err)
	}
	return ImportResult{Root: root.c, Size: root.fsize, Tsize: root.tsize, Blocks: b.blocks}, nil
}

// maxWorkers caps ImportOptions.Workers, and so the memory an import holds.
const maxWorkers = 64

// chunk is one chunk of input on its way from the reader through a hashing
// worker to the builder. Chunks and their buffers are recycled.
type chunk struct {
	buf  []byte
	n    int
	off  uint64
	sum  [sha256.Size]byte
	done chan struct{} // receives one token when sum is ready
}

// defaultChunks recycles chunks of DefaultChunkSize across imports.
var defaultChunks sync.Pool

// pipeline reads chunks on one goroutine, hashes them on several and hands
// them to the builder in file order.
type pipeline struct {
	size  int
	slots int         // chunks in existence at most
	free  chan *chunk // chunks the builder is done with
	work  chan *chunk // chunks to hash
	order chan *chunk // chunks in file order, for the builder
	wg    sync.WaitGroup

	made    int   // chunks allocated; reader goroutine only
	readErr error // set by the reader before it closes order

	peeked *chunk // builder only
	eof    bool   // builder only
}

func newPipeline(size, workers int) *pipeline {
	slots := 2*workers + 2
	return &pipeline{
		size:  size,
		slots: slots,
		free:  make(chan *chunk, slots),
		work:  make(chan *chunk, slots),
		order: make(chan *chunk, slots),
	}
}

func (p *pipeline) start(ctx context.Context, r io.Reader, progress func(int64)) {
	workers := p.slots/2 - 1
	p.wg.Add(1 + workers)
	go p.read(ctx, r, progress)
	for range workers {
		go p.hash()
	}
}

// stop waits for the reader and the workers and recycles every chunk. The
// caller cancels their context first unless the input was read to the end.
func (p *pipeline) stop() {
	p.wg.Wait()
	if p.peeked != nil {
		p.recycle(p.peeked)
		p.peeked = nil
	}
	for c := range p.order {
		p.recycle(c)
	}
	for {
		select {
		case c := <-p.free:
			p.recycle(c)
		default:
			return
		}
	}
}

func (p *pipeline) newChunk() *chunk {
	if p.size == DefaultChunkSize {
		if c, ok := defaultChunks.Get().(*chunk); ok {
			return c
		}
	}
	return &chunk{buf: make([]byte, p.size), done: make(chan struct{}, 1)}
}

func (p *pipeline) recycle(c *chunk) {
	select {
	case <-c.done:
	default:
	}
	if p.size == DefaultChunkSize {
		defaultChunks.Put(c)
	}
}

// read is the reader goroutine.
func (p *pipeline) read(ctx context.Context, r io.Reader, progress func(int64)) {
	defer p.wg.Done()
	defer close(p.order)
	defer close(p.work)
	var off uint64
	for {
		var c *chunk
		select {
		case c = <-p.free:
		default:
			if p.made < p.slots {
				c = p.newChunk()
				p.made++
				break
			}
			select {
			case c = <-p.free:
			case <-ctx.Done():
				return
			}
		}
		if ctx.Err() != nil {
			p.free <- c
			return
		}
		n, err := io.ReadFull(r, c.buf)
		if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
			p.free <- c
			p.readErr = fmt.Errorf("reading input: %w", err)
			return
		}
		if n == 0 {
			p.free <- c
			return
		}
		c.n, c.off = n, off
		off += uint64(n)
		// Neither send blocks: both channels hold every chunk there is.
		p.work <- c
		p.order <- c
		if progress != nil {
			progress(int64(off))
		}
		if err != nil {
			return
		}
	}
}

// hash is a hashing worker.
func (p *pipeline) hash() {
	defer p.wg.Done()
	for c := range p.work {
		c.sum = sha256.Sum256(c.buf[:c.n])
		c.done <- struct{}{}
	}
}

// next returns the next chunk in file order, or nil at the end of the input.
func (p *pipeline) next(ctx context.Context) (*chunk, error) {
	if c := p.peeked; c != nil {
		p.peeked = nil
		return c, nil
	}
	if p.eof {
		return nil, nil
	}
	select {
	case c, ok := <-p.order:
		if !ok {
			p.eof = true
			return nil, p.readErr
		}
		return c, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// done tells whether the input has no more chunks, waiting for the reader if
// it must.
func (p *pipeline) done(ctx context.Context) (bool, error) {
	if p.peeked != nil {
		return false, nil
	}
	c, err := p.next(ctx)
	if err != nil {
		return false, err
	}
	p.peeked = c
	return c == nil, nil
}

// link is a built child: its CID, cumulative block size (dag-pb Tsize) and
// file bytes (UnixFS blocksize).
type link struct {
	c     cid.Cid
	tsize uint64
	fsize uint64
}

// builder assembles the DAG exactly as boxo's balanced layout does
// (ipld/unixfs/importer/balanced/builder.go): the first leaf is the root; while
// input remains, a new root is made whose first child is the old root and
// which is then filled, up to maxLinks children, with full subtrees one level
// lower than itself.
type builder struct {
	ctx      context.Context
	p        *pipeline
	put      func(Block) error
	maxLinks int
	blocks   int

	levels [][]link // per depth, reused link lists
	bs     []uint64 // blocksizes scratch
	fsbuf  []byte   // UnixFS data scratch
	buf    []byte   // dag-pb block scratch
}

func (b *builder) layout() (link, error) {
	done, err := b.p.done(b.ctx)
	if err != nil {
		return link{}, err
	}
	if done {
		return b.emit(nil, true, 0)
	}
	root, err := b.leaf()
	if err != nil {
		return link{}, err
	}
	for depth := 1; ; depth++ {
		done, err := b.p.done(b.ctx)
		if err != nil {
			return link{}, err
		}
		if done {
			return root, nil
		}
		root, err = b.fill(append(b.level(depth), root), depth)
		if err != nil {
			return link{}, err
		}
	}
}

// level returns the empty, reusable link list for depth d.
func (b *builder) level(d int) []link {
	for len(b.levels) <= d {
		b.levels = append(b.levels, nil)
	}
	return b.levels[d][:0]
}

// fill adds children at depth-1 to a node at depth that already has links,
// until it has maxLinks of them or the input ends, and emits it.
func (b *builder) fill(links []link, depth int) (link, error) {
	for len(links) < b.maxLinks {
		done, err := b.p.done(b.ctx)
		if err != nil {
			return link{}, err
		}
		if done {
			break
		}
		var child link
		if depth == 1 {
			child, err = b.leaf()
		} else {
			child, err = b.fill(b.level(depth-1), depth-1)
		}
		if err != nil {
			return link{}, err
		}
		links = append(links, child)
	}
	b.levels[depth] = links[:0]
	return b.inner(links)
}

// leaf emits the next chunk as a raw leaf.
func (b *builder) leaf() (link, error) {
	if err := b.ctx.Err(); err != nil {
		return link{}, err
	}
	c, err := b.p.next(b.ctx)
	if err != nil {
		return link{}, err
	}
	if c == nil {
		return link{}, errors.New("input ended early") // done said otherwise
	}
	defer func() { b.p.free <- c }()
	select {
	case <-c.done:
	case <-b.ctx.Done():
		return link{}, b.ctx.Err()
	}
	return b.emitSum(c.buf[:c.n], true, c.off, cid.Raw, c.sum)
}

// inner emits a dag-pb file node linking links.
func (b *builder) inner(links []link) (link, error) {
	var fsize, tsize uint64
	bs := b.bs[:0]
	for _, l := range links {
		bs = append(bs, l.fsize)
		fsize += l.fsize
		tsize += l.tsize
	}
	b.bs = bs
	b.fsbuf = FSData{Type: File, FileSize: fsize, HasFileSize: true, BlockSizes: bs}.appendTo(b.fsbuf[:0])
	buf := b.buf[:0]
	for _, l := range links {
		buf = appendLink(buf, l.c, "", l.tsize)
	}
	buf = appendPBData(buf, b.fsbuf)
	b.buf = buf
	l, err := b.emitSum(buf, false, 0, cid.DagProtobuf, sha256.Sum256(buf))
	if err != nil {
		return link{}, err
	}
	l.tsize += tsize
	l.fsize = fsize
	return l, nil
}

// emit hashes and emits a leaf.
func (b *builder) emit(data []byte, leaf bool, off uint64) (link, error) {
	return b.emitSum(data, leaf, off, cid.Raw, sha256.Sum256(data))
}

// emitSum passes a block to put. For a leaf the returned link is complete; for
// an inner node the caller adds its children's sizes.
func (b *builder) emitSum(data []byte, leaf bool, off uint64, codec uint64, sum [sha256.Size]byte) (link, error) {
	c, err := cidFromSHA256(codec, sum)
	if err != nil {
		return link{}, err
	}
	if data == nil {
		data = []byte{}
	}
	if b.put != nil {
		if err := b.put(Block{Cid: c, Data: data, Leaf: leaf, Offset: off}); err != nil {
			return link{}, err // the store's put names the block
		}
	}
	b.blocks++
	return link{c: c, tsize: uint64(len(data)), fsize: uint64(len(data))}, nil
}

// cidFromSHA256 makes a CIDv1 of codec (raw or dag-pb, both one-byte varints)
// from a sha2-256 digest.
func cidFromSHA256(codec uint64, sum [sha256.Size]byte) (cid.Cid, error) {
	var a [4 + sha256.Size]byte
	a[0], a[1], a[2], a[3] = 1, byte(codec), 0x12, sha256.Size
	copy(a[4:], sum[:])
	return cid.Cast(a[:])
}
