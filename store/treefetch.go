package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"github.com/ipfs/go-cid"

	"peer/internal/fsys"
	"peer/store/unixfs"
)

// A folder download writes each file once, where it will stay: every verified leaf goes straight
// to its offset in its file under the partial tree PartPath(out, root), a directory the download
// creates (or, resuming, the one the log names), while the folder nodes, symbolic links and the
// files' inner nodes go to the repo. Complete checks the whole tree again, creates the links, makes
// everything durable with one pass, renames the partial tree to out and records one
// FetchCompleted with the folder's path: from then on the folder is held as a folder shared in
// place is (sharedir.go), its files served from where they lie, and nothing per file is recorded.
//
// Small leaves are written by a few workers, so that creating many small files overlaps the
// transfer; large ones by the delivering goroutine itself. A resumed download learns which
// leaves are in place by reading and hashing them where they should be (only a leaf that
// verifies counts), so the record of its progress is the tree itself: nothing per file is logged,
// and after a kill -9 what is counted is what is really there. The final sync pass makes it
// durable before the event that says the folder is held.

// treeOut is the partial tree of a folder download.
type treeOut struct {
	d         *Download
	out, part string
	root      *os.Root
	goos      string // whose name rules apply (runtime.GOOS; tests set others)
	resumed   bool   // the partial tree existed: files in it may hold verified leaves
	syncEach  bool   // no one-call sync here: each file is synced as it is completed

	// Guarded by Download.mu.
	entries map[string][]string     // block key → paths of entries not yet known as file, folder or link
	dirs    map[string][]*dirPlace  // folder or shard key → where it sits
	places  map[string][]*filePlace // file block key → where its bytes go
	links   map[string]string       // path → target of each symbolic link, created last
	known   uint64                  // files named so far

	dirMu   sync.Mutex
	dirRoot map[string]*os.Root // open folders of the tree, by path; bounded by maxOpenDirs

	handles   sync.Mutex // guards treeFile.fh and treeFile.users, and openFiles
	openFiles map[*treeFile]struct{}

	jobs chan treeJob
	wg   sync.WaitGroup

	errMu     sync.Mutex
	err       error  // the first write that failed
	filesDone uint64 // files written whole (guarded by handles)
}

// dirPlace is a folder node or shard at one place of the tree.
type dirPlace struct {
	rel    string // slash-separated path from the top; "" for the top
	depth  int    // shard level below the folder's first node (0: a plain folder or a top shard)
	prefix uint64 // the hash bits of the shards above, as unixfs.ParseDir takes them
	done   bool   // expanded
}

// treeFile is one file of the tree.
type treeFile struct {
	rel  string
	size uint64
	// Guarded by treeOut.handles.
	left    uint64 // bytes not yet written at their place
	fh      *os.File
	direct  *directWriter // fh opened again for direct writes of whole leaves; nil if none
	tried   bool          // direct was tried for this handle
	users   int
	created bool // this download created it, or found it in the partial tree
}

// filePlace is where a block's bytes go: a file and an offset in it.
type filePlace struct {
	f      *treeFile
	off    uint64
	queued bool // handed to a writer (guarded by Download.mu)
	done   bool // written (guarded by Download.mu)
}

// treeJob is a small leaf on its way to a writer.
type treeJob struct {
	k    string // the leaf's block key
	p    *filePlace
	data []byte
}

const (
	// asyncLeaf is the largest leaf written by the workers (copied); a larger one is written by
	// the delivering goroutine, from the transfer's buffer.
	asyncLeaf = 64 << 10
	// treeWriters write small leaves: creating files is file-system latency, not CPU.
	treeWriters = 4
	// maxOpenFiles bounds the files a tree download holds open between writes.
	maxOpenFiles = 256
	// maxOpenDirs bounds the folders it holds open.
	maxOpenDirs = 64
)

// StartTreeDownload records that a fetch of the folder root into the new directory out began
// (or resumed), and prepares its partial tree PartPath(out, root): created exclusively, or, when
// the log records it as this folder's (FetchStarted), opened to resume, refusing a link. Anything
// else there is ErrUnknownPart, left alone. Every Download must end in Complete or Fail.
func (s *Store) StartTreeDownload(root cid.Cid, name, out string) (_ *Download, err error) {
	if err := unixfs.CheckCID(root); err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(out)
	if err != nil {
		return nil, err
	}
	if _, err := os.Lstat(abs); err == nil {
		return nil, fmt.Errorf("%s: %w", abs, fs.ErrExist)
	}
	s.blocks.gc.RLock()
	release := sync.OnceFunc(s.blocks.gc.RUnlock)
	defer func() {
		if err != nil {
			release()
		}
	}()
	part := PartPath(abs, root)
	f, known := s.File(root)
	known = known && f.State == Partial && f.Part == part
	t, err := openTree(abs, part, known)
	if err != nil {
		return nil, err
	}
	d := &Download{s: s, root: root, name: name, path: abs, partPath: part, tree: t,
		offsets: map[string][]uint64{}, sizes: map[string]int{}, counts: map[string]int{}, arrived: make(chan struct{})}
	d.resumed, t.d, t.goos = t.resumed, d, runtime.GOOS
	t.dirs[blockKey(root)] = []*dirPlace{{}}
	d.release = func() {
		release()
		s.downloads.remove(d)
	}
	if err := s.Record(Event{Type: FetchStarted, Root: root.String(), Name: name, Path: abs, Part: part}); err != nil {
		t.close()
		return nil, err
	}
	t.start()
	s.downloads.add(d)
	return d, nil
}

// openTree creates the partial tree, or opens the one there when known.
func openTree(out, part string, known bool) (*treeOut, error) {
	resumed := false
	if err := os.Mkdir(part, 0o755); err != nil {
		if !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("creating partial folder: %w", err)
		}
		if !known {
			return nil, fmt.Errorf("%w: %s (remove it, or fetch into another directory)", ErrUnknownPart, part)
		}
		st, err := os.Lstat(part)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			return nil, fmt.Errorf("%w: %s is not a folder this fetch wrote", ErrUnknownPart, part)
		}
		resumed = true
	}
	r, err := os.OpenRoot(part)
	if err != nil {
		return nil, err
	}
	if st, err := os.Lstat(part); err != nil || !st.IsDir() {
		_ = r.Close()
		return nil, fmt.Errorf("%w: %s is not a folder this fetch wrote", ErrUnknownPart, part)
	} else if rst, err := r.Stat("."); err != nil || !os.SameFile(st, rst) {
		_ = r.Close()
		return nil, fmt.Errorf("%w: %s changed while it was opened", ErrUnknownPart, part)
	}
	return &treeOut{
		out: out, part: part, root: r, resumed: resumed,
		syncEach: fsys.SyncFS(part) != nil, // probe: unsupported here means one fsync per file
		entries:  map[string][]string{}, dirs: map[string][]*dirPlace{}, places: map[string][]*filePlace{},
		links: map[string]string{}, openFiles: map[*treeFile]struct{}{}, dirRoot: map[string]*os.Root{},
	}, nil
}

// TreeFiles says, for a folder download, how many files it has named so far and how many are
// written whole; ok is false for a file's download.
func (d *Download) TreeFiles() (files, done uint64, ok bool) {
	if d.tree == nil {
		return 0, 0, false
	}
	d.mu.Lock()
	files = d.tree.known
	d.mu.Unlock()
	d.tree.handles.Lock()
	done = d.tree.filesDone
	d.tree.handles.Unlock()
	return files, done, true
}

func (t *treeOut) start() {
	t.jobs = make(chan treeJob, 256)
	for range treeWriters {
		t.wg.Go(func() {
			for j := range t.jobs {
				err := t.write(j.p, j.data)
				if err == nil {
					t.d.placeDone(j.k, j.p, len(j.data))
				}
				t.setErr(err)
			}
		})
	}
}

// drain waits for every queued write and returns the first error.
func (t *treeOut) drain() error {
	if t.jobs != nil {
		close(t.jobs)
		t.wg.Wait()
		t.jobs = nil
	}
	return t.firstErr()
}

func (t *treeOut) setErr(err error) {
	if err == nil {
		return
	}
	t.errMu.Lock()
	if t.err == nil {
		t.err = err
	}
	t.errMu.Unlock()
}

func (t *treeOut) firstErr() error {
	t.errMu.Lock()
	defer t.errMu.Unlock()
	return t.err
}

// close ends the writers and closes every file and folder held open.
func (t *treeOut) close() error {
	err := t.drain()
	t.handles.Lock()
	for f := range t.openFiles {
		err = errors.Join(err, t.closeFile(f))
	}
	t.handles.Unlock()
	t.dirMu.Lock()
	for _, r := range t.dirRoot {
		_ = r.Close()
	}
	t.dirRoot = map[string]*os.Root{}
	t.dirMu.Unlock()
	return errors.Join(err, t.root.Close())
}

// dir returns the open folder rel of the tree ("" the top), opening it through the tree's root,
// so that nothing is reached outside it.
func (t *treeOut) dir(rel string) (*os.Root, error) {
	if rel == "" {
		return t.root, nil
	}
	t.dirMu.Lock()
	defer t.dirMu.Unlock()
	if r := t.dirRoot[rel]; r != nil {
		return r, nil
	}
	if len(t.dirRoot) >= maxOpenDirs {
		for k, r := range t.dirRoot {
			_ = r.Close()
			delete(t.dirRoot, k)
		}
	}
	st, err := t.root.Lstat(rel)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%s in the partial tree is not a folder", rel)
	}
	r, err := t.root.OpenRoot(rel)
	if err != nil {
		return nil, err
	}
	t.dirRoot[rel] = r
	return r, nil
}

// mkdir creates the folder rel, exclusively unless the tree is resumed (then a folder there is
// taken, anything else refused).
func (t *treeOut) mkdir(rel string) error {
	if rel == "" {
		return nil
	}
	err := t.root.Mkdir(rel, 0o755)
	if err == nil || !errors.Is(err, fs.ErrExist) || !t.resumed {
		return err
	}
	st, err := t.root.Lstat(rel)
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return fmt.Errorf("%s in the partial tree is not a folder", rel)
	}
	return nil
}

// splitRel splits a tree path into its folder and name.
func splitRel(rel string) (dir, name string) {
	i := strings.LastIndexByte(rel, '/')
	if i < 0 {
		return "", rel
	}
	return rel[:i], rel[i+1:]
}

// openFile opens f for writing, creating it the first time. Called with t.handles held.
func (t *treeOut) openFile(f *treeFile) (*os.File, error) {
	dir, name := splitRel(f.rel)
	r, err := t.dir(dir)
	if err != nil {
		return nil, err
	}
	if !f.created {
		fh, err := r.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
		if err == nil || !errors.Is(err, fs.ErrExist) || !t.resumed {
			if err == nil {
				f.created = true
			}
			return fh, err
		}
	}
	st, err := r.Lstat(name)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s in the partial tree is not a regular file", f.rel)
	}
	fh, err := r.OpenFile(name, os.O_RDWR, 0)
	if err == nil {
		f.created = true
	}
	return fh, err
}

// closeFile closes f's handle, syncing it first where the platform has no one-call sync. Called
// with t.handles held.
func (t *treeOut) closeFile(f *treeFile) error {
	var err error
	if t.syncEach {
		err = f.fh.Sync()
	}
	err = errors.Join(err, f.fh.Close(), f.direct.close())
	f.fh, f.direct, f.tried = nil, nil, false
	delete(t.openFiles, f)
	return err
}

// write writes data at p and counts it.
func (t *treeOut) write(p *filePlace, data []byte) error {
	f := p.f
	t.handles.Lock()
	if f.fh == nil {
		fh, err := t.openFile(f)
		if err != nil {
			t.handles.Unlock()
			return fmt.Errorf("writing %s: %w", f.rel, err)
		}
		f.fh = fh
		t.openFiles[f] = struct{}{}
	}
	if len(data) >= asyncLeaf && !f.tried {
		// Large leaves bypass the page cache, as a file's download writes them (directio.go).
		f.direct, f.tried = openDirect(f.fh), true
	}
	f.users++
	fh, direct := f.fh, f.direct
	t.handles.Unlock()
	var err error
	if len(data) > 0 {
		done := false
		if len(data) >= asyncLeaf {
			done, err = direct.writeAt(data, int64(p.off))
		}
		if err == nil && !done {
			_, err = fh.WriteAt(data, int64(p.off))
			if err == nil && len(data) >= asyncLeaf {
				fsys.WriteBehind(fh, int64(p.off), int64(len(data)))
			}
		}
	}
	t.handles.Lock()
	defer t.handles.Unlock()
	f.users--
	if err == nil {
		if f.left >= uint64(len(data)) && len(data) > 0 {
			f.left -= uint64(len(data))
			if f.left == 0 {
				t.filesDone++
			}
		}
	}
	if f.users == 0 && f.fh != nil && (f.left == 0 || len(t.openFiles) > maxOpenFiles) {
		err = errors.Join(err, t.closeFile(f))
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", f.rel, err)
	}
	return nil
}

// read reads size bytes at p from the partial tree, refusing a link.
func (t *treeOut) read(p *filePlace, size int) ([]byte, error) {
	dir, name := splitRel(p.f.rel)
	r, err := t.dir(dir)
	if err != nil {
		return nil, err
	}
	st, err := r.Lstat(name)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s in the partial tree is not a regular file", p.f.rel)
	}
	fh, err := r.Open(name)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	buf := make([]byte, size)
	if _, err := fh.ReadAt(buf, int64(p.off)); err != nil {
		return nil, err
	}
	return buf, nil
}

// treeHas is Has for a folder download. An inner node is here when the repo holds it. A leaf is
// here when it is already written at one of its places (by this download, or, resuming, by the
// last), read back and verified; it is then copied to its other places. A leaf another held file
// has is copied from there.
func (d *Download) treeHas(ctx context.Context, c cid.Cid) (bool, error) {
	if c.Prefix().Codec != cid.Raw {
		has := d.s.blocks.has(c)
		if has {
			d.got.Store(true)
		}
		return has, nil
	}
	t := d.tree
	size := d.leafSize(c)
	d.mu.Lock()
	var todo, written []*filePlace
	for _, p := range t.places[blockKey(c)] {
		switch {
		case p.done:
			written = append(written, p)
		case !p.queued:
			todo = append(todo, p)
		}
	}
	d.mu.Unlock()
	if len(todo) == 0 {
		// Written, on its way to a writer, or wanted nowhere (every place it had is written and
		// forgotten): nothing to fetch.
		return true, nil
	}
	var data []byte
	if size > 0 && size <= unixfs.MaxBlockSize {
		for _, p := range written {
			if b, err := t.read(p, size); err == nil && unixfs.Verify(c, b) == nil {
				data = b
				break
			}
		}
		if data == nil && d.resumed {
			var rest []*filePlace
			for _, p := range todo {
				if b, err := t.read(p, size); err == nil && unixfs.Verify(c, b) == nil {
					data = b
					d.mu.Lock()
					p.queued, p.done = true, true
					d.mu.Unlock()
					d.placeFound(p, len(b))
					continue
				}
				rest = append(rest, p)
			}
			todo = rest
		}
	}
	if data == nil {
		if !d.s.blocks.has(c) && len(d.s.refs.refsFor(c)) == 0 {
			return false, nil // the common case, found without a read
		}
		b, err := d.s.GetBlock(ctx, c) // verified: a corrupt or changed copy is fetched again
		if err != nil {
			return false, nil
		}
		if err := d.checkLeafSize(c, b); err != nil {
			return false, err
		}
		data = b
	}
	if err := d.writePlaces(c, data, todo); err != nil {
		return false, err
	}
	d.got.Store(true)
	return true, nil
}

// placeFound counts a leaf found in place by a resumed download.
func (d *Download) placeFound(p *filePlace, n int) {
	t := d.tree
	d.have.Add(uint64(n))
	d.found.Add(uint64(n))
	d.got.Store(true)
	t.handles.Lock()
	p.f.created = true
	if p.f.left >= uint64(n) && n > 0 {
		p.f.left -= uint64(n)
		if p.f.left == 0 {
			t.filesDone++
		}
	}
	t.handles.Unlock()
}

// writePlaces writes a verified leaf at the given places: small ones through the writers (a
// copy), large ones at once.
func (d *Download) writePlaces(c cid.Cid, data []byte, places []*filePlace) error {
	t := d.tree
	if err := t.firstErr(); err != nil {
		return err
	}
	for _, p := range places {
		d.mu.Lock()
		skip := p.queued
		p.queued = true
		d.mu.Unlock()
		if skip {
			continue
		}
		if len(data) >= asyncLeaf {
			if err := t.write(p, data); err != nil {
				return err
			}
			d.placeDone(blockKey(c), p, len(data))
			continue
		}
		j := treeJob{k: blockKey(c), p: p, data: append([]byte(nil), data...)}
		t.jobs <- j
	}
	return nil
}

// placeDone marks p, a place of leaf k, written and counts its bytes. Once every place of a leaf
// is written, the download forgets the leaf, so that its memory follows the files in progress,
// not the tree: a leaf met again later (the same bytes in another file) is fetched or found anew.
func (d *Download) placeDone(k string, p *filePlace, n int) {
	d.mu.Lock()
	p.done = true
	all := true
	for _, q := range d.tree.places[k] {
		all = all && q.done
	}
	if all {
		delete(d.tree.places, k)
		delete(d.sizes, k)
	}
	d.mu.Unlock()
	d.have.Add(uint64(n))
}

// treeDeliver is Deliver for a folder download: a leaf goes to its places in the tree, any other
// block to the repo.
func (d *Download) treeDeliver(c cid.Cid, block []byte) error {
	if err := d.checkLeafSize(c, block); err != nil {
		return err
	}
	if c.Prefix().Codec == cid.Raw {
		d.mu.Lock()
		var todo []*filePlace
		for _, p := range d.tree.places[blockKey(c)] {
			if !p.queued {
				todo = append(todo, p)
			}
		}
		d.mu.Unlock()
		if err := d.writePlaces(c, block, todo); err != nil {
			return err
		}
	} else if err := d.s.blocks.put(c, block); err != nil {
		return err
	}
	d.got.Store(true)
	return nil
}

// treeExpand is Expand for a folder download: a folder or shard names its entries (each name
// checked, for this system too), a file node places its children in its file, a link is noted
// for the end.
func (d *Download) treeExpand(c cid.Cid, block []byte) ([]cid.Cid, error) {
	n, err := unixfs.ParseNode(c, block)
	if errors.Is(err, unixfs.ErrNotFile) && c.Type() == cid.DagProtobuf {
		return d.treeExpandDir(c, block)
	}
	if err != nil {
		return nil, err
	}
	t := d.tree
	k := blockKey(c)
	d.mu.Lock()
	defer d.mu.Unlock()
	if want, ok := d.sizes[k]; ok && uint64(want) != n.Size {
		return nil, fmt.Errorf("%w: block %s holds %d file bytes but its parent says %d", ErrInconsistentDAG, c, n.Size, want)
	}
	if c.Prefix().Codec == cid.Raw {
		return nil, nil // a leaf: Deliver writes it
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
	// The entries this node is the root of become files of its size.
	for _, rel := range t.entries[k] {
		t.addFileLocked(d, k, rel, n.Size)
	}
	delete(t.entries, k)
	places := t.places[k]
	if len(places) == 0 {
		if c.Equals(d.root) {
			return nil, fmt.Errorf("%s is a file, not a folder: %w", c, unixfs.ErrNotDir)
		}
		return nil, fmt.Errorf("block %s arrived before its parent", c)
	}
	if len(n.Data) > 0 {
		// File bytes held in a dag-pb node itself (DAGs of older importers) go to the file like
		// a leaf's; Expand sees every inner node, fetched or already here.
		for _, p := range places {
			if err := t.writeData(p, n.Data); err != nil {
				return nil, err
			}
		}
	}
	kids := make([]cid.Cid, len(n.Children))
	for i, ch := range n.Children {
		kids[i] = ch.Cid
		ck := blockKey(ch.Cid)
		for _, p := range places {
			t.addPlaceLocked(ck, p.f, p.off+ch.Offset)
		}
		d.sizes[ck] = int(ch.Size)
	}
	return kids, nil
}

// writeData writes bytes a file node holds itself at p, at once (not counted as a leaf's).
func (t *treeOut) writeData(p *filePlace, data []byte) error {
	t.handles.Lock()
	defer t.handles.Unlock()
	f := p.f
	if f.fh == nil {
		fh, err := t.openFile(f)
		if err != nil {
			return fmt.Errorf("writing %s: %w", f.rel, err)
		}
		f.fh = fh
		t.openFiles[f] = struct{}{}
	}
	if _, err := f.fh.WriteAt(data, int64(p.off)); err != nil {
		return fmt.Errorf("writing %s: %w", f.rel, err)
	}
	return nil
}

// addFileLocked makes rel a file of size bytes whose root is block k. Called with d.mu held.
func (t *treeOut) addFileLocked(d *Download, k, rel string, size uint64) {
	f := &treeFile{rel: rel, size: size, left: size}
	t.known++
	d.size += size
	if size == 0 {
		t.handles.Lock()
		t.filesDone++
		t.handles.Unlock()
	}
	t.addPlaceLocked(k, f, 0)
}

// addPlaceLocked notes that block k's bytes go to f at off (once). Called with d.mu held.
func (t *treeOut) addPlaceLocked(k string, f *treeFile, off uint64) {
	for _, p := range t.places[k] {
		if p.f == f && p.off == off {
			return
		}
	}
	t.places[k] = append(t.places[k], &filePlace{f: f, off: off})
}

// treeExpandDir expands a folder node, a HAMT shard or a symbolic link.
func (d *Download) treeExpandDir(c cid.Cid, block []byte) ([]cid.Cid, error) {
	t := d.tree
	k := blockKey(c)
	kind, _, err := unixfs.Inspect(c, block)
	if err != nil {
		return nil, err
	}
	switch kind {
	case unixfs.Symlink:
		target, err := symlinkTarget(c, block)
		if err != nil {
			return nil, err
		}
		d.mu.Lock()
		defer d.mu.Unlock()
		for _, rel := range t.entries[k] {
			t.links[rel] = target
		}
		delete(t.entries, k)
		return nil, nil
	case unixfs.Directory:
	default:
		return nil, fmt.Errorf("block %s: a UnixFS %s cannot be part of a folder", c, kind)
	}
	d.mu.Lock()
	// Entries this node is the first node of become folders.
	var mk []string
	for _, rel := range t.entries[k] {
		if strings.Count(rel, "/")+1 > unixfs.MaxPathSegments {
			d.mu.Unlock()
			return nil, fmt.Errorf("folder %s: nested more than %d folders deep", rel, unixfs.MaxPathSegments)
		}
		t.dirs[k] = append(t.dirs[k], &dirPlace{rel: rel})
		mk = append(mk, rel)
	}
	delete(t.entries, k)
	var todo []*dirPlace
	for _, p := range t.dirs[k] {
		if !p.done {
			p.done = true
			todo = append(todo, p)
		}
	}
	placed := len(t.dirs[k]) > 0
	d.mu.Unlock()
	for _, rel := range mk {
		if err := t.mkdir(rel); err != nil {
			return nil, fmt.Errorf("folder %s: %w", rel, err)
		}
	}
	if len(todo) == 0 {
		if !placed {
			return nil, fmt.Errorf("block %s arrived before its parent", c)
		}
		return nil, nil
	}
	var kids []cid.Cid
	seen := map[string]bool{}
	for _, p := range todo {
		dir, err := unixfs.ParseDir(c, block, p.depth, p.prefix)
		if err != nil {
			if p.rel != "" {
				return nil, fmt.Errorf("folder %s: %w", p.rel, err)
			}
			return nil, err
		}
		d.mu.Lock()
		for i, l := range dir.Links {
			ck := blockKey(l.Cid)
			if !seen[ck] {
				seen[ck] = true
				kids = append(kids, l.Cid)
			}
			if dir.Sharded && l.Name == "" {
				t.dirs[ck] = append(t.dirs[ck], &dirPlace{rel: p.rel, depth: p.depth + 1, prefix: p.prefix<<8 | uint64(dir.Slots[i])})
				continue
			}
			if err := unixfs.CheckNameOn(t.goos, l.Name); err != nil {
				d.mu.Unlock()
				return nil, fmt.Errorf("folder %q: %w", p.rel, err)
			}
			rel := path.Join(p.rel, l.Name)
			if l.Cid.Prefix().Codec == cid.Raw {
				// A file of one leaf: its link's Tsize is its size, which the leaf must have.
				if l.Tsize > unixfs.MaxBlockSize {
					d.mu.Unlock()
					return nil, fmt.Errorf("%w: folder %s says its file %q of one block holds %d bytes", ErrInconsistentDAG, c, l.Name, l.Tsize)
				}
				if had, ok := d.sizes[ck]; ok && uint64(had) != l.Tsize {
					d.mu.Unlock()
					return nil, fmt.Errorf("%w: folder %s says %s holds %d bytes, another parent says %d", ErrInconsistentDAG, c, l.Cid, l.Tsize, had)
				}
				d.sizes[ck] = int(l.Tsize)
				t.addFileLocked(d, ck, rel, l.Tsize)
				continue
			}
			// Its kind is known when it is expanded; a block met again (the same subfolder or
			// file under two names) is taken up and expanded again by the fetch.
			t.entries[ck] = append(t.entries[ck], rel)
		}
		d.mu.Unlock()
	}
	return kids, nil
}

// treeComplete finishes a folder download: every write done, every folder decoded again with all
// of unixfs.ParseDir's checks, every file checked on disk (a regular file of its size; an empty
// one created if no block named it), the links created, all made durable, the tree renamed into
// place and recorded as held in place.
func (d *Download) treeComplete() error {
	t := d.tree
	if err := t.drain(); err != nil {
		return err
	}
	var files, size uint64
	var dirs []string
	var links []string
	ctx := context.Background()
	err := d.s.walkOwnedTree(ctx, d.root, func(e treeEntry) error {
		rel := path.Join(e.rel...)
		switch e.kind {
		case unixfs.Directory:
			dirs = append(dirs, rel)
			if err := t.mkdir(rel); err != nil && !errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("folder %s: %w", rel, err)
			}
		case unixfs.Symlink:
			links = append(links, rel)
		case unixfs.File:
			files++
			size += e.size
			return t.checkFile(rel, e.size)
		}
		return nil
	})
	if err == nil {
		err = t.close()
	} else {
		err = errors.Join(err, t.close())
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInconsistentDAG, err)
	}
	// Links last, once every file is written: nothing is ever written through one.
	for _, rel := range links {
		d.mu.Lock()
		target, ok := t.links[rel]
		d.mu.Unlock()
		if !ok {
			return fmt.Errorf("link %s: its block was never seen", rel)
		}
		if err := t.symlink(rel, target); err != nil {
			return err
		}
	}
	if t.syncEach {
		for _, rel := range dirs {
			if err := syncDir(filepath.Join(t.part, filepath.FromSlash(rel))); err != nil {
				return err
			}
		}
	} else if err := fsys.SyncFS(t.part); err != nil {
		return fmt.Errorf("syncing %s: %w", t.part, err)
	}
	// A file of the folder is the version written here while its change time is older than this.
	held := d.s.journal.now().UnixNano()
	if err := os.Rename(t.part, t.out); err != nil {
		return fmt.Errorf("moving %s into place: %w", t.out, err)
	}
	if err := syncDir(filepath.Dir(t.out)); err != nil {
		return err
	}
	if err := d.s.blocks.sync(); err != nil {
		return err
	}
	d.mu.Lock()
	d.done = true
	d.mu.Unlock()
	ev := Event{Type: FetchCompleted, Root: d.root.String(), Name: d.name, Size: size, Dir: true, Files: files, Path: t.out, ModTime: held}
	if err := d.s.Record(ev); err != nil {
		return err
	}
	d.release()
	return nil
}

// symlink creates the link rel to target inside the tree; one already there with that target (a
// resumed download that got this far) is kept.
func (t *treeOut) symlink(rel, target string) error {
	r, err := os.OpenRoot(t.part)
	if err != nil {
		return err
	}
	defer r.Close()
	err = r.Symlink(target, rel)
	if err != nil && errors.Is(err, fs.ErrExist) && t.resumed {
		if got, rerr := r.Readlink(rel); rerr == nil && got == target {
			return nil
		}
	}
	if err != nil {
		return fmt.Errorf("link %s: %w", rel, err)
	}
	return nil
}

// checkFile checks that rel is a regular file of size bytes in the tree, creating it when it is
// empty and no block made it.
func (t *treeOut) checkFile(rel string, size uint64) error {
	dir, name := splitRel(rel)
	r, err := t.dir(dir)
	if err != nil {
		return fmt.Errorf("file %s: %w", rel, err)
	}
	st, err := r.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) && size == 0 {
		fh, err := r.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return fmt.Errorf("file %s: %w", rel, err)
		}
		if t.syncEach {
			err = fh.Sync()
		}
		return errors.Join(err, fh.Close())
	}
	if err != nil {
		return fmt.Errorf("file %s: %w", rel, err)
	}
	if !st.Mode().IsRegular() || uint64(st.Size()) != size {
		return fmt.Errorf("file %s: %d bytes on disk, its DAG says %d", rel, st.Size(), size)
	}
	return nil
}

// treeFail is Fail for a folder download: the writes under way finish, the partial tree stays
// for a resume (or goes, when this download created it and wrote nothing in it).
func (d *Download) treeFail(cause error) error {
	defer d.release()
	t := d.tree
	err := t.close()
	d.mu.Lock()
	done := d.done
	d.mu.Unlock()
	if done || cause == nil {
		return err
	}
	if !t.resumed && d.have.Load() == 0 {
		if rerr := removeEmptyTree(t.part); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}
	if !d.resumed && !d.got.Load() {
		return errors.Join(err, d.s.Record(Event{Type: FetchAbandoned, Root: d.root.String(), Error: cause.Error()}))
	}
	return errors.Join(err, d.s.blocks.sync(), d.s.Record(Event{Type: FetchFailed, Root: d.root.String(), Error: cause.Error(), Size: d.Size(), Have: d.Have()}))
}

// removeEmptyTree removes a partial tree that holds only folders and empty files (nothing a
// resume could use), never following a link.
func removeEmptyTree(part string) error {
	empty := true
	err := filepath.WalkDir(part, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() {
			return nil
		}
		if st, err := e.Info(); err != nil || !st.Mode().IsRegular() || st.Size() > 0 {
			empty = false
			return filepath.SkipAll
		}
		return nil
	})
	if err != nil || !empty {
		return err
	}
	return os.RemoveAll(part)
}

// walkOwnedTree is walkTree for a folder whose files' leaves are not in the repo: a file of one
// raw leaf is not read, its size is its link's (which a folder download checked against the leaf
// it wrote).
func (s *Store) walkOwnedTree(ctx context.Context, root cid.Cid, fn func(treeEntry) error) error {
	get := func(_ context.Context, c cid.Cid) ([]byte, error) { return s.blocks.get(c) }
	var visit func(dir cid.Cid, rel []string) error
	visit = func(dir cid.Cid, rel []string) error {
		if len(rel) > unixfs.MaxPathSegments {
			return fmt.Errorf("folder %s: nested more than %d folders deep", strings.Join(rel, "/"), unixfs.MaxPathSegments)
		}
		links, err := unixfs.ListDir(ctx, dir, get)
		if err != nil {
			if len(rel) > 0 {
				return fmt.Errorf("folder %s: %w", strings.Join(rel, "/"), err)
			}
			return err
		}
		for _, l := range links {
			if err := ctx.Err(); err != nil {
				return err
			}
			e := treeEntry{rel: append(rel[:len(rel):len(rel)], l.Name), cid: l.Cid}
			if l.Cid.Prefix().Codec == cid.Raw {
				e.kind, e.size = unixfs.File, l.Tsize
				if err := fn(e); err != nil {
					return err
				}
				continue
			}
			block, err := s.blocks.get(l.Cid)
			if err != nil {
				return fmt.Errorf("entry %q: %w", strings.Join(e.rel, "/"), err)
			}
			var n uint64
			e.kind, n, err = unixfs.Inspect(l.Cid, block)
			if err != nil {
				return fmt.Errorf("entry %q: %w", strings.Join(e.rel, "/"), err)
			}
			switch e.kind {
			case unixfs.File:
				e.size = n
			case unixfs.Symlink:
				if e.target, err = symlinkTarget(l.Cid, block); err != nil {
					return fmt.Errorf("entry %q: %w", strings.Join(e.rel, "/"), err)
				}
			case unixfs.Directory:
			default:
				return fmt.Errorf("entry %q: a UnixFS %s is not a file, folder or symlink", strings.Join(e.rel, "/"), e.kind)
			}
			if err := fn(e); err != nil {
				return err
			}
			if e.kind == unixfs.Directory {
				if err := visit(l.Cid, e.rel); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return visit(root, nil)
}

// knowsLocked reports whether the folder download has learnt of block k. Called with Download.mu
// held.
func (t *treeOut) knowsLocked(k string) bool {
	if _, ok := t.dirs[k]; ok {
		return true
	}
	if _, ok := t.places[k]; ok {
		return true
	}
	_, ok := t.entries[k]
	return ok
}
