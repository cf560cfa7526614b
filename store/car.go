package store

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/ipfs/go-cid"
	carv2 "github.com/ipld/go-car/v2"
	carindex "github.com/ipld/go-car/v2/index"
	"github.com/ipld/go-car/v2/storage"
	"github.com/multiformats/go-multicodec"
	mh "github.com/multiformats/go-multihash"

	"peer/store/unixfs"
)

// CAR files (https://ipld.io/specs/transport/car/), read and written with go-car/v2. Export writes
// a CARv1 of every block reachable from a root, as `ipfs dag export` does; ImportCAR reads a CARv1
// or CARv2 stream, verifies every block against its CID, stores it, and records each root whose
// DAG is then complete in the store as a held file (FileAdded). Blocks of any codec whose links
// the store can read are accepted (see Links); identity blocks are verified and need no storage.

// ErrBadCAR means the input is not a CAR the store accepts: malformed, truncated, a block that
// does not match its CID, a codec or hash function it cannot read, an index that lies.
var ErrBadCAR = errors.New("not a valid CAR file")

// maxSection is the largest CAR section read: a block of unixfs.MaxBlockSize and its CID.
const maxSection = unixfs.MaxBlockSize + 1024

// maxCARHeader is the largest CAR header read: a list of roots.
const maxCARHeader = 1 << 20

// Root states in an ImportResult.
const (
	RootAdded      = "added"      // the DAG is complete: recorded as a held file
	RootHeld       = "held"       // the repo already held it
	RootIncomplete = "incomplete" // blocks of its DAG are missing: not held
)

// ImportedRoot is what an import did with one root of the CAR.
type ImportedRoot struct {
	CID   string `json:"cid"`
	State string `json:"state"` // RootAdded, RootHeld or RootIncomplete
	// Size is the file's size for a UnixFS file, else the bytes of the DAG's blocks (0 when
	// incomplete).
	Size uint64 `json:"size"`
	// Missing is a block of the DAG the repo does not hold (RootIncomplete).
	Missing string `json:"missing,omitempty"`
}

// ImportResult says what ImportCAR read and stored.
type ImportResult struct {
	Version int            `json:"version"` // 1 or 2
	Blocks  int            `json:"blocks"`  // sections read
	Bytes   uint64         `json:"bytes"`   // block bytes read
	New     int            `json:"new"`     // blocks stored that were not here
	Roots   []ImportedRoot `json:"roots"`
}

// Incomplete lists the roots whose DAG is not complete in the repo.
func (r ImportResult) Incomplete() []ImportedRoot {
	var out []ImportedRoot
	for _, x := range r.Roots {
		if x.State == RootIncomplete {
			out = append(out, x)
		}
	}
	return out
}

// ImportCAR reads a CAR (v1, or v2 whose index, when present, must agree with its data) from r,
// verifies and stores every block, and records each root whose DAG is complete as a held file,
// all roots in one durable group after every block is durable. A root already held is left as
// it is; a root whose DAG misses blocks is reported (RootIncomplete), not recorded. Input that
// is not a valid CAR gives an error wrapping ErrBadCAR; on any error nothing is recorded and the
// blocks the import wrote are removed unless a held file needs them, as a failed Add does.
func (s *Store) ImportCAR(ctx context.Context, r io.Reader) (ImportResult, error) {
	res, written, err := s.importCAR(ctx, r)
	if err != nil && len(written) > 0 {
		err = s.discard(written, err)
	}
	return res, err
}

// countingReader counts the bytes read through it, so that each section's offset is known.
type countingReader struct {
	r *bufio.Reader
	n uint64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += uint64(n)
	return n, err
}

func (c *countingReader) ReadByte() (byte, error) {
	b, err := c.r.ReadByte()
	if err == nil {
		c.n++
	}
	return b, err
}

func (s *Store) importCAR(ctx context.Context, r io.Reader) (res ImportResult, written []cid.Cid, err error) {
	s.blocks.gc.RLock()
	defer s.blocks.gc.RUnlock()
	buf := bufio.NewReaderSize(r, 1<<20)
	cr := &countingReader{r: buf}
	// A CARv2 starts with a fixed pragma and header, which the block reader does not expose:
	// peek at them, for the data's bounds and the index.
	var v2 *carv2.Header
	head, _ := buf.Peek(carv2.PragmaSize + carv2.HeaderSize)
	if len(head) >= carv2.PragmaSize && bytes.Equal(head[:carv2.PragmaSize], carv2.Pragma) {
		if len(head) < carv2.PragmaSize+carv2.HeaderSize {
			return res, nil, fmt.Errorf("%w: it ends inside its CARv2 header (truncated)", ErrBadCAR)
		}
		v2 = &carv2.Header{}
		if _, err := v2.ReadFrom(bytes.NewReader(head[carv2.PragmaSize:])); err != nil {
			return res, nil, fmt.Errorf("%w: CARv2 header: %v", ErrBadCAR, err)
		}
	}
	br, err := carv2.NewBlockReader(cr,
		carv2.MaxAllowedHeaderSize(maxCARHeader),
		carv2.MaxAllowedSectionSize(maxSection),
		carv2.WithTrustedCAR(true)) // every block is verified below, once, with clearer errors
	if err != nil {
		return res, nil, fmt.Errorf("%w: it does not start with a CAR header (%v)", ErrBadCAR, readErr(err))
	}
	res.Version = int(br.Version)
	if v2 != nil && br.Version != 2 {
		return res, nil, fmt.Errorf("%w: a CARv2 pragma with version %d", ErrBadCAR, br.Version)
	}
	var dataEnd uint64
	if v2 != nil {
		dataEnd = v2.DataOffset + v2.DataSize
	}
	var records []carindex.Record // with a CARv2 index to check: where each block was
	for {
		if err := ctx.Err(); err != nil {
			return res, written, err
		}
		off := cr.n
		if v2 != nil && off >= dataEnd {
			break
		}
		section := res.Blocks + 1
		where := fmt.Sprintf("section %d at byte %d", section, off)
		if b, _ := buf.Peek(binary.MaxVarintLen64); len(b) > 0 {
			if size, n := binary.Uvarint(b); n > 0 && size > maxSection {
				return res, written, fmt.Errorf("%w: %s is %d bytes, more than a block of at most %d bytes and its CID", ErrBadCAR, where, size, unixfs.MaxBlockSize)
			}
		}
		blk, err := br.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return res, written, fmt.Errorf("%w: %s: %v", ErrBadCAR, where, readErr(err))
		}
		c, data := blk.Cid(), blk.RawData()
		if err := checkBlock(c, data); err != nil {
			return res, written, fmt.Errorf("%w: %s: %v", ErrBadCAR, where, err)
		}
		created, err := s.blocks.create(c, data)
		if err != nil {
			return res, written, err
		}
		if created {
			written = append(written, c)
			res.New++
		}
		res.Blocks++
		res.Bytes += uint64(len(data))
		if v2 != nil && v2.HasIndex() {
			records = append(records, carindex.Record{Cid: c, Offset: off - v2.DataOffset})
		}
	}
	if v2 != nil {
		if cr.n != dataEnd {
			return res, written, fmt.Errorf("%w: its data ends at byte %d, but its CARv2 header says %d (truncated)", ErrBadCAR, cr.n, dataEnd)
		}
		if v2.HasIndex() {
			if err := checkIndex(cr, v2, records); err != nil {
				return res, written, fmt.Errorf("%w: %v", ErrBadCAR, err)
			}
		}
	}
	if err := s.blocks.sync(); err != nil {
		return res, written, err
	}
	var evs []Event
	seen := map[string]bool{}
	for _, root := range br.Roots {
		if seen[root.KeyString()] {
			continue
		}
		seen[root.KeyString()] = true
		ir, err := s.rootState(ctx, root)
		if err != nil {
			return res, written, err
		}
		if ir.State == RootAdded {
			evs = append(evs, Event{Type: FileAdded, Root: root.String(), Size: ir.Size})
		}
		res.Roots = append(res.Roots, ir)
	}
	if err := s.Record(evs...); err != nil {
		return res, nil, err // the events may have reached the log: keep the blocks
	}
	return res, nil, nil
}

// readErr makes go-car's read errors say what they mean.
func readErr(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("the file ends inside it (truncated)")
	}
	return err
}

// checkBlock verifies a block from a CAR: its bytes hash to its CID with any hash function
// go-multihash has, it fits the store's block size, and the store can read its links.
func checkBlock(c cid.Cid, data []byte) error {
	if c.Version() > 1 {
		return fmt.Errorf("block %s: CID version %d is not supported", c, c.Version())
	}
	if len(data) > unixfs.MaxBlockSize {
		return fmt.Errorf("block %s is %d bytes, more than the %d a block may have", c, len(data), unixfs.MaxBlockSize)
	}
	if err := unixfs.Verify(c, data); err != nil {
		p := c.Prefix()
		switch {
		case errors.Is(err, unixfs.ErrHashMismatch):
			return fmt.Errorf("block %s does not match its CID (its bytes hash to something else)", c)
		case errors.Is(err, mh.ErrSumNotSupported):
			return fmt.Errorf("block %s uses hash function %s, which this node cannot compute to verify it", c, hashName(p.MhType))
		case errors.Is(err, mh.ErrLenTooLarge):
			return fmt.Errorf("block %s: a %s digest cannot be %d bytes long", c, hashName(p.MhType), p.MhLength)
		}
		return err
	}
	if mayLink(c) {
		if _, err := Links(c, data); err != nil {
			return err
		}
	}
	return nil
}

func hashName(code uint64) string {
	if name := mh.Codes[code]; name != "" {
		return fmt.Sprintf("%s (0x%x)", name, code)
	}
	return fmt.Sprintf("0x%x", code)
}

// rootState walks root's DAG in the owned blocks: complete, it is to be recorded (or is held
// already); else the first missing block is named.
func (s *Store) rootState(ctx context.Context, root cid.Cid) (ImportedRoot, error) {
	ir := ImportedRoot{CID: root.String()}
	if f, ok := s.File(root); ok && f.State == Complete {
		ir.State, ir.Size = RootHeld, f.Size
		return ir, nil
	}
	var bytes uint64
	errMissing := errors.New("missing")
	err := eachBlock(ctx, root, false, func(c cid.Cid, read bool) ([]byte, error) {
		if !read {
			n, err := s.blocks.size(c)
			if err != nil {
				ir.Missing = c.String()
				return nil, errMissing
			}
			bytes += uint64(n)
			return nil, nil
		}
		data, err := s.blocks.get(c)
		if errors.Is(err, ErrNotFound) {
			ir.Missing = c.String()
			return nil, errMissing
		}
		bytes += uint64(len(data))
		return data, err
	}, func(cid.Cid, []byte) error { return nil })
	switch {
	case errors.Is(err, errMissing):
		ir.State = RootIncomplete
		return ir, nil
	case err != nil:
		return ir, err
	}
	ir.State, ir.Size = RootAdded, bytes
	// A UnixFS file's size is its bytes, as `peer add` records it.
	if c := root.Type(); c == cid.Raw || c == cid.DagProtobuf {
		if data, err := s.blocks.get(root); err == nil {
			if n, err := unixfs.ParseNode(root, data); err == nil {
				ir.Size = n.Size
			}
		}
	}
	return ir, nil
}

// checkIndex reads a CARv2's index, which follows its data in r, and checks it against where
// the blocks really were: every block the index lists must be where it says, and every block
// (but identity ones, which indexes leave out) must be listed. A CAR whose index lies is damaged
// or forged, and is refused even though the blocks themselves were verified.
func checkIndex(cr *countingReader, h *carv2.Header, records []carindex.Record) error {
	dataEnd := h.DataOffset + h.DataSize
	if h.IndexOffset < dataEnd {
		return fmt.Errorf("its CARv2 index at byte %d overlaps its data (bytes %d to %d)", h.IndexOffset, h.DataOffset, dataEnd)
	}
	if _, err := io.CopyN(io.Discard, cr, int64(h.IndexOffset-dataEnd)); err != nil {
		return errors.New("it ends before its CARv2 index (truncated)")
	}
	// An index holds at most one record per block (digest and offset) and a few headers: read
	// no more than that, and check its lengths before go-car allocates what they say.
	limit := int64(4096 + len(records)*(2*mh.DefaultLengths[mh.SHA2_512]+64))
	raw, err := io.ReadAll(io.LimitReader(cr, limit+1))
	if err != nil {
		return fmt.Errorf("reading its CARv2 index: %v", err)
	}
	if int64(len(raw)) > limit {
		return fmt.Errorf("its CARv2 index is larger than an index of %d blocks can be", len(records))
	}
	if err := checkIndexLayout(raw); err != nil {
		return fmt.Errorf("its CARv2 index is malformed: %v", err)
	}
	idx, err := carindex.ReadFrom(bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("its CARv2 index is malformed: %v", err)
	}
	at := map[uint64]string{}     // offset → multihash of the block there
	offs := map[string][]uint64{} // CID → offsets (a block may come twice)
	for _, rec := range records {
		at[rec.Offset] = string(rec.Cid.Hash())
		offs[rec.Cid.KeyString()] = append(offs[rec.Cid.KeyString()], rec.Offset)
	}
	for _, rec := range records {
		if _, ok := identityData(rec.Cid); ok || len(offs[rec.Cid.KeyString()]) == 0 {
			continue
		}
		found := false
		err := idx.GetAll(rec.Cid, func(o uint64) bool {
			for _, want := range offs[rec.Cid.KeyString()] {
				if o == want {
					found = true
				}
			}
			return !found
		})
		if err != nil && !errors.Is(err, carindex.ErrNotFound) {
			return fmt.Errorf("its CARv2 index: %v", err)
		}
		if !found {
			return fmt.Errorf("its CARv2 index does not say where block %s is (byte %d of its data): the index lies", rec.Cid, rec.Offset)
		}
		delete(offs, rec.Cid.KeyString()) // checked once
	}
	if it, ok := idx.(carindex.IterableIndex); ok {
		return it.ForEach(func(m mh.Multihash, o uint64) error {
			if got, ok := at[o]; !ok || got != string(m) {
				return fmt.Errorf("its CARv2 index puts a block at byte %d of its data where there is none: the index lies", o)
			}
			return nil
		})
	}
	return nil
}

// checkIndexLayout walks the two index formats go-car reads and checks that every length they
// declare fits in b, so that decoding b allocates no more than b's size.
func checkIndexLayout(b []byte) error {
	code, n := binary.Uvarint(b)
	if n <= 0 {
		return errors.New("no codec")
	}
	b = b[n:]
	u32 := func() (uint32, error) {
		if len(b) < 4 {
			return 0, io.ErrUnexpectedEOF
		}
		v := binary.LittleEndian.Uint32(b)
		b = b[4:]
		return v, nil
	}
	u64 := func() (uint64, error) {
		if len(b) < 8 {
			return 0, io.ErrUnexpectedEOF
		}
		v := binary.LittleEndian.Uint64(b)
		b = b[8:]
		return v, nil
	}
	widths := func() error {
		count, err := u32()
		if err != nil {
			return err
		}
		if int32(count) < 0 || uint64(count) > uint64(len(b)) {
			return fmt.Errorf("%d buckets", int32(count))
		}
		for range count {
			if _, err := u32(); err != nil {
				return err
			}
			size, err := u64()
			if err != nil {
				return err
			}
			if size > uint64(len(b)) {
				return fmt.Errorf("a bucket of %d bytes in %d", size, len(b))
			}
			b = b[size:]
		}
		return nil
	}
	switch multicodec.Code(code) {
	case multicodec.CarIndexSorted:
		return widths()
	case multicodec.CarMultihashIndexSorted:
		count, err := u32()
		if err != nil {
			return err
		}
		if int32(count) < 0 || uint64(count) > uint64(len(b)) {
			return fmt.Errorf("%d hash functions", int32(count))
		}
		for range count {
			if _, err := u64(); err != nil {
				return err
			}
			if err := widths(); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("index codec %s is not one go-car reads", codecName(code))
}

// ExportResult says what Export wrote.
type ExportResult struct {
	Blocks int    `json:"blocks"`
	Bytes  uint64 `json:"bytes"` // of the CAR
}

// ErrIncomplete means a DAG misses blocks in this repo, so it cannot be exported whole.
var ErrIncomplete = errors.New("the repo does not hold every block")

// Export writes a CARv1 with root as its root and every block reachable from it (once each,
// parents first; identity blocks are left out, their CIDs carry them), verifying each block as it
// reads it. It first checks that every block is here: a DAG the repo does not hold whole is an
// error wrapping ErrNotFound (the root) or ErrIncomplete, with nothing written. A block that
// fails to read after that (a corrupt block, a referenced file that changed) ends the CAR
// short with an error.
func (s *Store) Export(ctx context.Context, root cid.Cid, w io.Writer) (ExportResult, error) {
	if !s.HasBlock(ctx, root) {
		return ExportResult{}, fmt.Errorf("%w: %s is not in this repo", ErrNotFound, root)
	}
	err := eachBlock(ctx, root, false, func(c cid.Cid, read bool) ([]byte, error) {
		if !read {
			if !s.HasBlock(ctx, c) {
				return nil, fmt.Errorf("%w of %s: block %s is missing (fetch it with `peer fetch %s`)", ErrIncomplete, root, c, root)
			}
			return nil, nil
		}
		data, err := s.GetBlock(ctx, c)
		if errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("%w of %s: block %s is missing", ErrIncomplete, root, c)
		}
		return data, err
	}, func(cid.Cid, []byte) error { return nil })
	if err != nil {
		return ExportResult{}, err
	}
	cw := &countingWriter{w: w}
	bw := bufio.NewWriterSize(cw, 256<<10)
	car, err := storage.NewWritable(bw, []cid.Cid{root}, carv2.WriteAsCarV1(true))
	if err != nil {
		return ExportResult{}, err
	}
	res := ExportResult{}
	err = eachBlock(ctx, root, true, func(c cid.Cid, _ bool) ([]byte, error) {
		return s.GetBlock(ctx, c)
	}, func(c cid.Cid, data []byte) error {
		if _, ok := identityData(c); !ok {
			res.Blocks++
		}
		return car.Put(ctx, c.KeyString(), data)
	})
	if err == nil {
		err = bw.Flush()
	}
	res.Bytes = cw.n
	return res, err
}

type countingWriter struct {
	w io.Writer
	n uint64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += uint64(n)
	return n, err
}
