package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ipfs/go-cid"

	"peer/node/api"
	"peer/store"
	"peer/store/unixfs"
)

// Every call into the store from the API is in this file.

func (n *Node) storeRoutes() {
	s := n.api
	s.HandleUpload("POST "+api.PathAdd, http.HandlerFunc(n.handleAdd))
	s.HandleFunc("POST "+api.PathAddPath, n.handleAddPath)
	s.HandleFunc("GET "+api.PathLs, n.handleLs)
	s.HandleFunc("GET "+api.PathCat+"{cid}", n.handleCat)
	s.HandleFunc("GET "+api.PathEvents, n.handleEvents)
}

func (n *Node) needStore(w http.ResponseWriter) *store.Store {
	st := n.opts.Store
	if st == nil {
		api.WriteError(w, http.StatusServiceUnavailable, errors.New("this node runs without a repo"))
	}
	return st
}

// handleAdd imports the request body (raw, named by ?name=) or the first file of a multipart
// form. The body is streamed into the store, never held in memory. ?chunk_size=N sets the chunk
// size.
func (n *Node) handleAdd(w http.ResponseWriter, r *http.Request) {
	st := n.needStore(w)
	if st == nil {
		return
	}
	var opts store.AddOptions
	if v := r.URL.Query().Get("chunk_size"); v != "" {
		cs, err := strconv.Atoi(v)
		if err != nil || cs <= 0 {
			api.WriteError(w, http.StatusBadRequest, fmt.Errorf("chunk_size %q: want a positive number of bytes", v))
			return
		}
		opts.ChunkSize = cs
	}
	body, name := io.Reader(r.Body), r.URL.Query().Get("name")
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "multipart/form-data" {
		mr, err := r.MultipartReader()
		if err != nil {
			api.WriteError(w, http.StatusBadRequest, fmt.Errorf("reading form: %w", err))
			return
		}
		for {
			part, err := mr.NextPart()
			if err != nil {
				api.WriteError(w, http.StatusBadRequest, errors.New("the form has no file part"))
				return
			}
			if part.FileName() != "" {
				body = part
				if name == "" {
					name = filepath.Base(part.FileName())
				}
				break
			}
			part.Close()
		}
	}
	f, err := st.Add(r.Context(), body, name, opts)
	if err != nil {
		api.WriteError(w, http.StatusInternalServerError, fmt.Errorf("adding: %w", err))
		return
	}
	api.WriteJSON(w, http.StatusOK, f)
}

// handleAddPath imports a folder or file of this machine, named by its absolute path, with
// everything in it.
func (n *Node) handleAddPath(w http.ResponseWriter, r *http.Request) {
	st := n.needStore(w)
	if st == nil {
		return
	}
	var req api.AddPathRequest
	if !api.ReadJSON(w, r, &req) {
		return
	}
	if !filepath.IsAbs(req.Path) {
		api.WriteError(w, http.StatusBadRequest, fmt.Errorf("path %q must be absolute", req.Path))
		return
	}
	if req.ChunkSize < 0 {
		api.WriteError(w, http.StatusBadRequest, fmt.Errorf("chunk_size %d: want a positive number of bytes", req.ChunkSize))
		return
	}
	f, err := st.AddTree(r.Context(), req.Path, store.AddOptions{ChunkSize: req.ChunkSize, Hidden: req.Hidden})
	if err != nil {
		api.WriteError(w, http.StatusInternalServerError, fmt.Errorf("adding %s: %w", req.Path, err))
		return
	}
	api.WriteJSON(w, http.StatusOK, f)
}

// pathStatus is the HTTP status for an error walking an IPFS path.
func pathStatus(err error) int {
	switch {
	case errors.Is(err, unixfs.ErrNoEntry):
		return http.StatusNotFound
	case errors.Is(err, unixfs.ErrNotDir), errors.Is(err, unixfs.ErrNotFile):
		return http.StatusBadRequest
	}
	return statusOf(err)
}

// handleLsDir lists the folder ?path= names (an IPFS path).
func (n *Node) handleLsDir(w http.ResponseWriter, r *http.Request, st *store.Store, path string) {
	root, names, err := unixfs.ParsePath(path)
	if err != nil {
		api.WriteError(w, http.StatusBadRequest, err)
		return
	}
	c, err := st.Resolve(r.Context(), root, names)
	if err != nil {
		api.WriteError(w, pathStatus(err), fmt.Errorf("resolving %s: %w", path, err))
		return
	}
	es, err := st.ListDir(r.Context(), c)
	if err != nil {
		api.WriteError(w, pathStatus(err), fmt.Errorf("listing %s: %w", path, err))
		return
	}
	if es == nil {
		es = []store.Entry{}
	}
	api.WriteJSON(w, http.StatusOK, es)
}

func (n *Node) handleLs(w http.ResponseWriter, r *http.Request) {
	st := n.needStore(w)
	if st == nil {
		return
	}
	if p := r.URL.Query().Get("path"); p != "" {
		n.handleLsDir(w, r, st, p)
		return
	}
	if at := r.URL.Query().Get("at"); at != "" {
		n.handleLsAt(w, r, st, at)
		return
	}
	fs := st.Files()
	if fs == nil {
		fs = []store.File{}
	}
	api.WriteJSON(w, http.StatusOK, fs)
}

func (n *Node) handleCat(w http.ResponseWriter, r *http.Request) {
	st := n.needStore(w)
	if st == nil {
		return
	}
	root, err := cid.Decode(r.PathValue("cid"))
	if err != nil {
		api.WriteError(w, http.StatusBadRequest, fmt.Errorf("bad CID %q: %w", r.PathValue("cid"), err))
		return
	}
	var rc io.ReadCloser
	var size uint64
	if p := r.URL.Query().Get("path"); p != "" {
		rc, size, err = n.catPath(r, st, root, p)
	} else {
		rc, size, err = n.Cat(r.Context(), root)
	}
	if err != nil {
		api.WriteError(w, pathStatus(err), fmt.Errorf("reading %s: %w", root, err))
		return
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if size > 0 {
		w.Header().Set("Content-Length", strconv.FormatUint(size, 10))
	}
	if _, err := io.Copy(w, rc); err != nil {
		// The status line is sent: the client sees a short body (Content-Length) and fails.
		logger().Warn("cat stopped", "cid", root.String(), "err", err)
	}
}

// catPath opens the file at path (names separated by '/') under the folder root, from the blocks
// held here.
func (n *Node) catPath(r *http.Request, st *store.Store, root cid.Cid, path string) (io.ReadCloser, uint64, error) {
	_, names, err := unixfs.ParsePath(root.String() + "/" + path)
	if err != nil {
		return nil, 0, err
	}
	c, err := st.Resolve(r.Context(), root, names)
	if err != nil {
		return nil, 0, err
	}
	block, err := st.GetBlock(r.Context(), c)
	if err != nil {
		return nil, 0, err
	}
	kind, size, err := unixfs.Inspect(c, block)
	if err != nil {
		return nil, 0, err
	}
	if kind != unixfs.File {
		return nil, 0, fmt.Errorf("%s is a %s: %w", path, kind, unixfs.ErrNotFile)
	}
	rc, err := st.Cat(r.Context(), c)
	return rc, size, err
}

// handleEvents answers the events with Seq >= ?from= as a JSON list, or with ?follow=1 as
// server-sent events: the history, then each new event as it is recorded, until the client
// goes away or the daemon stops.
func (n *Node) handleEvents(w http.ResponseWriter, r *http.Request) {
	st := n.needStore(w)
	if st == nil {
		return
	}
	q := r.URL.Query()
	var from uint64
	if v := q.Get("from"); v != "" {
		var err error
		if from, err = strconv.ParseUint(v, 10, 64); err != nil {
			api.WriteError(w, http.StatusBadRequest, fmt.Errorf("from %q: want an event number", v))
			return
		}
	}
	if follow := q.Get("follow"); follow == "1" || strings.EqualFold(follow, "true") {
		n.followEvents(w, r, st, from)
		return
	}
	// Stream the list: constant memory however long the log.
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, "[")
	first := true
	err := st.Events(from, func(e store.Event) error {
		if !first {
			io.WriteString(w, ",")
		}
		first = false
		b, err := json.Marshal(e)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	})
	if err != nil {
		// Leave the array unterminated so the client sees a broken answer, not a short list.
		logger().Warn("listing events stopped", "err", err)
		return
	}
	io.WriteString(w, "]\n")
}

func (n *Node) followEvents(w http.ResponseWriter, r *http.Request, st *store.Store, from uint64) {
	fl, ok := w.(http.Flusher)
	if !ok {
		api.WriteError(w, http.StatusInternalServerError, errors.New("streaming is not supported here"))
		return
	}
	// Subscribe before replaying, so no event falls between the two.
	ch, stop := st.Subscribe()
	defer stop()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	send := func(e store.Event) error {
		b, err := json.Marshal(e)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "id: %d\ndata: %s\n\n", e.Seq, b); err != nil {
			return err
		}
		fl.Flush()
		return nil
	}
	next := from
	if err := st.Events(from, func(e store.Event) error {
		next = e.Seq + 1
		return send(e)
	}); err != nil {
		return
	}
	fl.Flush()
	keepalive := time.NewTicker(15 * time.Second)
	defer keepalive.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-keepalive.C:
			if _, err := io.WriteString(w, ": keepalive\n\n"); err != nil {
				return
			}
			fl.Flush()
		case e, ok := <-ch:
			if !ok {
				return
			}
			if e.Seq < next {
				continue
			}
			next = e.Seq + 1
			if send(e) != nil {
				return
			}
		}
	}
}
