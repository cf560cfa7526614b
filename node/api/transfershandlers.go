package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"peer/store/unixfs"
)

// The endpoints of the daemon's transfers, and of fetches.

// waitTick is the least time between two looks at a transfer's figures: they change many times
// a second.
const waitTick = 250 * time.Millisecond

func (h *handlers) transferRoutes(s *Server) {
	s.HandleFunc("GET "+PathTransfers, h.handleTransfers)
	s.HandleFunc("POST "+PathTransfers, h.handleQueue)
	s.HandleFunc("POST "+PathTransfers+"/{id}/{action}", h.handleTransferAction)
}

// fetchRequest reads and checks a fetch request's paths and limit.
func fetchRequest(w http.ResponseWriter, r *http.Request) (req FetchRequest, ok bool) {
	if !ReadJSON(w, r, &req) {
		return req, false
	}
	for _, p := range []string{req.Output, req.Dir} {
		if p != "" && !filepath.IsAbs(p) {
			WriteError(w, http.StatusBadRequest, fmt.Errorf("path %q must be absolute", p))
			return req, false
		}
	}
	if req.Limit < 0 {
		WriteError(w, http.StatusBadRequest, errors.New("limit must not be negative (0 means no cap of its own)"))
		return req, false
	}
	return req, true
}

// queue reads a fetch request and queues it (or finds the transfer of the same file, attached
// true); on failure it has answered with the error.
func (h *handlers) queue(w http.ResponseWriter, r *http.Request) (t Transfer, attached, ok bool) {
	req, ok := fetchRequest(w, r)
	if !ok {
		return Transfer{}, false, false
	}
	root, names, err := unixfs.ParsePath(req.CID) // a CID, or a path into a folder
	if err != nil {
		WriteError(w, http.StatusBadRequest, err)
		return Transfer{}, false, false
	}
	if t, attached, err = h.b.Queue(root, names, req); err != nil {
		WriteError(w, StatusOf(err), err)
		return Transfer{}, false, false
	}
	return t, attached, true
}

// handleQueue queues a fetch (or finds the one of the same file) and answers with the transfer.
func (h *handlers) handleQueue(w http.ResponseWriter, r *http.Request) {
	t, _, ok := h.queue(w, r)
	if !ok {
		return
	}
	WriteJSON(w, http.StatusOK, t)
}

func (h *handlers) handleTransferAction(w http.ResponseWriter, r *http.Request) {
	id, action := r.PathValue("id"), r.PathValue("action")
	var req CancelRequest
	if action == "cancel" && r.ContentLength != 0 && !ReadJSON(w, r, &req) {
		return
	}
	switch action {
	case "pause", "resume", "cancel", "top":
	default:
		WriteError(w, http.StatusNotFound, fmt.Errorf("no action %q: want pause, resume, cancel or top", action))
		return
	}
	t, err := h.b.TransferAction(r.Context(), id, action, req.Keep)
	if err != nil {
		WriteError(w, StatusOf(err), err)
		return
	}
	WriteJSON(w, http.StatusOK, t)
}

// handleTransfers lists the transfers, or with ?follow=1 streams them as server-sent events:
// every one first, then each one that changed (its state at once, its figures at most four
// times a second).
func (h *handlers) handleTransfers(w http.ResponseWriter, r *http.Request) {
	list, err := h.b.Transfers()
	if err != nil {
		WriteError(w, StatusOf(err), err)
		return
	}
	if follow := r.URL.Query().Get("follow"); follow != "1" && !strings.EqualFold(follow, "true") {
		WriteJSON(w, http.StatusOK, list)
		return
	}
	fl, ok := w.(http.Flusher)
	if !ok {
		WriteError(w, http.StatusInternalServerError, errors.New("streaming is not supported here"))
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
		changed := h.b.TransfersChanged()
		list, err := h.b.Transfers()
		if err != nil {
			return
		}
		for _, t := range list {
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
func (h *handlers) handleFetch(w http.ResponseWriter, r *http.Request) {
	t, attached, ok := h.queue(w, r)
	if !ok {
		return
	}
	fl, _ := w.(http.Flusher)
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	var mu sync.Mutex
	enc := json.NewEncoder(w)
	send := func(ev FetchEvent) {
		mu.Lock()
		defer mu.Unlock()
		ev.Transfer = t.ID
		_ = enc.Encode(ev)
		if fl != nil {
			fl.Flush()
		}
	}
	send(FetchEvent{Type: "queued", State: t.State})
	h.b.WatchFetch(r.Context(), t.ID, attached, send)
}
