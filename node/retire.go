package node

import (
	"context"
	"sync"
	"time"

	"github.com/ipfs/go-cid"

	"peer/gossip"
	"peer/store"
)

// A file stops being offered when the node no longer has its bytes as they were hashed: a
// referenced file that was edited, truncated or deleted. The store finds that out (a stat before
// it serves the file, CheckFiles every Options.FileCheck, the catalog exchange, a restart) and
// records FileChanged; it serves none of the file's blocks from then on. The node follows the
// store's events and does the network's part: it stops providing the root on the DHT, records
// Unshared, and publishes a withdrawal, so that other nodes' catalogs drop it instead of sending
// fetchers to a provider that no longer has it. Sharing the same path again replaces the old
// entry (Share).

// defaultFileCheck is how often referenced files are checked for changes by default.
const defaultFileCheck = time.Minute

// watchStore reacts to the store's events until ctx ends, and checks referenced files every
// interval. Subscription channels drop events for a subscriber that falls far behind, so each
// check also settles every changed file, whatever events were missed.
func (ex *exchange) watchStore(ctx context.Context, events <-chan store.Event, interval time.Duration) {
	defer ex.wg.Done()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-events:
			if !ok {
				return
			}
			if e.Type != store.FileChanged && e.Type != store.FileRemoved {
				continue
			}
			if root, err := e.RootCID(); err == nil {
				ex.retire(root)
			}
		case <-tick.C:
			ex.st.CheckFiles()
			for _, f := range ex.st.Files() {
				if f.State == store.Changed {
					ex.retire(f.Root)
				}
			}
		}
	}
}

// retire stops providing root unless the node holds it complete again (fetched or added again
// meanwhile), and queues a withdrawal if it was shared. It never blocks on the network:
// withdrawals are published by publishWithdrawals.
func (ex *exchange) retire(root cid.Cid) {
	ex.provMu.Lock()
	f, held := ex.st.File(root)
	if held && f.State == store.Complete {
		ex.provMu.Unlock()
		return
	}
	ex.disc.Unprovide(root)
	ex.provMu.Unlock()
	if held && f.Shared && ex.withdrawals.push(gossip.Announcement{Root: root, Name: SafeName(f.Name, root), Size: f.Size, Withdraw: true}) {
		logger().Info("shared file changed or vanished; withdrawing it", "cid", root.String(), "path", f.Path)
	}
}

// provide provides root on the DHT, ordered with retire so that a file fetched or shared again
// while it is being retired ends up provided.
func (ex *exchange) provide(root cid.Cid) {
	ex.provMu.Lock()
	defer ex.provMu.Unlock()
	ex.disc.Provide(root)
}

// publishWithdrawals publishes queued withdrawals one by one (Publish paces itself and may wait
// for a mesh), skipping a file that is shared again by then. Each one published is recorded as
// Unshared: that is how the log says the network was told.
func (ex *exchange) publishWithdrawals(ctx context.Context) {
	defer ex.wg.Done()
	for {
		a, ok := ex.withdrawals.pop(ctx)
		if !ok {
			return
		}
		if f, held := ex.st.File(a.Root); held && f.State == store.Complete && f.Shared {
			continue
		}
		if err := ex.gsp.Publish(ctx, a); err != nil {
			if ctx.Err() == nil {
				logger().Warn("withdrawing announcement", "cid", a.Root.String(), "err", err)
			}
			continue
		}
		ex.provMu.Lock()
		if f, held := ex.st.File(a.Root); !held || f.State != store.Complete {
			if err := ex.st.Record(store.Event{Type: store.Unshared, Root: a.Root.String()}); err != nil {
				logger().Warn("recording a withdrawal", "cid", a.Root.String(), "err", err)
			}
		}
		ex.provMu.Unlock()
	}
}

// withdrawUntold queues, once at start, the withdrawals the network was never sent: files shared
// and then removed while no daemon ran (an offline `peer rm`), and shared files that changed but
// whose withdrawal was not published before the daemon stopped. The log says which: a Shared
// event with no Unshared after it.
func (ex *exchange) withdrawUntold(ctx context.Context) {
	defer ex.wg.Done()
	type seen struct {
		name   string
		size   uint64
		shared bool
	}
	roots := map[string]*seen{}
	err := ex.st.Events(0, func(e store.Event) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		switch e.Type {
		case store.FileAdded, store.FetchCompleted, store.Shared, store.Unshared:
		default:
			return nil
		}
		r := roots[e.Root]
		if r == nil {
			r = &seen{}
			roots[e.Root] = r
		}
		switch e.Type {
		case store.Shared, store.Unshared:
			r.shared = e.Type == store.Shared
		default:
			if e.Name != "" {
				r.name = e.Name
			}
			r.size = e.Size
		}
		return nil
	})
	if err != nil {
		if ctx.Err() == nil {
			logger().Warn("reading the log for untold withdrawals", "err", err)
		}
		return
	}
	for s, r := range roots {
		if !r.shared {
			continue
		}
		root, err := cid.Decode(s)
		if err != nil {
			continue
		}
		if f, held := ex.st.File(root); held && f.State == store.Complete {
			continue
		}
		ex.withdrawals.push(gossip.Announcement{Root: root, Name: SafeName(r.name, root), Size: r.size, Withdraw: true})
	}
}

// announcementQueue is an unbounded FIFO of announcements to publish, at most one per root.
type announcementQueue struct {
	mu     sync.Mutex
	q      []gossip.Announcement
	queued map[string]bool
	wake   chan struct{} // capacity 1
}

func newAnnouncementQueue() *announcementQueue {
	return &announcementQueue{queued: map[string]bool{}, wake: make(chan struct{}, 1)}
}

// push queues a unless one for its root is queued already, and reports whether it did.
func (q *announcementQueue) push(a gossip.Announcement) bool {
	k := a.Root.KeyString()
	q.mu.Lock()
	if q.queued[k] {
		q.mu.Unlock()
		return false
	}
	q.queued[k] = true
	q.q = append(q.q, a)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return true
}

// pop waits for the next announcement; false once ctx ends.
func (q *announcementQueue) pop(ctx context.Context) (gossip.Announcement, bool) {
	for {
		q.mu.Lock()
		if len(q.q) > 0 {
			a := q.q[0]
			q.q = q.q[1:]
			delete(q.queued, a.Root.KeyString())
			q.mu.Unlock()
			return a, true
		}
		q.mu.Unlock()
		select {
		case <-q.wake:
		case <-ctx.Done():
			return gossip.Announcement{}, false
		}
	}
}

// replacePath retires the entries of the index that reference path (or were copied from it) under
// another root than keep: the file at path was changed and shared again, so its old version is
// withdrawn (now, before the new one is announced) and forgotten, unless it is pinned.
func (ex *exchange) replacePath(ctx context.Context, path string, keep cid.Cid) error {
	for _, old := range ex.st.Files() {
		if old.Path != path && old.Source != path || old.Root.Equals(keep) || old.State == store.Partial {
			continue
		}
		ex.provMu.Lock()
		ex.disc.Unprovide(old.Root)
		ex.provMu.Unlock()
		if err := ex.n.withdraw(ctx, ex, old); err != nil {
			return err
		}
		if !old.Pinned {
			if err := ex.st.Remove(old.Root); err != nil {
				return err
			}
		}
		logger().Info("replaced the old version of a shared file", "path", path, "old", old.CID, "new", keep.String(), "kept", old.Pinned)
	}
	return nil
}

// withdraw tells the network that the node no longer shares f, if it did, and records Unshared
// once that is done. A withdrawal that could not be published is left for the next start
// (withdrawUntold) rather than failing the caller.
func (n *Node) withdraw(ctx context.Context, ex *exchange, f store.File) error {
	if !f.Shared {
		return nil
	}
	if err := ex.gsp.Publish(ctx, gossip.Announcement{Root: f.Root, Name: SafeName(f.Name, f.Root), Size: f.Size, Withdraw: true}); err != nil {
		logger().Warn("withdrawing announcement", "cid", f.CID, "err", err)
		return nil
	}
	return ex.st.Record(store.Event{Type: store.Unshared, Root: f.CID})
}
