package store

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/ipfs/go-cid"
	"golang.org/x/sys/unix"

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

// blockFiles is the owned blocks: one file per block under blocks/XX/KEY, where XX is two
// characters near the end of the key (the start of a CID string is the same for every block).
// Files are written to a temporary name and renamed, so a block file is either whole or absent.
// Writes are not synced one by one: Sync makes every earlier write durable in one call, and the
// store calls it before an event says the blocks exist.
type blockFiles struct {
	dir string
	// fault, when set (tests), is asked before each block is written and may fail the write as a
	// full disk would.
	fault func(c cid.Cid) error

	mu   sync.Mutex
	dirs map[string]bool // shard directories known to exist
}

func (b *blockFiles) path(c cid.Cid) (shard, path string) {
	k := blockKey(c)
	shard = filepath.Join(b.dir, k[len(k)-3:len(k)-1])
	return shard, filepath.Join(shard, k)
}

func (b *blockFiles) put(c cid.Cid, data []byte) error {
	_, err := b.create(c, data)
	return err
}

// create stores a block like put and reports whether it wrote it (false: it was already here).
func (b *blockFiles) create(c cid.Cid, data []byte) (bool, error) {
	shard, path := b.path(c)
	if _, err := os.Stat(path); err == nil {
		return false, nil // content-addressed: the same key holds the same bytes
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
		_ = unix.SyncFileRange(int(tmp.Fd()), 0, 0, unix.SYNC_FILE_RANGE_WRITE)
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
	return true, nil
}

// read reads an owned block without verifying it.
func (b *blockFiles) read(c cid.Cid, alloc func(n int) []byte) ([]byte, error) {
	_, path := b.path(c)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, c)
	}
	if err != nil {
		return nil, fmt.Errorf("reading block %s: %w", c, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("reading block %s: %w", c, err)
	}
	if st.Size() > unixfs.MaxBlockSize {
		return nil, fmt.Errorf("%w: %s at %s is %d bytes, larger than any block", ErrCorruptBlock, c, path, st.Size())
	}
	data, err := readAt(f, refLoc{size: uint64(st.Size())}, alloc)
	if err != nil {
		return nil, fmt.Errorf("reading block %s: %w", c, err)
	}
	return data, nil
}

// size is an owned block's size, from its file's metadata.
func (b *blockFiles) size(c cid.Cid) (int, error) {
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
func (b *blockFiles) get(c cid.Cid) ([]byte, error) {
	data, err := b.read(c, makeBuf)
	if err != nil {
		return nil, err
	}
	if err := unixfs.Verify(c, data); err != nil {
		_, path := b.path(c)
		return nil, fmt.Errorf("%w: %s at %s does not match its CID (remove it and fetch the file again)", ErrCorruptBlock, c, path)
	}
	return data, nil
}

func (b *blockFiles) has(c cid.Cid) bool {
	_, path := b.path(c)
	_, err := os.Stat(path)
	return err == nil
}

func (b *blockFiles) remove(c cid.Cid) error {
	_, path := b.path(c)
	err := os.Remove(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// each calls fn with every stored block's CID; it also removes temporary files left by a crash.
func (b *blockFiles) each(fn func(c cid.Cid) error) error {
	return filepath.WalkDir(b.dir, func(path string, d fs.DirEntry, err error) error {
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

// sync makes every block written so far durable: one syncfs for the whole file system instead of
// one fsync per block.
func (b *blockFiles) sync() error {
	d, err := os.Open(b.dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := unix.Syncfs(int(d.Fd())); err != nil {
		return fmt.Errorf("syncing blocks: %w", err)
	}
	return nil
}

// refLoc is where a referenced leaf lives: a byte range of a file the store does not own.
type refLoc struct {
	root   string // the file it belongs to
	path   string
	offset uint64
	size   uint64
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
