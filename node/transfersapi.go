package node

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/ipfs/go-cid"

	"peer/node/api"
	"peer/store"
)

// The API's calls into the daemon's transfers (api.Transfers).

// fetchOptions are the options of a fetch request, which the API's handler checked.
func fetchOptions(req api.FetchRequest) FetchOptions {
	return FetchOptions{Output: req.Output, Dir: req.Dir, Force: req.Force, Limit: req.Limit}
}

// Transfers lists the downloads and uploads.
func (b apiBackend) Transfers() ([]api.Transfer, error) {
	tm, err := b.n.transfers()
	if err != nil {
		return nil, apiErr(err)
	}
	return tm.list(), nil
}

// TransfersChanged is closed when a transfer's state next changes; nil (never ready) when the
// node has no transfers.
func (b apiBackend) TransfersChanged() <-chan struct{} {
	tm, err := b.n.transfers()
	if err != nil {
		return nil
	}
	return tm.changes()
}

// Queue queues a fetch of root or of the entry names leads to under it (or finds the one of the
// same).
func (b apiBackend) Queue(root cid.Cid, names []string, req api.FetchRequest) (api.Transfer, bool, error) {
	tm, err := b.n.transfers()
	if err != nil {
		return api.Transfer{}, false, apiErr(err)
	}
	opts := fetchOptions(req)
	opts.Path = names
	t, attached, err := tm.queue(root, opts)
	if err != nil {
		return api.Transfer{}, false, apiErr(err)
	}
	tm.mu.Lock()
	v := tm.viewLocked(t)
	tm.mu.Unlock()
	return v, attached, nil
}

// TransferAction pauses, resumes, cancels or moves to the front one transfer.
func (b apiBackend) TransferAction(ctx context.Context, id, action string, keep bool) (api.Transfer, error) {
	tm, err := b.n.transfers()
	if err != nil {
		return api.Transfer{}, apiErr(err)
	}
	switch action {
	case "pause":
		err = tm.pause(ctx, id)
	case "resume":
		err = tm.resume(id)
	case "cancel":
		err = tm.cancelTransfer(ctx, id, keep)
	case "top":
		err = tm.top(id)
	default:
		err = api.WithStatus(http.StatusNotFound, fmt.Errorf("no action %q: want pause, resume, cancel or top", action))
	}
	if err != nil {
		return api.Transfer{}, apiErr(err)
	}
	t, err := tm.get(id)
	if err != nil {
		return api.Transfer{}, apiErr(err)
	}
	tm.mu.Lock()
	v := tm.viewLocked(t)
	tm.mu.Unlock()
	return v, nil
}

// WatchFetch sends the progress of transfer id, at most four times a second, then how it ended.
// When ctx ends first, a transfer the watcher queued (not attached) is canceled, keeping what was
// received, unless the node is stopping.
func (b apiBackend) WatchFetch(ctx context.Context, id string, attached bool, send func(api.FetchEvent)) {
	tm, err := b.n.transfers()
	if err != nil {
		send(api.FetchEvent{Type: "error", Error: err.Error()})
		return
	}
	var last FetchProgress
	sentAny := false
	for {
		changed := tm.changes()
		cur, err := tm.get(id)
		if err != nil { // dropped from the list: long finished
			send(api.FetchEvent{Type: "error", Error: err.Error()})
			return
		}
		tm.mu.Lock()
		lt := tm.running[id]
		if lt == nil && !cur.State.Active() {
			lt = tm.ended[id]
		}
		var p FetchProgress
		var final *liveTransfer
		reported := false
		if lt != nil {
			p, reported = lt.progress, lt.reported
			if lt.ended && !cur.State.Active() {
				final = lt
			}
		}
		tm.mu.Unlock()
		if reported && (p != last || !sentAny) {
			fp := progressOf(p)
			send(api.FetchEvent{Type: "progress", Progress: &fp})
			last, sentAny = p, true
		}
		if !cur.State.Active() && (lt == nil || final != nil) {
			send(fetchEnd(cur, final))
			return
		}
		select {
		case <-ctx.Done():
			if !attached && !b.n.stopping() {
				if err := tm.cancelTransfer(context.Background(), id, true); err != nil && !errors.Is(err, ErrTransferState) {
					logger().Warn("canceling a transfer its client left", "id", id, "err", err)
				}
			}
			return
		case <-changed:
		case <-time.After(time.Second):
		}
		select {
		case <-ctx.Done():
		case <-time.After(waitTick):
		}
	}
}

// fetchDone is the "done" line of a fetch.
func fetchDone(res FetchResult) api.FetchEvent {
	f := APIFile(res.File)
	return api.FetchEvent{Type: "done", File: &f, Path: res.Path,
		Received: res.Stats.Received, Duplicates: res.Stats.DuplicateBytes, Peers: res.Stats.Sources(),
		BadBlocks: res.Stats.BadBlocks, Duration: res.Stats.Duration, Resumed: int64(res.Resumed)}
}

// fetchEnd is the last line of a fetch request: how its transfer ended.
func fetchEnd(t store.Transfer, lt *liveTransfer) api.FetchEvent {
	switch {
	case t.State == store.TransferDone && lt != nil && lt.err == nil:
		return fetchDone(lt.result)
	case t.State == store.TransferPaused:
		return api.FetchEvent{Type: "error", Error: fmt.Sprintf("transfer %s was paused (`peer transfers resume %s` goes on)", t.ID, t.ID)}
	case t.State == store.TransferCanceled:
		return api.FetchEvent{Type: "error", Error: fmt.Sprintf("transfer %s was canceled", t.ID)}
	case t.State == store.TransferFailed && lt != nil && lt.err != nil:
		return api.FetchEvent{Type: "error", Error: lt.err.Error()}
	case t.State == store.TransferFailed:
		return api.FetchEvent{Type: "error", Error: t.Error}
	}
	return api.FetchEvent{Type: "error", Error: fmt.Sprintf("transfer %s is %s", t.ID, t.State)}
}
