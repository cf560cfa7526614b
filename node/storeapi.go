package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
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
	s.HandleFunc("POST "+api.PathPin, n.handlePin(true))
	s.HandleFunc("POST "+api.PathUnpin, n.handlePin(false))
	s.HandleFunc("GET "+api.PathExport+"{cid}", n.handleExport)
	s.HandleUpload("POST "+api.PathImport, http.HandlerFunc(n.handleImport))
}

// handleExport answers a CARv1 of the DAG under {cid}. A DAG the repo does not hold whole is a
// 404 before any byte; a block that fails to read midway aborts the response, so the client
// sees a broken stream, never a short CAR that ends cleanly.
func (n *Node) handleExport(w http.ResponseWriter, r *http.Request) {
	st := n.needStore(w)
	if st == nil {
		return
	}
	root, err := unixfs.DecodeCID(r.PathValue("cid"))
	if err != nil {
		api.WriteError(w, http.StatusBadRequest, err)
		return
	}
	lw := &lazyHeaders{w: w, set: func(h http.Header) {
		h.Set("Content-Type", api.ContentTypeCAR)
		h.Set("X-Content-Type-Options", "nosniff")
	}}
	_, err = st.Export(r.Context(), root, lw)
	switch {
	case err == nil || r.Context().Err() != nil:
	case !lw.started:
		status := http.StatusInternalServerError
		if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrIncomplete) {
			status = http.StatusNotFound
		}
		api.WriteError(w, status, err)
	default:
		logger().Warn("export stopped", "cid", root.String(), "err", err)
		panic(http.ErrAbortHandler)
	}
}

// lazyHeaders sets its headers on the first write, so that an error before any byte can still
// be answered with a status of its own.
type lazyHeaders struct {
	w       http.ResponseWriter
	set     func(http.Header)
	started bool
}

func (l *lazyHeaders) Write(p []byte) (int, error) {
	if !l.started {
		l.started = true
		l.set(l.w.Header())
		l.w.WriteHeader(http.StatusOK)
	}
	return l.w.Write(p)
}

// handleImport reads a CAR from the request body, streamed into the store, and answers what it
// stored (store.ImportResult). A body that is not a valid CAR is a 400, with nothing recorded.
func (n *Node) handleImport(w http.ResponseWriter, r *http.Request) {
	st := n.needStore(w)
	if st == nil {
		return
	}
	res, err := st.ImportCAR(r.Context(), r.Body)
	if err != nil {
		status := http.StatusInternalServerError
		if errors.Is(err, store.ErrBadCAR) {
			status = http.StatusBadRequest
		}
		api.WriteError(w, status, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, APIImportResult(res))
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
		api.WriteError(w, http.StatusInternalServerError, err) // the client names the file
		return
	}
	api.WriteJSON(w, http.StatusOK, APIFile(f))
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
	api.WriteJSON(w, http.StatusOK, APIFile(f))
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
	api.WriteJSON(w, http.StatusOK, APIEntries(es))
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
	api.WriteJSON(w, http.StatusOK, APIFiles(st.Files()))
}

// handleCat answers a file's bytes. It waits for the file's root before it answers, so a file
// nobody has is a 404 (or a 504 when the root does not come within ?timeout=, default
// DefaultCatTimeout) rather than an empty 200. The answer always has a Content-Length; a fetch
// that fails after the headers aborts the response, so the client sees a broken connection and a
// short body, never a clean end.
func (n *Node) handleCat(w http.ResponseWriter, r *http.Request) {
	st := n.needStore(w)
	if st == nil {
		return
	}
	root, err := unixfs.DecodeCID(r.PathValue("cid")) // Cat says what a CID of another codec is
	if err != nil {
		api.WriteError(w, http.StatusBadRequest, err)
		return
	}
	var timeout time.Duration
	if v := r.URL.Query().Get("timeout"); v != "" {
		if timeout, err = time.ParseDuration(v); err != nil || timeout <= 0 {
			api.WriteError(w, http.StatusBadRequest, fmt.Errorf("timeout %q: want a positive duration such as 30s", v))
			return
		}
	}
	var rc io.ReadCloser
	var size uint64
	if p := r.URL.Query().Get("path"); p != "" {
		if rc, size, err = n.catPath(r, st, root, p); err != nil {
			err = fmt.Errorf("reading %s/%s: %w", root, p, err)
		}
	} else {
		rc, size, err = n.Cat(r.Context(), root, timeout)
	}
	if err != nil {
		if r.Context().Err() != nil {
			return // the client went away
		}
		api.WriteError(w, pathStatus(err), err) // it names the file
		return
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Length", strconv.FormatUint(size, 10))
	if _, err := io.Copy(w, rc); err != nil {
		if r.Context().Err() == nil {
			logger().Warn("cat stopped", "cid", root.String(), "err", err)
		}
		// The status line is sent: break the connection so that no client takes the short
		// body for the whole file.
		panic(http.ErrAbortHandler)
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
		b, err := json.Marshal(APIEvent(e))
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

// followEvents streams the events with Seq >= from as server-sent events, then each new one as it
// is recorded, with none missed or repeated however slowly the client reads (store.Follow refills
// a gap from the log). If the stream cannot go on (the log cannot be read), it ends with an
// "error" event whose data is {"error": "..."}, which the client reports.
func (n *Node) followEvents(w http.ResponseWriter, r *http.Request, st *store.Store, from uint64) {
	fl, ok := w.(http.Flusher)
	if !ok {
		api.WriteError(w, http.StatusInternalServerError, errors.New("streaming is not supported here"))
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	fl.Flush()
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	var mu sync.Mutex // the keepalive goroutine and Follow both write
	write := func(f func() error) error {
		mu.Lock()
		defer mu.Unlock()
		if err := f(); err != nil {
			cancel() // the client is gone
			return err
		}
		fl.Flush()
		return nil
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		keepalive := time.NewTicker(15 * time.Second)
		defer keepalive.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-keepalive.C:
				_ = write(func() error {
					_, err := io.WriteString(w, ": keepalive\n\n")
					return err
				})
			}
		}
	}()
	defer wg.Wait() // no write after the handler returns
	defer cancel()
	err := st.Follow(ctx, from, func(e store.Event) error {
		b, err := json.Marshal(APIEvent(e))
		if err != nil {
			return err
		}
		return write(func() error {
			_, err := fmt.Fprintf(w, "id: %d\ndata: %s\n\n", e.Seq, b)
			return err
		})
	})
	if err == nil || ctx.Err() != nil {
		return // the client went away, or the daemon is stopping
	}
	logger().Warn("event stream stopped", "err", err)
	b, _ := json.Marshal(api.Error{Error: "event stream stopped: " + err.Error()})
	_ = write(func() error {
		_, err := fmt.Fprintf(w, "event: error\ndata: %s\n\n", b)
		return err
	})
}

// Pin pins a held file: Remove refuses it until Unpin.
func (n *Node) Pin(root cid.Cid) (store.File, error) {
	st := n.opts.Store
	if st == nil {
		return store.File{}, ErrNoExchange
	}
	return st.Pin(root)
}

// Unpin lifts a file's pin.
func (n *Node) Unpin(root cid.Cid) (store.File, error) {
	st := n.opts.Store
	if st == nil {
		return store.File{}, ErrNoExchange
	}
	return st.Unpin(root)
}

// handlePin answers POST /api/v1/pin (pin true) and /api/v1/unpin with the file.
func (n *Node) handlePin(pin bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req api.PinRequest
		if !api.ReadJSON(w, r, &req) {
			return
		}
		root, ok := parseRoot(w, req.CID)
		if !ok {
			return
		}
		set := n.Unpin
		if pin {
			set = n.Pin
		}
		f, err := set(root)
		if err != nil {
			api.WriteError(w, statusOf(err), err)
			return
		}
		api.WriteJSON(w, http.StatusOK, APIFile(f))
	}
}
