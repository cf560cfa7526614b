package store

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"

	"peer/internal/fsys"
	"peer/store/unixfs"
)

var (
	// ErrNotFound means the node holds no such block.
	ErrNotFound = errors.New("block not found")
	// ErrCorruptBlock means a stored block's bytes no longer match its CID.
	ErrCorruptBlock = errors.New("stored block is corrupt")
)

// blockKey is the name a block is stored under: the CIDv1 string, so a CIDv0 and its CIDv1 twin
// share one file.
func blockKey(c cid.Cid) string {
	if c.Version() == 0 {
		c = cid.NewCidV1(cid.DagProtobuf, c.Hash())
	}
	return c.String()
}

// Blocks is the block repo, the blocks the node owns: the small blocks of folder imports packed
// together (pack.go), every other in a file of its own under blocks/XX/KEY, where XX is two
// characters near the end of the key (the start of a CID string is the same for every block).
// Files are written to a temporary name and renamed, so a block file is either whole or absent. Writes are not synced one by one: put starts each file's write-back and
// remembers it, and sync (which the store calls before an event says the blocks exist) waits for
// all of them at once. It knows nothing of files or events; its methods are safe for concurrent
// use.
type Blocks struct {
	dir string
	// fault, when set (tests), is asked before each block is written and may fail the write as a
	// full disk would.
	fault func(c cid.Cid) error

	// gc is held shared by imports and downloads while they write blocks that no event names
	// yet, and exclusively by GC, which would otherwise take those blocks for garbage.
	gc sync.RWMutex

	// pmu guards packs, the small blocks of folder imports, packed together (pack.go).
	pmu   sync.Mutex
	packs packs

	mu      sync.Mutex
	dirs    map[string]bool // shard directories known to exist
	pending pendingSync     // what sync has left to make durable

	syncMu sync.Mutex // one sync at a time, so a sync returns only after those before it
}

// pendingSync is the block files written (or found) since the last sync, and the directories
// whose entries changed.
type pendingSync struct {
	files []string
	dirs  map[string]bool
}

func (p *pendingSync) addFile(path string) { p.files = append(p.files, path) }

func (p *pendingSync) addDir(dir string) {
	if p.dirs == nil {
		p.dirs = map[string]bool{}
	}
	p.dirs[dir] = true
}

func newBlocks(dir string) *Blocks { return &Blocks{dir: dir, dirs: map[string]bool{}} }

// Put stores a block the caller has verified. It is durable after Sync.
func (b *Blocks) Put(c cid.Cid, data []byte) error { return b.put(c, data) }

// Sync makes every block put so far durable.
func (b *Blocks) Sync() error { return b.sync() }

// Has reports whether the block is stored here (read from its file's metadata, not its bytes).
func (b *Blocks) Has(c cid.Cid) bool { return b.has(c) }

// Get reads a stored block and verifies it against its CID.
func (b *Blocks) Get(c cid.Cid) ([]byte, error) { return b.get(c) }

func (b *Blocks) path(c cid.Cid) (shard, path string) {
	k := blockKey(c)
	shard = filepath.Join(b.dir, k[len(k)-3:len(k)-1])
	return shard, filepath.Join(shard, k)
}

func (b *Blocks) put(c cid.Cid, data []byte) error {
	_, err := b.create(c, data)
	return err
}

// identityData returns the bytes an identity CID carries in its multihash, and whether c is one.
// Such a block needs no storage: every method of Blocks answers it from the CID alone.
func identityData(c cid.Cid) ([]byte, bool) {
	if c.Prefix().MhType != mh.IDENTITY {
		return nil, false
	}
	d, err := mh.Decode(c.Hash())
	if err != nil {
		return nil, false
	}
	return d.Digest, true
}

// create stores a block like put and reports whether it wrote it (false: it was already here).
func (b *Blocks) create(c cid.Cid, data []byte) (bool, error) {
	if _, ok := identityData(c); ok {
		return false, nil
	}
	shard, path := b.path(c)
	if _, err := os.Stat(path); err == nil {
		// Content-addressed: the same key holds the same bytes. A file left by a process that
		// died before its sync may not be durable yet, so it is synced like a new one (a file
		// already on disk costs little).
		b.mu.Lock()
		b.pending.addFile(path)
		b.mu.Unlock()
		return false, nil
	}
	if b.fault != nil {
		if err := b.fault(c); err != nil {
			return false, fmt.Errorf("storing block %s: %w", c, err)
		}
	}
	b.mu.Lock()
	known := b.dirs[shard]
	b.mu.Unlock()
	if !known {
		if err := os.MkdirAll(shard, 0o700); err != nil {
			return false, fmt.Errorf("storing block: %w", err)
		}
		b.mu.Lock()
		b.dirs[shard] = true
		b.pending.addDir(b.dir) // the shard's own entry
		b.mu.Unlock()
	}
	tmp, err := os.CreateTemp(shard, ".tmp-*")
	if err != nil {
		return false, fmt.Errorf("storing block %s: %w", c, err)
	}
	_, err = tmp.Write(data)
	if err == nil {
		// Start writeback now, without waiting for it, so the disk works while the importer
		// hashes the next chunks and the final sync has little left to do.
		fsys.WriteBehind(tmp, 0, 0)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return false, fmt.Errorf("storing block %s: %w", c, err)
	}
	b.mu.Lock()
	b.pending.addFile(path)
	b.pending.addDir(shard)
	b.mu.Unlock()
	return true, nil
}

// where names where block c is stored, for messages.
func (b *Blocks) where(c cid.Cid) string {
	if l, ok := b.packed(c); ok {
		return fmt.Sprintf("%s (offset %d)", l.pack.path, l.off)
	}
	_, path := b.path(c)
	return path
}

// storedSize is the bytes block c takes where it is stored, 0 if it is not.
func (b *Blocks) storedSize(c cid.Cid) int64 {
	if l, ok := b.packed(c); ok {
		return int64(l.size)
	}
	_, path := b.path(c)
	if st, err := os.Stat(path); err == nil {
		return st.Size()
	}
	return 0
}

// quarantine moves a block whose bytes (data) do not match its CID out of the way, so that it is
// no longer found and a fetch can bring it again: a block file is renamed to KEY.corrupt beside
// it; a packed block's bytes are written there and the block dropped from its pack (whose other
// blocks are moved to a new pack when no import or gc is running, else at the next gc). It
// returns where the bytes now are.
func (b *Blocks) quarantine(c cid.Cid, data []byte) (string, error) {
	shard, path := b.path(c)
	if _, ok := b.packed(c); !ok {
		return path + ".corrupt", os.Rename(path, path+".corrupt")
	}
	if err := os.MkdirAll(shard, 0o700); err != nil {
		return "", err
	}
	if err := os.WriteFile(path+".corrupt", data, 0o600); err != nil {
		return "", err
	}
	b.dropPacked(c)
	if b.gc.TryLock() {
		defer b.gc.Unlock()
		if err := b.compactPacks(); err != nil {
			logger().Warn("compacting block packs", "err", err)
		}
	}
	return path + ".corrupt", nil
}

// read reads an owned block without verifying it.
func (b *Blocks) read(c cid.Cid, alloc func(n int) []byte) ([]byte, error) {
	if d, ok := identityData(c); ok {
		return append(alloc(len(d))[:0], d...), nil
	}
	data, _, err := b.readStat(c, alloc)
	return data, err
}

// readStat reads an owned block without verifying it, and the stat of its file when it was read.
func (b *Blocks) readStat(c cid.Cid, alloc func(n int) []byte) ([]byte, fileStat, error) {
	if l, ok := b.packed(c); ok {
		return b.readPacked(c, l, alloc)
	}
	_, path := b.path(c)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fileStat{}, fmt.Errorf("%w: %s", ErrNotFound, c)
	}
	if err != nil {
		return nil, fileStat{}, fmt.Errorf("reading block %s: %w", c, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fileStat{}, fmt.Errorf("reading block %s: %w", c, err)
	}
	if st.Size() > unixfs.MaxBlockSize {
		return nil, fileStat{}, fmt.Errorf("%w: %s at %s is %d bytes, larger than any block", ErrCorruptBlock, c, path, st.Size())
	}
	data, err := readAt(f, refLoc{size: uint64(st.Size())}, alloc)
	if err != nil {
		return nil, fileStat{}, fmt.Errorf("reading block %s: %w", c, err)
	}
	return data, statOf(st), nil
}

// size is an owned block's size, from its file's metadata (an identity block's, from its CID).
func (b *Blocks) size(c cid.Cid) (int, error) {
	if d, ok := identityData(c); ok {
		return len(d), nil
	}
	if l, ok := b.packed(c); ok {
		return l.size, nil
	}
	_, path := b.path(c)
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("%w: %s", ErrNotFound, c)
	}
	if err != nil {
		return 0, fmt.Errorf("reading block %s: %w", c, err)
	}
	if st.Size() > unixfs.MaxBlockSize {
		return 0, fmt.Errorf("%w: %s at %s is %d bytes, larger than any block", ErrCorruptBlock, c, path, st.Size())
	}
	return int(st.Size()), nil
}

// makeBuf is the allocation of reads whose buffers are not reused.
func makeBuf(n int) []byte { return make([]byte, n) }

// get reads and verifies an owned block.
func (b *Blocks) get(c cid.Cid) ([]byte, error) {
	data, err := b.read(c, makeBuf)
	if err != nil {
		return nil, err
	}
	if err := unixfs.Verify(c, data); err != nil {
		return nil, fmt.Errorf("%w: %s at %s does not match its CID (remove it and fetch the file again)", ErrCorruptBlock, c, b.where(c))
	}
	return data, nil
}

func (b *Blocks) has(c cid.Cid) bool {
	_, err := b.size(c)
	return err == nil
}

func (b *Blocks) remove(c cid.Cid) error {
	if _, ok := identityData(c); ok {
		return nil
	}
	b.dropPacked(c) // its bytes go when compactPacks rewrites the pack
	_, path := b.path(c)
	err := os.Remove(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// each calls fn with every stored block's CID (a block both packed and in a file, or in two
// packs, once or twice); it also removes temporary files left by a crash.
func (b *Blocks) each(fn func(c cid.Cid) error) error {
	packed, err := b.packedKeys()
	if err != nil {
		return err
	}
	for _, c := range packed {
		if err := fn(c); err != nil {
			return err
		}
	}
	packs := b.packsPath()
	return filepath.WalkDir(b.dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && path == packs {
			return filepath.SkipDir
		}
		if err != nil || d.IsDir() {
			return err
		}
		name := d.Name()
		if strings.HasPrefix(name, ".tmp-") {
			return os.Remove(path)
		}
		c, err := cid.Decode(name)
		if err != nil {
			return nil // not ours; leave it
		}
		return fn(c)
	})
}

// syncWorkers is how many block files sync flushes at once: enough that the device sees a queue
// (the write-back put started is mostly done by then), few enough to bound open descriptors.
const syncWorkers = 16

// sync makes every block written so far durable: an fsync of each file put wrote or found since
// the last sync, at most syncWorkers at a time, then of the directories that gained entries. It
// flushes only the store's own writes, where syncfs would flush the whole file system (other
// programs' data too) and is Linux only. On failure the files stay pending for the next sync.
//
// Measured on Linux (ext4, 2 shared cores), in alternating runs: the sync of a 256 MiB add's
// blocks takes a median 98 ms this way against 64 ms for one syncfs (BenchmarkBlockSync, 14
// rounds each), about 2.5% of the add; the add itself showed no difference (BenchmarkAdd, 34
// alternating runs: 192.7 → 187.4 MiB/s, p = 0.63, ±25% run to run). syncfs also waits for
// whatever else is dirty on the file system (its slowest rounds took 185–194 ms), so the store
// does not use it. 64 workers instead of 16 were no faster.
func (b *Blocks) sync() error {
	b.syncMu.Lock()
	defer b.syncMu.Unlock()
	b.mu.Lock()
	p := b.pending
	b.pending = pendingSync{}
	b.mu.Unlock()
	slices.Sort(p.files)
	p.files = slices.Compact(p.files)
	err := syncFiles(p.files)
	if len(p.files) > 0 {
		// Synced after the files, the blocks directory is also the barrier that empties the
		// drive's cache on macOS (see fsys.DatasyncBatched).
		p.addDir(b.dir)
	}
	if err == nil {
		dirs := make([]string, 0, len(p.dirs))
		for d := range p.dirs {
			dirs = append(dirs, d)
		}
		err = forEach(dirs, func(dir string) error {
			if err := syncDir(dir); !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			return nil
		})
	}
	if err != nil {
		b.mu.Lock()
		b.pending.files = append(b.pending.files, p.files...)
		for d := range p.dirs {
			b.pending.addDir(d)
		}
		b.mu.Unlock()
		return fmt.Errorf("syncing blocks: %w", err)
	}
	return nil
}

// syncFiles flushes each file to stable storage. A file removed since (gc) needs nothing.
func syncFiles(paths []string) error {
	return forEach(paths, func(path string) error {
		// Opened for writing: Windows flushes only through a handle that may write.
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		err = fsys.DatasyncBatched(f)
		return errors.Join(err, f.Close())
	})
}

// forEach calls fn on every item, syncWorkers at a time, and returns the first error.
func forEach(items []string, fn func(string) error) error {
	if len(items) == 0 {
		return nil
	}
	var (
		wg    sync.WaitGroup
		next  = make(chan string)
		errMu sync.Mutex
		first error
	)
	for range min(syncWorkers, len(items)) {
		wg.Go(func() {
			for it := range next {
				if err := fn(it); err != nil {
					errMu.Lock()
					if first == nil {
						first = err
					}
					errMu.Unlock()
				}
			}
		})
	}
	for _, it := range items {
		next <- it
	}
	close(next)
	wg.Wait()
	return first
}

// refLoc is where a referenced leaf lives: a byte range of a file the store does not own.
type refLoc struct {
	root   string // the file or folder it belongs to
	path   string // the file it is read from
	offset uint64
	size   uint64
	leaf   int    // its place among the file's leaves
	fsize  uint64 // the file's size, for a file in a folder
}

// readRef reads and verifies a referenced leaf. A mismatch means the file changed under us.
func readRef(c cid.Cid, loc refLoc) ([]byte, error) {
	f, err := os.Open(loc.path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := readAt(f, loc, makeBuf)
	if err != nil {
		return nil, err
	}
	if err := unixfs.Verify(c, data); err != nil {
		return nil, err
	}
	return data, nil
}

func readAt(f *os.File, loc refLoc, alloc func(n int) []byte) ([]byte, error) {
	data := alloc(int(loc.size))
	if _, err := f.ReadAt(data, int64(loc.offset)); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return data, nil
}
