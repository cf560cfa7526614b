package api

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

	"peer/store/unixfs"
)

// The endpoints of the repo: add, ls, cat, events, pin, CARs.

func (h *handlers) repoRoutes(s *Server) {
	s.HandleUpload("POST "+PathAdd, http.HandlerFunc(h.handleAdd))
	s.HandleFunc("POST "+PathAddPath, h.handleAddPath)
	s.HandleFunc("GET "+PathLs, h.handleLs)
	s.HandleFunc("GET "+PathCat+"{cid}", h.handleCat)
	s.HandleFunc("GET "+PathEvents, h.handleEvents)
	s.HandleFunc("POST "+PathPin, h.handlePin(true))
	s.HandleFunc("POST "+PathUnpin, h.handlePin(false))
	s.HandleFunc("GET "+PathExport+"{cid}", h.handleExport)
	s.HandleUpload("POST "+PathImport, http.HandlerFunc(h.handleImport))
}

// handleExport answers a CARv1 of the DAG under {cid}. A DAG the repo does not hold whole is a
// 404 before any byte; a block that fails to read midway aborts the response, so the client
// sees a broken stream, never a short CAR that ends cleanly.
func (h *handlers) handleExport(w http.ResponseWriter, r *http.Request) {
	root, err := unixfs.DecodeCID(r.PathValue("cid"))
	if err != nil {
		WriteError(w, http.StatusBadRequest, err)
		return
	}
	lw := &lazyHeaders{w: w, set: func(h http.Header) {
		h.Set("Content-Type", ContentTypeCAR)
		h.Set("X-Content-Type-Options", "nosniff")
	}}
	err = h.b.Export(r.Context(), root, lw)
	switch {
	case err == nil || r.Context().Err() != nil:
	case !lw.started:
		WriteError(w, StatusOf(err), err)
	default:
		h.log().Warn("export stopped", "cid", root.String(), "err", err)
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
// stored (ImportResult). A body that is not a valid CAR is a 400, with nothing recorded.
func (h *handlers) handleImport(w http.ResponseWriter, r *http.Request) {
	res, err := h.b.Import(r.Context(), r.Body)
	if err != nil {
		WriteError(w, StatusOf(err), err)
		return
	}
	WriteJSON(w, http.StatusOK, res)
}

// handleAdd imports the request body (raw, named by ?name=) or the first file of a multipart
// form. The body is streamed into the store, never held in memory. ?chunk_size=N sets the chunk
// size.
func (h *handlers) handleAdd(w http.ResponseWriter, r *http.Request) {
	chunkSize := 0
	if v := r.URL.Query().Get("chunk_size"); v != "" {
		cs, err := strconv.Atoi(v)
		if err != nil || cs <= 0 {
			WriteError(w, http.StatusBadRequest, fmt.Errorf("chunk_size %q: want a positive number of bytes", v))
			return
		}
		chunkSize = cs
	}
	body, name := io.Reader(r.Body), r.URL.Query().Get("name")
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "multipart/form-data" {
		mr, err := r.MultipartReader()
		if err != nil {
			WriteError(w, http.StatusBadRequest, fmt.Errorf("reading form: %w", err))
			return
		}
		for {
			part, err := mr.NextPart()
			if err != nil {
				WriteError(w, http.StatusBadRequest, errors.New("the form has no file part"))
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
	f, err := h.b.Add(r.Context(), body, name, chunkSize)
	if err != nil {
		WriteError(w, StatusOf(err), err) // the client names the file
		return
	}
	WriteJSON(w, http.StatusOK, f)
}

// handleAddPath imports a folder or file of this machine, named by its absolute path, with
// everything in it.
func (h *handlers) handleAddPath(w http.ResponseWriter, r *http.Request) {
	var req AddPathRequest
	if !ReadJSON(w, r, &req) {
		return
	}
	if !filepath.IsAbs(req.Path) {
		WriteError(w, http.StatusBadRequest, fmt.Errorf("path %q must be absolute", req.Path))
		return
	}
	if req.ChunkSize < 0 {
		WriteError(w, http.StatusBadRequest, fmt.Errorf("chunk_size %d: want a positive number of bytes", req.ChunkSize))
		return
	}
	f, err := h.b.AddPath(r.Context(), req)
	if err != nil {
		WriteError(w, StatusOf(err), fmt.Errorf("adding %s: %w", req.Path, err))
		return
	}
	WriteJSON(w, http.StatusOK, f)
}

// handleLs lists the files held, as they are (or as they were ?at= an RFC 3339 time), or the
// folder ?path= names (an IPFS path).
func (h *handlers) handleLs(w http.ResponseWriter, r *http.Request) {
	if p := r.URL.Query().Get("path"); p != "" {
		es, err := h.b.ListDir(r.Context(), p)
		if err != nil {
			WriteError(w, StatusOf(err), err)
			return
		}
		if es == nil {
			es = []Entry{}
		}
		WriteJSON(w, http.StatusOK, es)
		return
	}
	var t time.Time
	if at := r.URL.Query().Get("at"); at != "" {
		var err error
		if t, err = time.Parse(time.RFC3339Nano, at); err != nil {
			WriteError(w, http.StatusBadRequest, fmt.Errorf("at %q: want an RFC 3339 time", at))
			return
		}
	}
	fs, err := h.b.Files(t)
	if err != nil {
		WriteError(w, StatusOf(err), err)
		return
	}
	if fs == nil {
		fs = []File{}
	}
	WriteJSON(w, http.StatusOK, fs)
}

// handleCat answers a file's bytes. It waits for the file's root before it answers, so a file
// nobody has is a 404 (or a 504 when the root does not come within ?timeout=, default the
// node's) rather than an empty 200. The answer always has a Content-Length; a fetch that fails
// after the headers aborts the response, so the client sees a broken connection and a short
// body, never a clean end.
func (h *handlers) handleCat(w http.ResponseWriter, r *http.Request) {
	root, err := unixfs.DecodeCID(r.PathValue("cid")) // Cat says what a CID of another codec is
	if err != nil {
		WriteError(w, http.StatusBadRequest, err)
		return
	}
	var timeout time.Duration
	if v := r.URL.Query().Get("timeout"); v != "" {
		if timeout, err = time.ParseDuration(v); err != nil || timeout <= 0 {
			WriteError(w, http.StatusBadRequest, fmt.Errorf("timeout %q: want a positive duration such as 30s", v))
			return
		}
	}
	rc, size, err := h.b.Cat(r.Context(), root, r.URL.Query().Get("path"), timeout)
	if err != nil {
		if r.Context().Err() != nil {
			return // the client went away
		}
		WriteError(w, StatusOf(err), err) // it names the file
		return
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Length", strconv.FormatUint(size, 10))
	if _, err := io.Copy(w, rc); err != nil {
		if r.Context().Err() == nil {
			h.log().Warn("cat stopped", "cid", root.String(), "err", err)
		}
		// The status line is sent: break the connection so that no client takes the short
		// body for the whole file.
		panic(http.ErrAbortHandler)
	}
}

// handleEvents answers the events with Seq >= ?from= as a JSON list, or with ?follow=1 as
// server-sent events: the history, then each new event as it is recorded, until the client
// goes away or the daemon stops.
func (h *handlers) handleEvents(w http.ResponseWriter, r *http.Request) {
	el, err := h.b.Events()
	if err != nil {
		WriteError(w, StatusOf(err), err)
		return
	}
	q := r.URL.Query()
	var from uint64
	if v := q.Get("from"); v != "" {
		var err error
		if from, err = strconv.ParseUint(v, 10, 64); err != nil {
			WriteError(w, http.StatusBadRequest, fmt.Errorf("from %q: want an event number", v))
			return
		}
	}
	if follow := q.Get("follow"); follow == "1" || strings.EqualFold(follow, "true") {
		h.followEvents(w, r, el, from)
		return
	}
	// Stream the list: constant memory however long the log.
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, "[")
	first := true
	err = el.List(from, func(e Event) error {
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
		h.log().Warn("listing events stopped", "err", err)
		return
	}
	io.WriteString(w, "]\n")
}

// followEvents streams the events with Seq >= from as server-sent events, then each new one as it
// is recorded, with none missed or repeated however slowly the client reads (EventLog.Follow
// refills a gap from the log). If the stream cannot go on (the log cannot be read), it ends with
// an "error" event whose data is {"error": "..."}, which the client reports.
func (h *handlers) followEvents(w http.ResponseWriter, r *http.Request, el EventLog, from uint64) {
	fl, ok := w.(http.Flusher)
	if !ok {
		WriteError(w, http.StatusInternalServerError, errors.New("streaming is not supported here"))
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
	err := el.Follow(ctx, from, func(e Event) error {
		b, err := json.Marshal(e)
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
	h.log().Warn("event stream stopped", "err", err)
	b, _ := json.Marshal(Error{Error: "event stream stopped: " + err.Error()})
	_ = write(func() error {
		_, err := fmt.Fprintf(w, "event: error\ndata: %s\n\n", b)
		return err
	})
}

// handlePin answers POST /api/v1/pin (pin true) and /api/v1/unpin with the file.
func (h *handlers) handlePin(pin bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req PinRequest
		if !ReadJSON(w, r, &req) {
			return
		}
		root, ok := parseRoot(w, req.CID)
		if !ok {
			return
		}
		f, err := h.b.Pin(root, pin)
		if err != nil {
			WriteError(w, StatusOf(err), err)
			return
		}
		WriteJSON(w, http.StatusOK, f)
	}
}
