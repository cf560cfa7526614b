package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/ipfs/go-cid"

	"peer/internal/fsys"
	"peer/store/unixfs"
)

// Download is a fetch in progress. It is what the transfer layer talks to: it says which blocks
// are already here (so a resumed fetch asks only for the rest), learns the DAG's shape from inner
// nodes as they arrive, and puts each verified block in its place: inner nodes in the repo, leaves
// at their offsets in the output file (written once, never copied) or, with no output file, in
// the repo. Its methods are safe for concurrent use.
type Download struct {
	s        *Store
	root     cid.Cid
	name     string
	path     string   // final output; "" keeps every block in the repo
	partPath string   // PartPath(path, root), recorded in FetchStarted
	part     *os.File // the partial file while incomplete
	// direct writes aligned leaves to part bypassing the page cache; nil where unsupported.
	direct *directWriter
	// tree is a folder's partial tree, which its leaves are written into (treefetch.go).
	tree *treeOut
	// resumed is set when the output file already held bytes: only then can a leaf be found
	// in it before it is delivered.
	resumed bool
	have    atomic.Uint64 // file bytes here and verified
	found   atomic.Uint64 // of those, bytes that were already here (not delivered by this fetch)
	// got is set once any block was here or delivered: only a download that got nothing leaves
	// nothing behind when it fails.
	got atomic.Bool

	mu      sync.Mutex
	offsets map[string][]uint64 // block key → offsets in the file (one leaf may repeat)
	sizes   map[string]int      // block key → bytes of file content
	counts  map[string]int      // leaf key → offsets already counted in have
	size    uint64              // file size, known once the root is parsed
	// reserved is how far the partial file is preallocated: never more than reserveStep past the
	// verified bytes written, so a root's claim alone reserves nothing.
	reserved uint64
	arrived  chan struct{} // closed and replaced whenever a block arrives
	done     bool
	dir      bool // the root is a folder (its blocks all go to the repo)

	// release lets GC run again; called once, when Complete succeeds or Fail is called.
	release func()
}

// StartDownload records that a fetch of root began (or resumed) and prepares its output. With a
// path, bytes go to PartPath(path, root), which is renamed to path when Complete verifies the whole
// file. The partial file is created exclusively (a file or link already there is not written
// through); one that exists is resumed only if the log records it as this file's partial file
// (FetchStarted), else StartDownload fails with ErrUnknownPart naming it.
//
// Until Complete succeeds or Fail is called, GC does not run: the blocks a download writes are
// named by no event yet. Every Download must end in one of the two.
func (s *Store) StartDownload(root cid.Cid, name, path string) (_ *Download, err error) {
	if err := unixfs.CheckCID(root); err != nil {
		return nil, err
	}
	s.blocks.gc.RLock()
	release := sync.OnceFunc(s.blocks.gc.RUnlock)
	defer func() {
		if err != nil {
			release()
		}
	}()
	d := &Download{s: s, root: root, name: name, offsets: map[string][]uint64{blockKey(root): {0}}, sizes: map[string]int{}, counts: map[string]int{}, arrived: make(chan struct{})}
	d.release = func() {
		release()
		s.downloads.remove(d)
	}
	if path != "" {
		abs, err := filepath.Abs(path)
		if err != nil {
			return nil, err
		}
		d.path, d.partPath = abs, PartPath(abs, root)
		f, known := s.File(root)
		known = known && f.State == Partial && f.Part == d.partPath
		if d.part, d.resumed, err = openPart(d.partPath, known); err != nil {
			return nil, err
		}
		d.direct = openDirect(d.part)
	}
	if err := s.Record(Event{Type: FetchStarted, Root: root.String(), Name: name, Path: d.path, Part: d.partPath}); err != nil {
		d.closePart()
		return nil, err
	}
	s.downloads.add(d)
	return d, nil
}

// Have is how many bytes of the file are here and verified so far.
func (d *Download) Have() uint64 { return d.have.Load() }

// Found is how many of the file's bytes were already here (a resumed fetch, or leaves another
// held file shares) rather than delivered by this fetch.
func (d *Download) Found() uint64 { return d.found.Load() }

// foundHere counts leaf c, which Has found here.
func (d *Download) foundHere(c cid.Cid, size int) {
	d.got.Store(true)
	if n := d.counted(c, size); n > 0 {
		d.found.Add(n)
	}
}

// counted adds leaf c's bytes, at every offset it occupies and that was not counted before (the
// fetch delivers a leaf again when the DAG links to it once more), to what the download has, and
// returns how many bytes it added.
func (d *Download) counted(c cid.Cid, size int) uint64 {
	if c.Prefix().Codec != cid.Raw {
		return 0
	}
	k := blockKey(c)
	d.mu.Lock()
	fresh := len(d.offsets[k]) - d.counts[k]
	d.counts[k] = len(d.offsets[k])
	d.mu.Unlock()
	n := uint64(size) * uint64(max(fresh, 0))
	d.have.Add(n)
	return n
}

// Root is the file being fetched.
func (d *Download) Root() cid.Cid { return d.root }

// Size is the file's size, or 0 until the root block has been seen.
func (d *Download) Size() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.size
}

func (d *Download) leafOffsets(c cid.Cid) []uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.offsets[blockKey(c)]
}

// Has reports whether c is already here: in the repo, in a file the repo references, or (a
// leaf) verified at its place in the output file, which is how a download resumes after a crash
// without a record of every write. The transfer layer fetches only what Has denies and delivers
// nothing that Has confirmed, so a leaf found elsewhere is copied into the output file here.
func (d *Download) Has(ctx context.Context, c cid.Cid) (bool, error) {
	if d.tree != nil {
		return d.treeHas(ctx, c)
	}
	leaf := c.Prefix().Codec == cid.Raw
	if !leaf {
		has := d.s.blocks.has(c)
		if has {
			d.got.Store(true)
		}
		return has, nil
	}
	if d.part != nil && d.resumed {
		if data, err := d.readPart(c); err == nil {
			d.foundHere(c, len(data))
			return true, nil
		}
	}
	data, err := d.s.GetBlock(ctx, c) // verified: a corrupt or changed copy is fetched again
	if err != nil {
		return false, nil
	}
	if err := d.checkLeafSize(c, data); err != nil {
		return false, err
	}
	if d.part != nil {
		if err := d.writeLeaf(c, data); err != nil {
			return false, err
		}
	}
	d.foundHere(c, len(data))
	return true, nil
}

// Get returns a block that Has reported.
func (d *Download) Get(ctx context.Context, c cid.Cid) ([]byte, error) {
	data, err := d.s.GetBlock(ctx, c)
	if err == nil || !errors.Is(err, ErrNotFound) || d.part == nil || c.Prefix().Codec != cid.Raw {
		return data, err
	}
	return d.readPart(c)
}

// readPart reads leaf c from the output file and verifies it at every offset it occupies; a
// position that does not verify (a hole, a torn write) is rewritten from one that does.
func (d *Download) readPart(c cid.Cid) ([]byte, error) {
	var good []byte
	var bad []uint64
	size := d.leafSize(c)
	if size <= 0 || size > unixfs.MaxBlockSize {
		// Unknown, or more than any block holds: a parent's blocksizes cannot be trusted for it.
		return nil, fmt.Errorf("%w: %s", ErrNotFound, c)
	}
	for _, off := range d.leafOffsets(c) {
		buf := make([]byte, size)
		n, _ := d.part.ReadAt(buf, int64(off))
		if good == nil && n == len(buf) && unixfs.Verify(c, buf) == nil {
			good = buf
			continue
		}
		if good == nil || n != len(buf) || string(buf) != string(good) {
			bad = append(bad, off)
		}
	}
	if good == nil {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, c)
	}
	for _, off := range bad {
		if _, err := d.part.WriteAt(good, int64(off)); err != nil {
			return nil, err
		}
	}
	return good, nil
}

// leafSizes are remembered from parents' blocksizes, since a raw leaf's size is not in its CID.
func (d *Download) leafSize(c cid.Cid) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.sizes[blockKey(c)]
}

// ErrInconsistentDAG is wrapped by Expand and Deliver for a block that matches its CID but not
// what its parent says of it: a node whose file size differs from its parent's blocksize for it, a
// leaf of another length. The file such a DAG describes does not exist (its parts would overlap or
// leave gaps), so the download cannot complete.
var ErrInconsistentDAG = errors.New("the DAG contradicts itself")

// Expand parses a verified block and returns its children in file order, recording where each
// child's bytes go. It checks the block against its parent's claim (ErrInconsistentDAG) and its
// children's claimed sizes: each at least one byte (so a tree never has more leaves than its
// file has bytes), a raw leaf no larger than a block, and one size for a child that several
// parents share.
func (d *Download) Expand(c cid.Cid, block []byte) ([]cid.Cid, error) {
	if d.tree != nil {
		return d.treeExpand(c, block)
	}
	n, err := unixfs.ParseNode(c, block)
	if errors.Is(err, unixfs.ErrNotFile) && c.Type() == cid.DagProtobuf {
		return d.expandTree(c, block)
	}
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if want, ok := d.sizes[blockKey(c)]; ok && !c.Equals(d.root) && uint64(want) != n.Size {
		return nil, fmt.Errorf("%w: block %s holds %d file bytes but its parent says %d", ErrInconsistentDAG, c, n.Size, want)
	}
	for i, ch := range n.Children {
		switch {
		case ch.Size == 0:
			return nil, fmt.Errorf("%w: block %s gives its link %d no bytes", ErrInconsistentDAG, c, i)
		case ch.Cid.Prefix().Codec == cid.Raw && ch.Size > unixfs.MaxBlockSize:
			return nil, fmt.Errorf("%w: block %s says its leaf %s holds %d bytes, more than a block", ErrInconsistentDAG, c, ch.Cid, ch.Size)
		}
		if had, ok := d.sizes[blockKey(ch.Cid)]; ok && uint64(had) != ch.Size {
			return nil, fmt.Errorf("block %s says %s holds %d bytes, another parent says %d", c, ch.Cid, ch.Size, had)
		}
	}
	if c.Equals(d.root) {
		d.size = n.Size
		d.sizes[blockKey(c)] = int(n.Size)
	}
	if d.part != nil && c.Prefix().Codec != cid.Raw && len(n.Data) > 0 {
		// File bytes held in a dag-pb node itself (DAGs of older importers) go to the file
		// like a leaf's; Expand sees every inner node, fetched or already here.
		for _, off := range d.offsets[blockKey(c)] {
			if _, err := d.part.WriteAt(n.Data, int64(off)); err != nil {
				return nil, fmt.Errorf("writing %s: %w", d.partPath, err)
			}
		}
	}
	kids := make([]cid.Cid, len(n.Children))
	for i, ch := range n.Children {
		kids[i] = ch.Cid
		k := blockKey(ch.Cid)
		for _, off := range d.offsets[blockKey(c)] {
			d.offsets[k] = appendUnique(d.offsets[k], off+ch.Offset)
		}
		d.sizes[k] = int(ch.Size)
	}
	return kids, nil
}

// expandTree expands a block of a folder's DAG that is not a file's: a plain folder (its names
// checked by unixfs.ParseDir as it arrives), a HAMT shard (the root shard checked as it arrives,
// those below it when Complete walks the whole tree), or a symlink (no children). Only a download without an output file (a
// folder's blocks go to the repo) takes them.
func (d *Download) expandTree(c cid.Cid, block []byte) ([]cid.Cid, error) {
	if d.path != "" {
		return nil, fmt.Errorf("%s is a folder, not a file: %w", c, unixfs.ErrNotFile)
	}
	kind, _, err := unixfs.Inspect(c, block)
	if err != nil {
		return nil, err
	}
	var kids []cid.Cid
	switch kind {
	case unixfs.Symlink:
	case unixfs.Directory:
		if isShard(block) && !c.Equals(d.root) {
			// A shard below the root: its depth, and so its slots, are known only to the tree walk.
			if kids, err = unixfs.Children(c, block); err != nil {
				return nil, err
			}
			break
		}
		dir, err := unixfs.ParseDir(c, block, 0, 0)
		if err != nil {
			return nil, err
		}
		kids = make([]cid.Cid, len(dir.Links))
		for i, l := range dir.Links {
			kids[i] = l.Cid
		}
	default:
		return nil, fmt.Errorf("block %s: a UnixFS %s cannot be part of a folder", c, kind)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if c.Equals(d.root) {
		d.dir = true
	}
	for _, k := range kids {
		// Each file under the folder starts at offset 0 of its own bytes: counted measures them.
		if kk := blockKey(k); len(d.offsets[kk]) == 0 {
			d.offsets[kk] = []uint64{0}
		}
	}
	return kids, nil
}

// isShard tells whether a folder block is a HAMT shard.
func isShard(block []byte) bool {
	pb, err := unixfs.DecodePB(block)
	if err != nil {
		return false
	}
	fs, err := unixfs.DecodeFSData(pb.Data)
	return err == nil && fs.Type == unixfs.HAMTShard
}

func appendUnique(s []uint64, v uint64) []uint64 {
	for _, x := range s {
		if x == v {
			return s
		}
	}
	return append(s, v)
}

// Deliver stores a verified block: a leaf at its offsets in the output file, anything else in
// the repo.
func (d *Download) Deliver(c cid.Cid, block []byte) error {
	if d.tree != nil {
		return d.treeDeliver(c, block)
	}
	if err := d.checkLeafSize(c, block); err != nil {
		return err
	}
	if d.part != nil && c.Prefix().Codec == cid.Raw {
		if err := d.writeLeaf(c, block); err != nil {
			return err
		}
	} else if err := d.s.blocks.put(c, block); err != nil {
		return err
	}
	d.counted(c, len(block))
	d.got.Store(true)
	d.mu.Lock()
	close(d.arrived)
	d.arrived = make(chan struct{})
	d.mu.Unlock()
	return nil
}

// checkLeafSize refuses a leaf whose length is not what its parent's blocksizes say. Such a DAG is
// inconsistent: written at its offsets the leaf would overrun its neighbours, and no reader would
// accept the file.
func (d *Download) checkLeafSize(c cid.Cid, block []byte) error {
	if c.Prefix().Codec != cid.Raw {
		return nil
	}
	d.mu.Lock()
	want, known := d.sizes[blockKey(c)]
	d.mu.Unlock()
	if known && want != len(block) {
		return fmt.Errorf("%w: block %s holds %d bytes but its parent says %d", ErrInconsistentDAG, c, len(block), want)
	}
	return nil
}

// writeLeaf writes a verified leaf at each of its offsets in the output file.
func (d *Download) writeLeaf(c cid.Cid, block []byte) error {
	offs := d.leafOffsets(c)
	if len(offs) == 0 {
		return fmt.Errorf("block %s arrived before its parent", c)
	}
	for _, off := range offs {
		if err := d.reserve(off + uint64(len(block))); err != nil {
			return err
		}
		done, err := d.direct.writeAt(block, int64(off))
		if err == nil && !done {
			if _, err = d.part.WriteAt(block, int64(off)); err == nil {
				// Start writeback now so the final fsync has little left to do.
				fsys.WriteBehind(d.part, int64(off), int64(len(block)))
			}
		}
		if err != nil {
			return fmt.Errorf("writing %s: %w", d.partPath, err)
		}
	}
	return nil
}

// reserveStep is how much disk a download reserves at a time, ahead of the verified bytes it has
// written: a full disk shows up early, and a root's claim of a size reserves nothing by itself.
const reserveStep = 64 << 20

// reserve preallocates the partial file in steps of reserveStep as verified leaves reach end,
// never more than reserveStep past what the download has verified.
func (d *Download) reserve(end uint64) error {
	have := d.have.Load()
	d.mu.Lock()
	defer d.mu.Unlock()
	if end <= d.reserved || d.reserved > have+reserveStep/2 {
		return nil
	}
	to := min(d.size, d.reserved+reserveStep, have+reserveStep)
	if to <= d.reserved {
		return nil
	}
	if err := fsys.Preallocate(d.part, int64(to)); err != nil {
		return fmt.Errorf("reserving %d bytes for %s: %w", to-d.reserved, d.partPath, err)
	}
	d.reserved = to
	return nil
}

// Wait returns block c as soon as it is here; it lets a reader stream the file in order while the
// fetch fills it in.
func (d *Download) Wait(ctx context.Context, c cid.Cid) ([]byte, error) {
	for {
		d.mu.Lock()
		ch := d.arrived
		d.mu.Unlock()
		if data, err := d.Get(ctx, c); err == nil {
			return data, nil
		} else if !errors.Is(err, ErrNotFound) {
			return nil, err
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Complete makes the file durable and in place, and records FetchCompleted. Call it only after
// every block was delivered.
func (d *Download) Complete() error {
	if d.tree != nil {
		return d.treeComplete()
	}
	d.mu.Lock()
	size := d.size
	d.mu.Unlock()
	ev := Event{Type: FetchCompleted, Root: d.root.String(), Name: d.name, Size: size}
	d.mu.Lock()
	dir := d.dir
	d.mu.Unlock()
	if dir {
		// Every folder is decoded again with all of ParseDir's checks (each HAMT shard's shape at
		// its depth) before the folder is recorded as held.
		files, bytes, err := d.s.TreeStats(context.Background(), d.root)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrInconsistentDAG, err)
		}
		ev.Dir, ev.Files, ev.Size = true, files, bytes
	}
	if d.part != nil {
		if err := d.part.Truncate(int64(size)); err != nil {
			return err
		}
		if err := d.part.Sync(); err != nil {
			return fmt.Errorf("syncing output: %w", err)
		}
		if err := errors.Join(d.part.Close(), d.direct.close()); err != nil {
			return err
		}
		d.part, d.direct = nil, nil
		if err := os.Rename(d.partPath, d.path); err != nil {
			return fmt.Errorf("moving output into place: %w", err)
		}
		if err := syncDir(filepath.Dir(d.path)); err != nil {
			return err
		}
		st, err := os.Stat(d.path)
		if err != nil {
			return err
		}
		ev.Path, ev.ModTime = d.path, st.ModTime().UnixNano()
	}
	if err := d.s.blocks.sync(); err != nil {
		return err
	}
	d.mu.Lock()
	d.done = true
	d.mu.Unlock()
	if err := d.s.Record(ev); err != nil {
		return err
	}
	d.release()
	return nil
}

// Fail records why the download stopped; the same download started again resumes from what is
// here. A download whose partial file received no verified leaf (and was empty when it began)
// deletes it; one that got nothing at all (no block was here, none arrived) also leaves no
// partial entry: FetchAbandoned takes it out of the index.
func (d *Download) Fail(cause error) error {
	if d.tree != nil {
		return d.treeFail(cause)
	}
	defer d.release()
	d.mu.Lock()
	done := d.done
	d.mu.Unlock()
	hadPart := d.part != nil
	err := d.closePart()
	if done || cause == nil {
		return err
	}
	if hadPart && !d.resumed && d.have.Load() == 0 {
		// No verified leaf reached the partial file (inner nodes are in the repo): it holds
		// nothing worth keeping, whatever the root claimed.
		if rerr := os.Remove(d.partPath); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			err = errors.Join(err, rerr)
		}
	}
	if !d.resumed && !d.got.Load() {
		return errors.Join(err, d.s.Record(Event{Type: FetchAbandoned, Root: d.root.String(), Error: cause.Error()}))
	}
	return errors.Join(err, d.s.blocks.sync(), d.s.Record(Event{Type: FetchFailed, Root: d.root.String(), Error: cause.Error(), Size: d.Size(), Have: d.Have()}))
}

func (d *Download) closePart() error {
	if d.part == nil {
		return nil
	}
	err := errors.Join(d.part.Sync(), d.part.Close(), d.direct.close())
	d.part, d.direct = nil, nil
	return err
}
