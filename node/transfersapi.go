package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"peer/node/api"
	"peer/store"
	"peer/store/unixfs"

	"github.com/ipfs/go-cid"
)

// The endpoints of the daemon's transfers.

func (n *Node) transferRoutes() {
	s := n.api
	s.HandleFunc("GET "+api.PathTransfers, n.handleTransfers)
	s.HandleFunc("POST "+api.PathTransfers, n.handleQueue)
	s.HandleFunc("POST "+api.PathTransfers+"/{id}/{action}", n.handleTransferAction)
}

// fetchRequest checks a fetch request's CID and paths and turns it into fetch options.
func fetchRequest(w http.ResponseWriter, r *http.Request) (req api.FetchRequest, opts FetchOptions, ok bool) {
	if !api.ReadJSON(w, r, &req) {
		return req, opts, false
	}
	for _, p := range []string{req.Output, req.Dir} {
		if p != "" && !filepath.IsAbs(p) {
			api.WriteError(w, http.StatusBadRequest, fmt.Errorf("path %q must be absolute", p))
			return req, opts, false
		}
	}
	if req.Limit < 0 {
		api.WriteError(w, http.StatusBadRequest, errors.New("limit must not be negative (0 means no cap of its own)"))
		return req, opts, false
	}
	return req, FetchOptions{Output: req.Output, Dir: req.Dir, Force: req.Force, Limit: req.Limit}, true
}

// handleQueue queues a fetch (or finds the one of the same file) and answers with the transfer.
func (n *Node) handleQueue(w http.ResponseWriter, r *http.Request) {
	req, opts, ok := fetchRequest(w, r)
	if !ok {
		return
	}
	root, ok := parseFetchPath(w, req.CID, &opts)
	if !ok {
		return
	}
	tm, err := n.transfers()
	if err != nil {
		api.WriteError(w, statusOf(err), err)
		return
	}
	t, _, err := tm.queue(root, opts)
	if err != nil {
		api.WriteError(w, statusOf(err), err)
		return
	}
	tm.mu.Lock()
	v := tm.viewLocked(t)
	tm.mu.Unlock()
	api.WriteJSON(w, http.StatusOK, v)
}

func (n *Node) handleTransferAction(w http.ResponseWriter, r *http.Request) {
	id, action := r.PathValue("id"), r.PathValue("action")
	var req api.CancelRequest
	if action == "cancel" && r.ContentLength != 0 && !api.ReadJSON(w, r, &req) {
		return
	}
	tm, err := n.transfers()
	if err != nil {
		api.WriteError(w, statusOf(err), err)
		return
	}
	switch action {
	case "pause":
		err = tm.pause(r.Context(), id)
	case "resume":
		err = tm.resume(id)
	case "cancel":
		err = tm.cancelTransfer(r.Context(), id, req.Keep)
	case "top":
		err = tm.top(id)
	default:
		api.WriteError(w, http.StatusNotFound, fmt.Errorf("no action %q: want pause, resume, cancel or top", action))
		return
	}
	if err != nil {
		api.WriteError(w, statusOf(err), err)
		return
	}
	t, err := tm.get(id)
	if err != nil {
		api.WriteError(w, statusOf(err), err)
		return
	}
	tm.mu.Lock()
	v := tm.viewLocked(t)
	tm.mu.Unlock()
	api.WriteJSON(w, http.StatusOK, v)
}

// handleTransfers lists the transfers, or with ?follow=1 streams them as server-sent events:
// every one first, then each one that changed (its state at once, its figures at most four
// times a second).
func (n *Node) handleTransfers(w http.ResponseWriter, r *http.Request) {
	tm, err := n.transfers()
	if err != nil {
		api.WriteError(w, statusOf(err), err)
		return
	}
	if follow := r.URL.Query().Get("follow"); follow != "1" && !strings.EqualFold(follow, "true") {
		api.WriteJSON(w, http.StatusOK, tm.list())
		return
	}
	fl, ok := w.(http.Flusher)
	if !ok {
		api.WriteError(w, http.StatusInternalServerError, errors.New("streaming is not supported here"))
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	fl.Flush()
	sent := map[string]string{} // ID → the JSON last sent
	keepalive := time.NewTicker(15 * time.Second)
	defer keepalive.Stop()
	for {
		changed := tm.changes()
		for _, t := range tm.list() {
			b, err := json.Marshal(t)
			if err != nil || sent[t.ID] == string(b) {
				continue
			}
			sent[t.ID] = string(b)
			if _, err := fmt.Fprintf(w, "event: transfer\ndata: %s\n\n", b); err != nil {
				return
			}
		}
		fl.Flush()
		select {
		case <-r.Context().Done():
			return
		case <-keepalive.C:
			if _, err := io.WriteString(w, ": keepalive\n\n"); err != nil {
				return
			}
		case <-changed:
		case <-time.After(time.Second): // uploads change without telling
		}
		// Figures change many times a second: look at most four times a second.
		select {
		case <-r.Context().Done():
			return
		case <-time.After(waitTick):
		}
	}
}

// handleFetch queues a fetch, or attaches to the transfer of the same file, and streams its
// progress as NDJSON: a "queued" line naming the transfer, progress lines at most four a second,
// then one "done" or "error" line when it ends (paused or canceled is an error for this request).
// A client that goes away cancels the transfer it queued, keeping what was received (a later
// request resumes it); one it attached to goes on.
func (n *Node) handleFetch(w http.ResponseWriter, r *http.Request) {
	req, opts, ok := fetchRequest(w, r)
	if !ok {
		return
	}
	root, ok := parseFetchPath(w, req.CID, &opts)
	if !ok {
		return
	}
	tm, err := n.transfers()
	if err != nil {
		api.WriteError(w, statusOf(err), err)
		return
	}
	t, attached, err := tm.queue(root, opts)
	if err != nil {
		api.WriteError(w, statusOf(err), err)
		return
	}
	fl, _ := w.(http.Flusher)
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	var mu sync.Mutex
	enc := json.NewEncoder(w)
	send := func(ev api.FetchEvent) {
		mu.Lock()
		defer mu.Unlock()
		ev.Transfer = t.ID
		_ = enc.Encode(ev)
		if fl != nil {
			fl.Flush()
		}
	}
	send(api.FetchEvent{Type: "queued", State: string(t.State)})
	var last FetchProgress
	sentAny := false
	for {
		changed := tm.changes()
		cur, err := tm.get(t.ID)
		if err != nil { // dropped from the list: long finished
			send(api.FetchEvent{Type: "error", Error: err.Error()})
			return
		}
		tm.mu.Lock()
		lt := tm.running[t.ID]
		if lt == nil && !cur.State.Active() {
			lt = tm.ended[t.ID]
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
		case <-r.Context().Done():
			if !attached && !n.stopping() {
				if err := tm.cancelTransfer(context.Background(), t.ID, true); err != nil && !errors.Is(err, ErrTransferState) {
					logger().Warn("canceling a transfer its client left", "id", t.ID, "err", err)
				}
			}
			return
		case <-changed:
		case <-time.After(time.Second):
		}
		select {
		case <-r.Context().Done():
		case <-time.After(waitTick):
		}
	}
}

// fetchEnd is the last line of a fetch request: how its transfer ended.
func fetchEnd(t store.Transfer, lt *liveTransfer) api.FetchEvent {
	switch {
	case t.State == store.TransferDone && lt != nil && lt.err == nil:
		res := lt.result
		return api.FetchEvent{Type: "done", File: &res.File, Path: res.Path,
			Received: res.Stats.Received, Duplicates: res.Stats.DuplicateBytes, Peers: res.Stats.Sources(),
			BadBlocks: res.Stats.BadBlocks, Duration: res.Stats.Duration, Resumed: int64(res.Resumed)}
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

// parseFetchPath reads what a fetch request names: a root CID, or an IPFS path into a folder
// (CID/sub/file, /ipfs/CID/sub), whose names it sets as opts.Path.
func parseFetchPath(w http.ResponseWriter, s string, opts *FetchOptions) (cid.Cid, bool) {
	root, names, err := unixfs.ParsePath(s)
	if err != nil {
		api.WriteError(w, http.StatusBadRequest, err)
		return cid.Undef, false
	}
	opts.Path = names
	return root, true
}
