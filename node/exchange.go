package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/time/rate"

	"peer/discovery"
	"peer/gossip"
	"peer/internal/names"
	"peer/store"
	"peer/store/unixfs"
	"peer/transfer"
	"peer/transfer/wire"
)

// exchange is the part of the node that moves files: the block-exchange protocol, gossip
// announcements, and the fetches in progress. It exists only when the node has a store.
type exchange struct {
	n    *Node
	st   *store.Store
	xfer *transfer.Transfer
	bs   *bitswapServer    // nil when Bitswap is off
	bsc  *transfer.Bitswap // fetches' Bitswap side; nil when Bitswap is off
	gsp  *gossip.Gossip
	disc *discovery.Discovery
	h    host.Host

	seen   chan store.Event // announcements waiting to be recorded in a batch
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// provMu orders providing a root with retiring it (retire.go).
	provMu      sync.Mutex
	withdrawals *announcementQueue

	mu       sync.Mutex
	fetching map[string]*store.Download // root → the download in progress

	limit *rate.Limiter // download_limit, shared by every fetch; nil: none
	tm    *transferManager
}

// newLimiter is a token bucket of bytesPerSec that holds a quarter second's worth (at least the
// largest block): enough that a pipeline that runs dry for a moment does not lose its share.
func newLimiter(bytesPerSec int64) *rate.Limiter {
	return rate.NewLimiter(rate.Limit(bytesPerSec), int(max(bytesPerSec/4, wire.MaxBlockSize)))
}

// startExchange starts transfer, Bitswap (unless off) and gossip on the host, re-provides what the node shares, and
// registers their Close with the node. Called from Start with n.mu held.
func (n *Node) startExchange(h host.Host, d *discovery.Discovery) error {
	st := n.opts.Store
	if st == nil {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	ex := &exchange{n: n, st: st, h: h, disc: d, seen: make(chan store.Event, 4096), cancel: cancel, fetching: map[string]*store.Download{},
		withdrawals: newAnnouncementQueue()}
	if n.cfg.DownloadLimit > 0 {
		ex.limit = newLimiter(n.cfg.DownloadLimit)
	}
	// Follow the store from before anything below can record a change.
	events, unsubscribe := st.Subscribe()
	var topts []transfer.Option
	if n.cfg.UploadLimit > 0 {
		topts = append(topts, transfer.WithRateLimit(n.cfg.UploadLimit))
	}
	bitswapOn := n.cfg.Bitswap && !n.opts.NoBitswap
	var bn bitswapNet
	if bitswapOn {
		// Providers that do not speak the transfer protocol are asked over Bitswap.
		bn = newBitswapNet(h)
		ex.bsc = transfer.NewBitswap(bn.net)
		topts = append(topts, transfer.WithBitswap(ex.bsc))
	}
	topts = append(topts, n.opts.Transfer...)
	ex.xfer = transfer.New(h, servedBlocks{st: st, m: n.metrics}, topts...)
	if err := ex.xfer.Start(); err != nil {
		cancel()
		unsubscribe()
		return fmt.Errorf("starting transfer: %w", err)
	}
	n.closers = append(n.closers, ex.xfer.Close)
	if bitswapOn {
		ex.bs = startBitswap(h, bn, ex.bsc, st, n.metrics, n.opts.BitswapLimits, ex.xfer.RateLimit())
		n.closers = append(n.closers, ex.bs.Close)
	}

	gcfg := gossip.DefaultConfig()
	gcfg.Network = n.cfg.Network
	gcfg.Shared = ex.sharedAnnouncements
	g, err := gossip.New(h, gcfg)
	if err != nil {
		cancel()
		unsubscribe()
		return err
	}
	if err := g.Start(ctx, ex.onAnnouncement); err != nil {
		cancel()
		unsubscribe()
		return err
	}
	ex.gsp = g
	check := n.opts.FileCheck
	if check <= 0 {
		check = defaultFileCheck
	}
	ex.wg.Add(4)
	go ex.recordSeen(ctx)
	go ex.watchStore(ctx, events, check)
	go ex.withdrawUntold(ctx)
	// Withdrawals stop before gossip closes: a publish may be waiting for a mesh.
	pctx, pcancel := context.WithCancel(ctx)
	go ex.publishWithdrawals(pctx)
	// Closers run in reverse: gossip stops delivering first, then the recorder writes what it
	// still holds and stops.
	n.closers = append(n.closers, func() error {
		cancel()
		unsubscribe()
		ex.wg.Wait()
		return nil
	}, g.Close, func() error { pcancel(); return nil })

	// Provide every complete file again: provider records expire, and a restarted node is a
	// provider again at once. A referenced file that changed while the node was down is recorded
	// as changed here (and withdrawn) instead.
	var roots []cid.Cid
	for _, f := range st.Files() {
		if f.State == store.Complete && st.Intact(f) {
			roots = append(roots, f.Root)
		}
	}
	if len(roots) > 0 {
		d.Provide(roots...)
	}
	// The transfer manager stops first: its fetches end while everything they use still runs.
	ex.tm = newTransferManager(n, ex)
	n.closers = append(n.closers, ex.tm.close)
	n.ex = ex
	return nil
}

// servedBlocks is the store as the transfer server sees it.
type servedBlocks struct {
	st *store.Store
	m  *Metrics
}

func (b servedBlocks) Get(ctx context.Context, c cid.Cid) ([]byte, error) {
	data, err := b.st.ServeBlock(ctx, c, servingBuffer)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: %s", transfer.ErrNotFound, c)
	}
	if err == nil {
		b.m.BlocksSent.Inc()
	}
	return data, err
}

// servingBuffer takes read buffers from the transfer layer's pool, so serving a file allocates
// next to nothing; a block too large for the protocol (which the server then refuses) gets its own.
func servingBuffer(n int) []byte {
	if n > wire.MaxBlockSize {
		return make([]byte, n)
	}
	return wire.GetBuffer(n)
}

// Release takes back a buffer the transfer server has written out.
func (servedBlocks) Release(data []byte) { wire.PutBuffer(data) }

var _ transfer.BlockReleaser = servedBlocks{}

// sharedAnnouncements is what this node offers to a peer that joins late (gossip's catalog
// exchange).
func (ex *exchange) sharedAnnouncements() []gossip.Announcement {
	var out []gossip.Announcement
	for _, f := range ex.st.Files() {
		// Intact: a referenced file that changed since is not offered (and is withdrawn).
		if f.Shared && f.State == store.Complete && ex.st.Intact(f) {
			out = append(out, announcementOf(f))
		}
	}
	return out
}

// onAnnouncement is called by gossip, one announcement at a time; it must not block long, so
// announcements are queued and recorded in batches (one fsync per batch).
func (ex *exchange) onAnnouncement(a gossip.Announcement) {
	e := store.Event{Type: store.AnnounceSeen, Root: a.Root.String(), Name: a.Name, Size: a.Size, Peer: a.Provider.String(), AnnTime: a.Time.UnixMilli()}
	e.Dir, e.Files = a.Folder()
	if a.Withdraw {
		e = store.Event{Type: store.AnnounceGone, Root: a.Root.String(), Peer: a.Provider.String()}
	}
	select {
	case ex.seen <- e:
	default:
		logger().Warn("announcement queue full; dropping", "root", e.Root)
	}
}

// seenRefresh is how stale a catalog entry may get before hearing it again is recorded; it is
// far below the catalog's expiry (catalog_ttl, 48h by default).
const seenRefresh = time.Hour

func (ex *exchange) recordSeen(ctx context.Context) {
	defer ex.wg.Done()
	batch := make([]store.Event, 0, 256)
	flush := func() {
		// An announcement heard again within seenRefresh changes nothing the catalog shows:
		// recording it would only grow the log (catalog exchanges repeat whole catalogs).
		kept := batch[:0]
		for _, e := range batch {
			if e.Type == store.AnnounceSeen {
				if t, ok := ex.st.LastSeen(e.Root, e.Peer); ok && time.Since(t) < seenRefresh {
					continue
				}
			}
			kept = append(kept, e)
		}
		batch = kept
		if len(batch) == 0 {
			return
		}
		if err := ex.st.Record(batch...); err != nil {
			logger().Warn("recording announcements", "err", err)
		}
		batch = batch[:0]
	}
	for {
		select {
		case <-ctx.Done():
			for { // record what is still queued, then stop
				select {
				case e := <-ex.seen:
					batch = append(batch, e)
					continue
				default:
				}
				flush()
				return
			}
		case e := <-ex.seen:
			batch = append(batch, e)
			// Take whatever else is already queued, then write once.
			for len(batch) < cap(batch) {
				select {
				case e := <-ex.seen:
					batch = append(batch, e)
					continue
				default:
				}
				break
			}
			flush()
		}
	}
}

// ErrNoExchange means the node runs without a repo, so it can neither share nor fetch.
var ErrNoExchange = errors.New("this node runs without a repo: it cannot share or fetch")

func (n *Node) exchange() (*exchange, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ex == nil {
		if !n.running {
			return nil, ErrNotStarted
		}
		return nil, ErrNoExchange
	}
	return n.ex, nil
}

// ShareOptions tune Share.
type ShareOptions struct {
	// Copy imports the file's bytes into the repo; by default the file is served in place.
	Copy bool
	// Hidden includes, in a folder, the entries whose names start with '.'.
	Hidden bool
}

// Share imports the file or folder at path (in place unless opts.Copy), provides its root on the
// DHT and announces it on gossip; a folder's announcement says it is one and how many files it
// holds.
func (n *Node) Share(ctx context.Context, path string, opts ShareOptions) (store.File, error) {
	ex, err := n.exchange()
	if err != nil {
		return store.File{}, err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return store.File{}, err
	}
	st, err := os.Stat(abs)
	if err != nil {
		return store.File{}, err
	}
	var f store.File
	switch {
	case st.IsDir():
		f, err = ex.st.AddTree(ctx, abs, store.AddOptions{Reference: !opts.Copy, Path: abs, Hidden: opts.Hidden})
	case st.Mode().IsRegular():
		f, err = ex.shareFile(ctx, abs, opts)
	default:
		return store.File{}, fmt.Errorf("%s is not a regular file or folder", path)
	}
	if err != nil {
		return store.File{}, err
	}
	// The file or folder at this path was shared before with other bytes: that version goes.
	if err := ex.replacePath(ctx, abs, f.Root); err != nil {
		return store.File{}, err
	}
	ex.provMu.Lock()
	err = ex.st.Record(store.Event{Type: store.Shared, Root: f.CID})
	if err == nil {
		ex.disc.Provide(f.Root)
	}
	ex.provMu.Unlock()
	if err != nil {
		return store.File{}, err
	}
	a := announcementOf(f)
	a.Time = time.Time{} // stamped now by Publish
	if err := ex.gsp.Publish(ctx, a); err != nil {
		return store.File{}, fmt.Errorf("announcing %s: %w", f.CID, err)
	}
	f, _ = ex.st.File(f.Root)
	return f, nil
}

// shareFile imports the regular file at abs.
func (ex *exchange) shareFile(ctx context.Context, abs string, opts ShareOptions) (store.File, error) {
	fh, err := os.Open(abs)
	if err != nil {
		return store.File{}, err
	}
	defer fh.Close()
	return ex.st.Add(ctx, fh, filepath.Base(abs), store.AddOptions{Reference: !opts.Copy, Path: abs})
}

// announcementOf is how the node announces a file or folder it shares. The name is one every peer
// accepts: gossip validators refuse separators and control characters, which a local name may
// hold.
func announcementOf(f store.File) gossip.Announcement {
	a := gossip.Announcement{Root: f.Root, Name: SafeName(f.Name, f.Root), Size: f.Size, Time: f.Added}
	if f.Dir {
		a.Fields = gossip.FolderFields(f.Files)
	}
	return a
}

// Remove forgets a file; a shared one is withdrawn from gossip and no longer provided. A pinned
// file is refused (store.ErrPinned): Unpin it first.
func (n *Node) Remove(ctx context.Context, root cid.Cid) error {
	st := n.opts.Store
	if st == nil {
		return ErrNoExchange
	}
	f, ok := st.File(root)
	if !ok {
		return fmt.Errorf("%w: %s", store.ErrUnknownFile, root)
	}
	if f.Pinned {
		return st.Remove(root) // refused, with the reason: nothing is withdrawn
	}
	if ex, err := n.exchange(); err == nil {
		ex.provMu.Lock()
		ex.disc.Unprovide(root)
		ex.provMu.Unlock()
		if err := n.withdraw(ctx, ex, f); err != nil {
			return err
		}
	}
	return st.Remove(root)
}

// Search lists what the network announced whose name contains term (or whose CID is term).
func (n *Node) Search(term string) []store.Offer {
	st := n.opts.Store
	if st == nil {
		return nil
	}
	return st.Search(term, time.Duration(n.cfg.CatalogTTL))
}

// FetchOptions tune Fetch.
type FetchOptions struct {
	// Output is the file to write. Empty: Dir joined with the announced name (sanitized), or
	// with the CID when no name is known.
	Output string
	Dir    string
	// Force overwrites an existing output file.
	Force bool
	// Progress is called about ten times a second and once at the end.
	Progress func(FetchProgress)
	// Timeout bounds the search for providers when none answers (0: the transfer default).
	Timeout time.Duration
	// Limit caps what this fetch receives, in bytes per second (0: only the node's
	// download_limit, if any).
	Limit int64
	// Path names an entry under the folder root (CID/sub/file): only the blocks on the path and
	// those under the entry are fetched, and the entry is written (under its own name).
	Path []string

	via cid.Cid // the root whose providers are asked: the folder a Path leads into
	// resolved, when set, is told what Path leads to once it is known (before the fetch of it).
	resolved func(cid.Cid)
}

// provided is the root whose providers a fetch of c asks.
func (o FetchOptions) provided(c cid.Cid) cid.Cid {
	if o.via.Defined() {
		return o.via
	}
	return c
}

// FetchProgress is how far a fetch is: the transfer's figures, and the file's.
type FetchProgress struct {
	transfer.Progress
	Size  uint64 // the file's size; 0 until the root block is here
	Have  uint64 // bytes of the file here and verified
	Found uint64 // of those, bytes that were here before this fetch began (a resumed fetch)
	// Files and FilesDone count a folder's files: how many are named so far (all of them once
	// every folder node is here) and how many are written whole. 0 for a single file.
	Files, FilesDone uint64
}

// FetchResult is what a completed fetch got.
type FetchResult struct {
	File  store.File
	Path  string
	Stats transfer.Stats
	// Resumed is how many of the file's bytes were already here when the fetch began.
	Resumed uint64
}

// ErrExists means the output file exists and Force was not given.
var ErrExists = errors.New("output file exists")

// ErrIsDir means the output path is a directory, which no fetch may replace.
var ErrIsDir = errors.New("output path is a directory")

// Fetch downloads root from every provider it finds (connected peers that speak the protocol,
// announcers in the catalog, the DHT), verifies every block, and writes the file. A fetch that
// was interrupted resumes from what is already here. The node provides the root afterwards.
func (n *Node) Fetch(ctx context.Context, root cid.Cid, opts FetchOptions) (FetchResult, error) {
	ex, err := n.exchange()
	if err != nil {
		return FetchResult{}, err
	}
	if err := unixfs.CheckCID(root); err != nil {
		return FetchResult{}, err
	}
	name := ""
	if len(opts.Path) > 0 {
		// Only the blocks on the path are fetched to find what it names; that is then fetched
		// from the providers of root.
		target, err := ex.resolve(ctx, root, opts.Path)
		if err != nil {
			return FetchResult{}, err
		}
		opts.via, root, name, opts.Path = root, target, opts.Path[len(opts.Path)-1], nil
		if opts.resolved != nil {
			opts.resolved(target)
		}
	}
	name, out, here, err := ex.target(root, name, opts)
	if err != nil || here.CID != "" {
		return FetchResult{File: here, Path: out}, err
	}
	if dir, err := ex.isFolder(ctx, root, opts.provided(root)); err != nil {
		return FetchResult{}, err
	} else if dir {
		return ex.fetchTree(ctx, root, name, out, opts)
	}
	d, err := ex.begin(root, name, out)
	if err != nil {
		return FetchResult{}, err
	}
	defer ex.end(root)
	stats, err := ex.run(ctx, d, opts)
	if err == nil {
		err = d.Complete()
	}
	if err != nil {
		n.metrics.Fetches.WithLabelValues("failed").Inc()
		return FetchResult{Stats: stats, Resumed: d.Found()}, errors.Join(err, d.Fail(err))
	}
	n.metrics.Fetches.WithLabelValues("completed").Inc()
	ex.provide(root)
	f, _ := ex.st.File(root)
	return FetchResult{File: f, Path: out, Stats: stats, Resumed: d.Found()}, nil
}

// target is where a fetch of root writes, and the name it records: opts.Output, or opts.Dir
// joined with name (the announced name when name is ""). here is the file when it is already
// complete at that path; an output that is a directory, or that exists without opts.Force, is an
// error.
func (ex *exchange) target(root cid.Cid, name string, opts FetchOptions) (_, out string, here store.File, err error) {
	if name == "" {
		name = ex.announcedName(root)
	}
	out = opts.Output
	if out == "" {
		dir := opts.Dir
		if dir == "" {
			dir = "."
		}
		out = filepath.Join(dir, SafeName(name, root))
	}
	out, err = filepath.Abs(out)
	if err != nil {
		return "", "", store.File{}, err
	}
	if f, ok := ex.st.File(root); ok && f.State == store.Complete && f.Path == out && ex.st.Intact(f) {
		return name, out, f, nil // already here
	} else if ok && store.TreeMovedInPlace(f, out) {
		return name, out, store.File{}, nil // a folder fetch that stopped after moving its tree in place
	}
	if st, err := os.Stat(out); err == nil && st.IsDir() {
		// Checked before the first byte: renaming the finished file onto a directory fails.
		return "", out, store.File{}, fmt.Errorf("%w: %s (use -o to choose a file name)", ErrIsDir, out)
	} else if err == nil && !opts.Force {
		return "", out, store.File{}, fmt.Errorf("%w: %s (use --force to overwrite, or -o to choose another name)", ErrExists, out)
	}
	if name == "" {
		name = filepath.Base(out)
	}
	return name, out, store.File{}, nil
}

// begin registers a download so that two fetches of one root never run at once.
func (ex *exchange) begin(root cid.Cid, name, out string) (*store.Download, error) {
	ex.mu.Lock()
	defer ex.mu.Unlock()
	if _, busy := ex.fetching[root.String()]; busy {
		return nil, fmt.Errorf("%s is already being fetched", root)
	}
	d, err := ex.st.StartDownload(root, name, out)
	if err != nil {
		return nil, err
	}
	ex.fetching[root.String()] = d
	ex.n.metrics.Fetches.WithLabelValues("started").Inc()
	return d, nil
}

func (ex *exchange) end(root cid.Cid) {
	ex.mu.Lock()
	delete(ex.fetching, root.String())
	ex.mu.Unlock()
}

// run drives one transfer into d.
func (ex *exchange) run(ctx context.Context, d *store.Download, opts FetchOptions) (transfer.Stats, error) {
	root := d.Root()
	via := opts.provided(root)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var limiters []*rate.Limiter
	if ex.limit != nil {
		limiters = append(limiters, ex.limit)
	}
	if opts.Limit > 0 {
		limiters = append(limiters, newLimiter(opts.Limit))
	}
	req := transfer.Request{
		Root:      root,
		Providers: ex.likelyProviders(via),
		Find:      func(ctx context.Context) <-chan peer.AddrInfo { return ex.findProviders(ctx, via) },
		Local:     d,
		Expand: func(c cid.Cid, block []byte) ([]cid.Cid, error) {
			kids, err := d.Expand(c, block)
			return kids, dagError(err)
		},
		Deliver: func(c cid.Cid, block []byte) error {
			ex.n.metrics.BlocksReceived.Inc()
			// A limit holds back delivery, one block at a time: the scheduler's windows then
			// fill, and it asks for no more than is taken.
			for _, l := range limiters {
				if err := l.WaitN(ctx, len(block)); err != nil {
					return err
				}
			}
			return dagError(d.Deliver(c, block))
		},
		MaxDepth: unixfs.MaxDepth,
	}
	if opts.Progress != nil {
		req.Progress = func(p transfer.Progress) {
			opts.Progress(FetchProgress{Progress: p, Size: d.Size(), Have: d.Have(), Found: d.Found()})
		}
	}
	return ex.xfer.Fetch(ctx, req)
}

// dagError tells the transfer layer that a block contradicts its parent, so that it bans the
// parent's sender; the message stays the store's.
func dagError(err error) error {
	if errors.Is(err, store.ErrInconsistentDAG) {
		return invalidDAG{err}
	}
	return err
}

type invalidDAG struct{ err error }

func (e invalidDAG) Error() string   { return e.err.Error() }
func (e invalidDAG) Unwrap() []error { return []error{transfer.ErrInvalidDAG, e.err} }

// likelyProviders are the peers to ask first: those that announced root, and every connected
// peer that speaks the transfer protocol, or, with Bitswap on, Bitswap (a cheap question to ask
// on a small network, as Bitswap asks its connected peers; the scheduler drops those that
// answer DontHave).
func (ex *exchange) likelyProviders(root cid.Cid) []peer.ID {
	seen := map[peer.ID]bool{}
	var out []peer.ID
	for _, o := range ex.st.Search(root.String(), time.Duration(ex.n.cfg.CatalogTTL)) {
		for _, p := range o.Providers {
			if id, err := peer.Decode(p); err == nil && id != ex.h.ID() && !seen[id] {
				seen[id] = true
				out = append(out, id)
			}
		}
	}
	var bitswapOnly []peer.ID
	for _, p := range ex.h.Network().Peers() {
		if seen[p] {
			continue
		}
		if ok, _ := ex.h.Peerstore().SupportsProtocols(p, transfer.ID); len(ok) > 0 {
			seen[p] = true
			out = append(out, p)
		} else if ex.bsc != nil && len(bitswapOnly) < maxBitswapAsked {
			if ok, _ := ex.h.Peerstore().SupportsProtocols(p, BitswapProtocols...); len(ok) > 0 {
				bitswapOnly = append(bitswapOnly, p)
			}
		}
	}
	// Peers of ours first: the fetch takes only so many, and ours are the fast path.
	return append(out, bitswapOnly...)
}

// maxBitswapAsked bounds the connected peers that speak only Bitswap that a fetch asks on the
// chance that they hold the root: a node on the public network is connected to hundreds, and
// the providers the DHT names must still find room in the fetch.
const maxBitswapAsked = 8

// findProviders asks the DHT, skipping ourselves.
func (ex *exchange) findProviders(ctx context.Context, root cid.Cid) <-chan peer.AddrInfo {
	out := make(chan peer.AddrInfo)
	go func() {
		defer close(out)
		for ai := range ex.disc.FindProviders(ctx, root) {
			if ai.ID == ex.h.ID() {
				continue
			}
			select {
			case out <- ai:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// announcedName is the name the catalog gives root, or "".
func (ex *exchange) announcedName(root cid.Cid) string {
	for _, o := range ex.st.Search(root.String(), time.Duration(ex.n.cfg.CatalogTTL)) {
		if o.CID == root.String() {
			return o.Name
		}
	}
	return ""
}

// SafeName turns an announced name into a file name that cannot leave the target directory: no
// path separators, no "." or "..", no control characters nor invisible or direction-changing
// ones (names.Deceptive), at most 255 bytes. An empty result
// becomes the CID.
func SafeName(name string, root cid.Cid) string {
	var b strings.Builder
	for _, r := range name {
		switch {
		case r == '/' || r == '\\':
			b.WriteRune('_')
		case r == utf8.RuneError, names.Unsafe(r):
		default:
			b.WriteRune(r)
		}
	}
	s := strings.TrimSpace(b.String())
	for len(s) > 255 {
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
	}
	if s == "" || s == "." || s == ".." || strings.Trim(s, ".") == "" {
		return root.String()
	}
	return s
}
