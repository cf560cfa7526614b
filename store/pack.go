package store

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/ipfs/go-cid"

	"peer/internal/fsys"
	"peer/store/unixfs"
)

// Packs. Importing a folder makes a block or more per file, and a file of its own for each small
// block costs a file creation (and an fsync, and a directory's) per block: that, not hashing, is
// what bounds adding a folder of small files. So the blocks of at most packMaxBlock bytes that one
// folder import writes go instead into one pack file of its own, blocks/packs/p-ID.pack, appended
// as they come and made durable by one fdatasync when the import syncs; then an index of it,
// p-ID.idx, is written beside it so that the repo need not read the pack to know what it holds.
// A pack is never appended to once its import has ended.
//
// Pack: packMagic, then records of uvarint(len(cid)) cid uvarint(len(data)) data, the CID in its
// CIDv1 form. Index: idxMagic, uvarint(pack size), uvarint(count), count entries of
// uvarint(len(cid)) cid uvarint(offset of data) uvarint(len(data)), then the CRC-32C of all of it
// (4 bytes, big-endian). An index that is missing, torn or does not match its pack's size is
// rebuilt by reading the pack: its records are read in order up to the first that is cut short or
// does not match its CID (what a crash during the import left), the pack is synced, and the index
// written again. The index is a cache; the pack is the truth.
//
// The packs' contents are known in memory (a map from block key to its place), loaded on first
// use. Removing a packed block (gc, a failed import) drops it from the map; compactPacks then
// deletes packs that hold no block any more and rewrites those that hold some (a new pack, synced,
// before the old one goes). A block may be both in a file and in a pack, or in two packs (a crash
// between writing a compacted pack and deleting the old one): either copy serves.

const (
	packsDir     = "packs"
	packMaxBlock = 256 << 10 // a larger block gets a file of its own
	packMagic    = "peerpack1\n"
	idxMagic     = "peeridx1\n"
	maxCIDLen    = 128
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// packKey is the key of a block in the packs' map: its CIDv1's bytes.
func packKey(c cid.Cid) string {
	if c.Version() == 0 {
		c = cid.NewCidV1(cid.DagProtobuf, c.Hash())
	}
	return c.KeyString()
}

// packFile is one pack, as the map knows it.
type packFile struct {
	path string
	live int // entries of the map that point into it
	dead int // blocks it holds that the map no longer names (removed, or another copy's)
	// writing is set while an import appends to it: it is neither compacted nor deleted then.
	writing bool
	// durable is set once it is known to be on stable storage (synced by its writer, or its index
	// was written after a sync); until then a writer that finds a block in it syncs it too.
	durable bool
}

// packLoc is where a packed block's bytes are.
type packLoc struct {
	pack *packFile
	off  int64
	size int
}

// packs is the Blocks' state of its packs, guarded by Blocks.pmu.
type packs struct {
	loaded bool
	m      map[string]packLoc
	files  map[string]*packFile // by path
}

func (b *Blocks) packsPath() string { return filepath.Join(b.dir, packsDir) }

// loadPacksLocked reads every pack's index (rebuilding those that need it) into the map, once.
// Called with b.pmu held.
func (b *Blocks) loadPacksLocked() error {
	if b.packs.loaded {
		return nil
	}
	m, files := map[string]packLoc{}, map[string]*packFile{}
	des, err := os.ReadDir(b.packsPath())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("reading packs: %w", err)
	}
	for _, de := range des {
		name := de.Name()
		if !strings.HasSuffix(name, ".pack") || strings.HasPrefix(name, ".") {
			continue
		}
		path := filepath.Join(b.packsPath(), name)
		ents, err := loadPack(path)
		if err != nil {
			return err
		}
		pf := &packFile{path: path, durable: true}
		files[path] = pf
		for _, e := range ents {
			if _, dup := m[e.key]; dup {
				pf.dead++
				continue
			}
			m[e.key] = packLoc{pack: pf, off: e.off, size: e.size}
			pf.live++
		}
	}
	b.packs = packs{loaded: true, m: m, files: files}
	return nil
}

// packed returns where block c is packed, if it is.
func (b *Blocks) packed(c cid.Cid) (packLoc, bool) {
	b.pmu.Lock()
	defer b.pmu.Unlock()
	if err := b.loadPacksLocked(); err != nil {
		logger().Warn("cannot read the block packs", "err", err)
		return packLoc{}, false
	}
	l, ok := b.packs.m[packKey(c)]
	return l, ok
}

// readPacked reads a packed block without verifying it, and the stat of its pack (which never
// changes once written). A pack compacted away meanwhile is looked up again.
func (b *Blocks) readPacked(c cid.Cid, l packLoc, alloc func(n int) []byte) ([]byte, fileStat, error) {
	for try := 0; ; try++ {
		f, err := os.Open(l.pack.path)
		if errors.Is(err, fs.ErrNotExist) && try == 0 {
			var ok bool
			if l, ok = b.packed(c); ok {
				continue
			}
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
		data, err := readAt(f, refLoc{offset: uint64(l.off), size: uint64(l.size)}, alloc)
		if err != nil {
			return nil, fileStat{}, fmt.Errorf("reading block %s from %s: %w", c, l.pack.path, err)
		}
		return data, statOf(st), nil
	}
}

// dropPacked forgets a packed block (its bytes stay in the pack until compactPacks).
func (b *Blocks) dropPacked(c cid.Cid) {
	b.pmu.Lock()
	defer b.pmu.Unlock()
	if b.loadPacksLocked() != nil {
		return
	}
	k := packKey(c)
	if l, ok := b.packs.m[k]; ok {
		delete(b.packs.m, k)
		l.pack.live--
		l.pack.dead++
	}
}

// packedKeys lists the packed blocks.
func (b *Blocks) packedKeys() ([]cid.Cid, error) {
	b.pmu.Lock()
	defer b.pmu.Unlock()
	if err := b.loadPacksLocked(); err != nil {
		return nil, err
	}
	out := make([]cid.Cid, 0, len(b.packs.m))
	for k := range b.packs.m {
		if c, err := cid.Cast([]byte(k)); err == nil {
			out = append(out, c)
		}
	}
	return out, nil
}

// packWriter appends one import's small blocks to a pack of its own, created on the first block.
// Its methods are safe for concurrent use. Every packWriter must be closed.
type packWriter struct {
	b       *Blocks
	mu      sync.Mutex
	f       *os.File
	pf      *packFile
	end     int64
	wb      int64 // write-back started up to here
	ents    []packEntry
	buf     []byte
	madeDir bool
}

type packEntry struct {
	key  string
	off  int64
	size int
}

func (b *Blocks) newPackWriter() *packWriter { return &packWriter{b: b} }

// put stores a block like Blocks.create: packed when small, else in a file of its own. It reports
// whether it wrote it (false: it was here already).
func (w *packWriter) put(c cid.Cid, data []byte) (bool, error) {
	if _, ok := identityData(c); ok {
		return false, nil
	}
	if len(data) > packMaxBlock {
		return w.b.create(c, data)
	}
	k := packKey(c)
	b := w.b
	b.pmu.Lock()
	if err := b.loadPacksLocked(); err != nil {
		b.pmu.Unlock()
		return false, fmt.Errorf("storing block %s: %w", c, err)
	}
	l, here := b.packs.m[k]
	var durable bool
	if here {
		durable = l.pack.durable
	}
	b.pmu.Unlock()
	if here {
		if !durable {
			// Another import's pack not synced yet, or one a crash left: synced with ours.
			b.mu.Lock()
			b.pending.addFile(l.pack.path)
			b.mu.Unlock()
		}
		return false, nil
	}
	if _, path := b.path(c); fileExists(path) {
		// Already in a file of its own: synced like create syncs one it finds.
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
	w.mu.Lock()
	defer w.mu.Unlock()
	b.pmu.Lock()
	_, here = b.packs.m[k] // the same block from another file of this folder, meanwhile
	b.pmu.Unlock()
	if here {
		return false, nil
	}
	off, err := w.write(k, data)
	if err != nil {
		return false, fmt.Errorf("storing block %s: %w", c, err)
	}
	b.pmu.Lock()
	b.packs.m[k] = packLoc{pack: w.pf, off: off, size: len(data)}
	w.pf.live++
	b.pmu.Unlock()
	return true, nil
}

// write appends a block's record to the pack and returns the offset of its bytes. Called with
// w.mu held.
func (w *packWriter) write(k string, data []byte) (int64, error) {
	if w.f == nil {
		if err := w.create(); err != nil {
			return 0, err
		}
	}
	w.buf = binary.AppendUvarint(w.buf[:0], uint64(len(k)))
	w.buf = append(w.buf, k...)
	w.buf = binary.AppendUvarint(w.buf, uint64(len(data)))
	off := w.end + int64(len(w.buf))
	w.buf = append(w.buf, data...)
	if _, err := w.f.WriteAt(w.buf, w.end); err != nil {
		return 0, err
	}
	w.end += int64(len(w.buf))
	if w.end-w.wb >= 4<<20 {
		// Start write-back now, so the disk works while the importer reads the next files and
		// the final sync has little left to do.
		fsys.WriteBehind(w.f, w.wb, w.end-w.wb)
		w.wb = w.end
	}
	w.ents = append(w.ents, packEntry{key: k, off: off, size: len(data)})
	return off, nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// create makes the pack file. Called with w.mu held.
func (w *packWriter) create() error {
	dir := w.b.packsPath()
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		w.madeDir = true
	}
	f, err := os.CreateTemp(dir, "p-*.pack")
	if err != nil {
		return err
	}
	if _, err := f.WriteAt([]byte(packMagic), 0); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	w.f, w.end = f, int64(len(packMagic))
	w.pf = &packFile{path: f.Name(), writing: true}
	w.b.pmu.Lock()
	w.b.packs.files[w.pf.path] = w.pf
	w.b.pmu.Unlock()
	return nil
}

// seal makes the pack durable (its data, then its directory entry) and writes its index. The
// blocks are durable when it returns; Blocks.sync is still needed for the blocks that went to
// files of their own, and for other packs this import found blocks in.
func (w *packWriter) seal() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return nil
	}
	if err := fsys.DatasyncBatched(w.f); err != nil {
		return fmt.Errorf("syncing blocks: %w", err)
	}
	if err := syncDir(w.b.packsPath()); err != nil {
		return fmt.Errorf("syncing blocks: %w", err)
	}
	if w.madeDir {
		if err := syncDir(w.b.dir); err != nil {
			return fmt.Errorf("syncing blocks: %w", err)
		}
		w.madeDir = false
	}
	w.b.pmu.Lock()
	w.pf.durable = true
	w.b.pmu.Unlock()
	if err := writeIdx(w.pf.path, w.end, w.ents); err != nil {
		// Only a cache: the next open reads the pack instead.
		logger().Warn("cannot write a pack's index", "pack", w.pf.path, "err", err)
	}
	return nil
}

// close ends the writer: its pack, if any, may be compacted from now on.
func (w *packWriter) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return
	}
	w.f.Close()
	w.f = nil
	w.b.pmu.Lock()
	w.pf.writing = false
	w.b.pmu.Unlock()
}

func idxPath(pack string) string { return strings.TrimSuffix(pack, ".pack") + ".idx" }

// writeIdx writes a pack's index beside it (temporary name, then renamed; not synced: a torn or
// lost index is rebuilt from the pack).
func writeIdx(pack string, size int64, ents []packEntry) error {
	b := []byte(idxMagic)
	b = binary.AppendUvarint(b, uint64(size))
	b = binary.AppendUvarint(b, uint64(len(ents)))
	for _, e := range ents {
		b = binary.AppendUvarint(b, uint64(len(e.key)))
		b = append(b, e.key...)
		b = binary.AppendUvarint(b, uint64(e.off))
		b = binary.AppendUvarint(b, uint64(e.size))
	}
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	path := idxPath(pack)
	tmp := filepath.Join(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// readIdx reads a pack's index; an error means it cannot be trusted (rebuild it).
func readIdx(pack string, size int64) ([]packEntry, error) {
	b, err := os.ReadFile(idxPath(pack))
	if err != nil {
		return nil, err
	}
	if len(b) < len(idxMagic)+4 || string(b[:len(idxMagic)]) != idxMagic {
		return nil, errors.New("not a pack index")
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return nil, errors.New("checksum mismatch")
	}
	r := body[len(idxMagic):]
	next := func() (uint64, bool) {
		v, n := binary.Uvarint(r)
		if n <= 0 {
			return 0, false
		}
		r = r[n:]
		return v, true
	}
	psize, ok1 := next()
	count, ok2 := next()
	if !ok1 || !ok2 || int64(psize) != size || count > uint64(len(r)) {
		return nil, errors.New("does not match its pack")
	}
	ents := make([]packEntry, 0, count)
	for range count {
		kl, ok := next()
		if !ok || kl > maxCIDLen || kl > uint64(len(r)) {
			return nil, errors.New("bad entry")
		}
		key := string(r[:kl])
		r = r[kl:]
		off, ok1 := next()
		n, ok2 := next()
		if !ok1 || !ok2 || n > unixfs.MaxBlockSize || off+n > psize {
			return nil, errors.New("bad entry")
		}
		ents = append(ents, packEntry{key: key, off: int64(off), size: int(n)})
	}
	if len(r) != 0 {
		return nil, errors.New("trailing bytes")
	}
	return ents, nil
}

// loadPack returns a pack's entries, from its index or, when that cannot be trusted, by reading
// the pack, which is then synced and indexed again.
func loadPack(path string) ([]packEntry, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("reading pack: %w", err)
	}
	if ents, err := readIdx(path, st.Size()); err == nil {
		return ents, nil
	}
	ents, err := scanPack(path)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err == nil {
		err = errors.Join(fsys.DatasyncBatched(f), f.Close())
	}
	if err == nil {
		err = syncDir(filepath.Dir(path))
	}
	if err == nil {
		err = writeIdx(path, st.Size(), ents)
	}
	if err != nil {
		logger().Warn("cannot index a block pack", "pack", path, "err", err)
	}
	return ents, nil
}

// scanPack reads a pack's records in order, verifying each, up to the first that is cut short or
// does not match its CID.
func scanPack(path string) ([]packEntry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading pack: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 256<<10)
	magic := make([]byte, len(packMagic))
	if _, err := io.ReadFull(r, magic); err != nil || string(magic) != packMagic {
		return nil, nil // created, and nothing durable written: holds nothing
	}
	var ents []packEntry
	off := int64(len(packMagic))
	var data []byte
	for {
		kl, err := binary.ReadUvarint(r)
		if err != nil || kl == 0 || kl > maxCIDLen {
			return ents, nil
		}
		key := make([]byte, kl)
		if _, err := io.ReadFull(r, key); err != nil {
			return ents, nil
		}
		n, err := binary.ReadUvarint(r)
		if err != nil || n > unixfs.MaxBlockSize {
			return ents, nil
		}
		if cap(data) < int(n) {
			data = make([]byte, n)
		}
		data = data[:n]
		if _, err := io.ReadFull(r, data); err != nil {
			return ents, nil
		}
		c, err := cid.Cast(key)
		if err != nil || unixfs.Verify(c, data) != nil {
			return ents, nil
		}
		head := int64(uvarintLen(kl)) + int64(kl) + int64(uvarintLen(n))
		ents = append(ents, packEntry{key: string(key), off: off + head, size: int(n)})
		off += head + int64(n)
	}
}

func uvarintLen(v uint64) int {
	var b [binary.MaxVarintLen64]byte
	return binary.PutUvarint(b[:], v)
}

// compactPacks deletes the packs that hold no named block and rewrites those that hold some as
// well as removed ones: the blocks still named go to a new pack, synced, before the old one is
// deleted. Packs being written are left alone. Called with b.gc held exclusively.
func (b *Blocks) compactPacks() error {
	b.pmu.Lock()
	if !b.packs.loaded {
		b.pmu.Unlock()
		return nil
	}
	var todo []*packFile
	for _, pf := range b.packs.files {
		if pf.dead > 0 && !pf.writing {
			todo = append(todo, pf)
		}
	}
	b.pmu.Unlock()
	var errs []error
	for _, pf := range todo {
		errs = append(errs, b.compactPack(pf))
	}
	return errors.Join(errs...)
}

func (b *Blocks) compactPack(pf *packFile) error {
	b.pmu.Lock()
	var keep []string
	for k, l := range b.packs.m {
		if l.pack == pf {
			keep = append(keep, k)
		}
	}
	b.pmu.Unlock()
	if len(keep) > 0 {
		w := b.newPackWriter()
		err := func() error {
			defer w.close()
			src, err := os.Open(pf.path)
			if err != nil {
				return err
			}
			defer src.Close()
			for _, k := range keep {
				c, err := cid.Cast([]byte(k))
				if err != nil {
					continue
				}
				b.pmu.Lock()
				l := b.packs.m[k]
				b.pmu.Unlock()
				data, err := readAt(src, refLoc{offset: uint64(l.off), size: uint64(l.size)}, makeBuf)
				if err != nil || unixfs.Verify(c, data) != nil {
					continue // rotted: dropped with the old pack
				}
				b.pmu.Lock()
				still := b.packs.m[k].pack == pf
				b.pmu.Unlock()
				if !still {
					continue
				}
				if err := w.move(k, data); err != nil {
					return err
				}
			}
			return w.seal()
		}()
		if err != nil {
			return fmt.Errorf("compacting %s: %w", pf.path, err)
		}
	}
	b.pmu.Lock()
	for k, l := range b.packs.m {
		if l.pack == pf { // rotted, above: no copy left
			delete(b.packs.m, k)
		}
	}
	delete(b.packs.files, pf.path)
	b.pmu.Unlock()
	err := os.Remove(pf.path)
	if errors.Is(err, fs.ErrNotExist) {
		err = nil
	}
	if rerr := os.Remove(idxPath(pf.path)); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
		err = errors.Join(err, rerr)
	}
	return errors.Join(err, syncDir(b.packsPath()))
}

// move appends a block that is in another pack, and points the map at the copy.
func (w *packWriter) move(k string, data []byte) error {
	w.mu.Lock()
	off, err := w.write(k, data)
	w.mu.Unlock()
	if err != nil {
		return err
	}
	w.b.pmu.Lock()
	defer w.b.pmu.Unlock()
	if old, ok := w.b.packs.m[k]; ok {
		old.pack.live--
	}
	w.b.packs.m[k] = packLoc{pack: w.pf, off: off, size: len(data)}
	w.pf.live++
	return nil
}
