package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/stretchr/testify/require"

	"peer/node/api"
)

const emptyCID = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"

// fake is a Backend for the handler tests: no node, no network. A method the test did not give
// a function panics inside the handler (the embedded Backend is nil), which breaks the
// connection, so the test sees any call it did not expect.
type fake struct {
	api.Backend
	calls  atomic.Int32
	pin    func(root cid.Cid, pin bool) (api.File, error)
	cat    func(root cid.Cid, path string, timeout time.Duration) (io.ReadCloser, uint64, error)
	files  func(at time.Time) ([]api.File, error)
	events func() (api.EventLog, error)
	remove func(root cid.Cid, force bool) error
}

func (f *fake) Metrics() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "metrics\n") })
}

func (f *fake) Pin(root cid.Cid, pin bool) (api.File, error) { f.calls.Add(1); return f.pin(root, pin) }

func (f *fake) Cat(_ context.Context, root cid.Cid, path string, timeout time.Duration) (io.ReadCloser, uint64, error) {
	f.calls.Add(1)
	return f.cat(root, path, timeout)
}

func (f *fake) Files(at time.Time) ([]api.File, error) { f.calls.Add(1); return f.files(at) }
func (f *fake) Events() (api.EventLog, error)          { f.calls.Add(1); return f.events() }
func (f *fake) Remove(_ context.Context, root cid.Cid, force bool) error {
	f.calls.Add(1)
	return f.remove(root, force)
}

// serve runs the API's routes over b on a loopback port and returns the server and a client.
func serve(t *testing.T, b api.Backend) (*api.Server, *api.Client) {
	t.Helper()
	dir := t.TempDir()
	s, err := api.New(api.Config{Addr: "127.0.0.1:0", RepoDir: dir})
	require.NoError(t, err)
	api.Routes(s, b)
	require.NoError(t, s.Start(t.Context()))
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	c, err := api.ForRepo(dir)
	require.NoError(t, err)
	return s, c
}

// Input the handlers can tell is wrong is a 400 (or 404, for an action that does not exist),
// with a JSON error, and never reaches the backend.
func TestHandlersRefuseBadInput(t *testing.T) {
	b := &fake{}
	s, _ := serve(t, b)
	cases := []struct {
		name, method, path, body string
		want                     int
	}{
		{"connect: not JSON", "POST", api.PathConnect, `{`, http.StatusBadRequest},
		{"connect: unknown field", "POST", api.PathConnect, `{"address":"x"}`, http.StatusBadRequest},
		{"pin: not a CID", "POST", api.PathPin, `{"cid":"nonsense"}`, http.StatusBadRequest},
		{"unpin: no CID", "POST", api.PathUnpin, `{}`, http.StatusBadRequest},
		{"rm: not a CID", "POST", api.PathRm, `{"cid":"bafy!"}`, http.StatusBadRequest},
		{"cat: not a CID", "GET", api.PathCat + "nonsense", "", http.StatusBadRequest},
		{"cat: bad timeout", "GET", api.PathCat + emptyCID + "?timeout=-1s", "", http.StatusBadRequest},
		{"cat: timeout without unit", "GET", api.PathCat + emptyCID + "?timeout=30", "", http.StatusBadRequest},
		{"export: not a CID", "GET", api.PathExport + "nonsense", "", http.StatusBadRequest},
		{"ls: bad time", "GET", api.PathLs + "?at=yesterday", "", http.StatusBadRequest},
		{"add: chunk size 0", "POST", api.PathAdd + "?chunk_size=0", "data", http.StatusBadRequest},
		{"add: chunk size not a number", "POST", api.PathAdd + "?chunk_size=1MiB", "data", http.StatusBadRequest},
		{"add path: relative", "POST", api.PathAddPath, `{"path":"rel/dir"}`, http.StatusBadRequest},
		{"add path: negative chunk size", "POST", api.PathAddPath, `{"path":"/abs","chunk_size":-1}`, http.StatusBadRequest},
		{"share: relative", "POST", api.PathShare, `{"path":"file.txt"}`, http.StatusBadRequest},
		{"fetch: relative output", "POST", api.PathFetch, `{"cid":"` + emptyCID + `","output":"out.bin"}`, http.StatusBadRequest},
		{"fetch: relative dir", "POST", api.PathFetch, `{"cid":"` + emptyCID + `","dir":"d"}`, http.StatusBadRequest},
		{"fetch: negative limit", "POST", api.PathFetch, `{"cid":"` + emptyCID + `","limit":-1}`, http.StatusBadRequest},
		{"fetch: not a path", "POST", api.PathFetch, `{"cid":"nonsense/a"}`, http.StatusBadRequest},
		{"queue: not a CID", "POST", api.PathTransfers, `{"cid":"nonsense"}`, http.StatusBadRequest},
		{"transfer: no such action", "POST", api.PathTransfers + "/t1/explode", "", http.StatusNotFound},
		{"transfer: cancel body not JSON", "POST", api.PathTransfers + "/t1/cancel", `{`, http.StatusBadRequest},
		{"wrong method", "DELETE", api.PathLs, "", http.StatusMethodNotAllowed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), c.method, s.URL()+c.path, strings.NewReader(c.body))
			require.NoError(t, err)
			req.Header.Set("Authorization", "Bearer "+s.Token())
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err, "the handler called the backend")
			defer resp.Body.Close()
			require.Equal(t, c.want, resp.StatusCode)
			require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			var e struct{ Error string }
			require.NoError(t, jsonDecode(resp.Body, &e))
			require.NotEmpty(t, e.Error)
		})
	}
	require.Zero(t, b.calls.Load())
}

// Every route needs the token, and refuses another Host or Origin, before the backend is called.
func TestHandlersNeedTokenAndOwnHost(t *testing.T) {
	b := &fake{}
	s, _ := serve(t, b)
	_, port, err := net.SplitHostPort(strings.TrimPrefix(s.URL(), "http://"))
	require.NoError(t, err)
	paths := []struct{ method, path string }{
		{"GET", api.PathID}, {"GET", api.PathPeers}, {"POST", api.PathConnect}, {"GET", api.PathStatus},
		{"GET", api.PathMetrics}, {"POST", api.PathAdd}, {"POST", api.PathAddPath}, {"GET", api.PathLs},
		{"GET", api.PathCat + emptyCID}, {"GET", api.PathEvents}, {"POST", api.PathPin}, {"POST", api.PathUnpin},
		{"GET", api.PathExport + emptyCID}, {"POST", api.PathImport}, {"POST", api.PathShare}, {"POST", api.PathFetch},
		{"GET", api.PathSearch}, {"POST", api.PathRm}, {"POST", api.PathGC}, {"GET", api.PathTransfers},
		{"POST", api.PathTransfers}, {"POST", api.PathTransfers + "/t1/pause"}, {"GET", "/debug/pprof/"},
	}
	for _, p := range paths {
		t.Run(p.method+" "+p.path, func(t *testing.T) {
			for _, c := range []struct {
				name, host, origin, token string
				want                      int
			}{
				{"no token", "", "", "", http.StatusUnauthorized},
				{"wrong token", "", "", strings.Repeat("ab", 32), http.StatusUnauthorized},
				{"rebinding name", "attacker.example:" + port, "", s.Token(), http.StatusForbidden},
				{"another site", "", "http://evil.example", s.Token(), http.StatusForbidden},
			} {
				req, err := http.NewRequestWithContext(t.Context(), p.method, s.URL()+p.path, strings.NewReader(`{}`))
				require.NoError(t, err)
				if c.host != "" {
					req.Host = c.host
				}
				if c.origin != "" {
					req.Header.Set("Origin", c.origin)
				}
				if c.token != "" {
					req.Header.Set("Authorization", "Bearer "+c.token)
				}
				resp, err := http.DefaultClient.Do(req)
				require.NoError(t, err, c.name)
				resp.Body.Close()
				require.Equal(t, c.want, resp.StatusCode, c.name)
			}
		})
	}
	require.Zero(t, b.calls.Load())
}

// A backend error is answered with the status WithStatus gave it (500 without), and the client
// returns it with the backend's message.
func TestHandlersAnswerTheBackendsStatus(t *testing.T) {
	b := &fake{
		pin: func(root cid.Cid, pin bool) (api.File, error) {
			if pin {
				return api.File{}, api.WithStatus(http.StatusNotFound, errors.New("no such file"))
			}
			return api.File{}, errors.New("disk on fire")
		},
		remove: func(root cid.Cid, force bool) error {
			return api.WithStatus(http.StatusConflict, errors.New("pinned: pass force"))
		},
		files: func(at time.Time) ([]api.File, error) {
			return nil, api.WithStatus(http.StatusServiceUnavailable, errors.New("this node runs without a repo"))
		},
	}
	_, c := serve(t, b)
	var se *api.StatusError
	_, err := c.Pin(t.Context(), emptyCID)
	require.ErrorAs(t, err, &se)
	require.Equal(t, http.StatusNotFound, se.Code)
	require.Equal(t, "no such file", se.Message)
	_, err = c.Unpin(t.Context(), emptyCID)
	require.ErrorAs(t, err, &se)
	require.Equal(t, http.StatusInternalServerError, se.Code)
	require.Equal(t, "disk on fire", se.Message)
	err = c.Remove(t.Context(), emptyCID)
	require.ErrorAs(t, err, &se)
	require.Equal(t, http.StatusConflict, se.Code)
	_, err = c.Ls(t.Context())
	require.ErrorAs(t, err, &se)
	require.Equal(t, http.StatusServiceUnavailable, se.Code)
}

// What the backend returns reaches the client whole: a file's Root is filled from its CID, and
// the request's values reach the backend.
func TestHandlersPassValuesThrough(t *testing.T) {
	var gotForce bool
	var gotAt time.Time
	b := &fake{
		pin: func(root cid.Cid, pin bool) (api.File, error) {
			return api.File{CID: root.String(), Name: "f", Pinned: pin, State: api.FileComplete}, nil
		},
		remove: func(root cid.Cid, force bool) error { gotForce = force; return nil },
		files: func(at time.Time) ([]api.File, error) {
			gotAt = at
			return nil, nil
		},
	}
	_, c := serve(t, b)
	f, err := c.Pin(t.Context(), emptyCID)
	require.NoError(t, err)
	require.Equal(t, emptyCID, f.Root.String())
	require.True(t, f.Pinned)
	require.NoError(t, c.RemoveForce(t.Context(), emptyCID))
	require.True(t, gotForce)
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	fs, err := c.LsAt(t.Context(), at)
	require.NoError(t, err)
	require.NotNil(t, fs, "an empty list is [], not null")
	require.True(t, at.Equal(gotAt))
}

// failingReader gives n bytes, then an error: a fetch that dies midway.
type failingReader struct{ n int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, errors.New("the seeder went away")
	}
	k := min(len(p), r.n)
	for i := range k {
		p[i] = 'x'
	}
	r.n -= k
	return k, nil
}

func (r *failingReader) Close() error { return nil }

// cat answers with the file's whole size as Content-Length; a reader that fails midway breaks
// the connection, so the client's Read fails rather than ending cleanly on a short file. A cat
// error before the first byte keeps its status.
func TestHandlersCatBreaksOffAFailedStream(t *testing.T) {
	root, err := cid.Decode(emptyCID)
	require.NoError(t, err)
	b := &fake{cat: func(c cid.Cid, path string, timeout time.Duration) (io.ReadCloser, uint64, error) {
		switch {
		case path == "missing":
			return nil, 0, api.WithStatus(http.StatusNotFound, errors.New("no entry missing"))
		case timeout == time.Second:
			return nil, 0, api.WithStatus(http.StatusGatewayTimeout, errors.New("no provider sent the root"))
		}
		return &failingReader{n: 100 << 10}, 1 << 20, nil
	}}
	_, c := serve(t, b)
	rc, err := c.Cat(t.Context(), root, 0)
	require.NoError(t, err)
	got, err := io.ReadAll(rc)
	rc.Close()
	require.ErrorContains(t, err, "broke off")
	require.Less(t, len(got), 1<<20)

	var se *api.StatusError
	_, err = c.CatPath(t.Context(), root, []string{"missing"})
	require.ErrorAs(t, err, &se)
	require.Equal(t, http.StatusNotFound, se.Code)
	_, err = c.Cat(t.Context(), root, time.Second)
	require.ErrorAs(t, err, &se)
	require.Equal(t, http.StatusGatewayTimeout, se.Code)
}

// eventLog is a log of n events; Follow then fails, as a log that cannot be read.
type eventLog struct{ n uint64 }

func (l eventLog) List(from uint64, fn func(api.Event) error) error {
	for s := max(from, 1); s <= l.n; s++ {
		if err := fn(api.Event{Seq: s, Type: "FileAdded", CID: emptyCID, Root: emptyCID}); err != nil {
			return err
		}
	}
	return nil
}

func (l eventLog) Follow(ctx context.Context, from uint64, fn func(api.Event) error) error {
	if err := l.List(from, fn); err != nil {
		return err
	}
	return errors.New("the log is unreadable")
}

// The event list is a JSON array; a follow streams the history, then ends with the error that
// stopped it, which the client returns.
func TestHandlersEvents(t *testing.T) {
	b := &fake{events: func() (api.EventLog, error) { return eventLog{n: 3}, nil }}
	_, c := serve(t, b)
	evs, err := c.Events(t.Context(), 2)
	require.NoError(t, err)
	require.Len(t, evs, 2)
	require.Equal(t, uint64(2), evs[0].Seq)
	var seen []uint64
	err = c.FollowEvents(t.Context(), 0, func(e api.Event) error { seen = append(seen, e.Seq); return nil })
	require.ErrorContains(t, err, "the log is unreadable")
	require.Equal(t, []uint64{1, 2, 3}, seen)

	b.events = func() (api.EventLog, error) {
		return nil, api.WithStatus(http.StatusServiceUnavailable, errors.New("this node runs without a repo"))
	}
	var se *api.StatusError
	_, err = c.Events(t.Context(), 0)
	require.ErrorAs(t, err, &se)
	require.Equal(t, http.StatusServiceUnavailable, se.Code)
}

func jsonDecode(r io.Reader, v any) error { return json.NewDecoder(r).Decode(v) }

// transfers is the double's part for fetches and transfers.
type transfers struct {
	*fake
	mu      sync.Mutex
	list    []api.Transfer
	changed chan struct{}
	queue   func(root cid.Cid, names []string, req api.FetchRequest) (api.Transfer, bool, error)
	watch   func(ctx context.Context, id string, attached bool, send func(api.FetchEvent))
}

func (b *transfers) Queue(root cid.Cid, names []string, req api.FetchRequest) (api.Transfer, bool, error) {
	return b.queue(root, names, req)
}

func (b *transfers) WatchFetch(ctx context.Context, id string, attached bool, send func(api.FetchEvent)) {
	b.watch(ctx, id, attached, send)
}

func (b *transfers) Transfers() ([]api.Transfer, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]api.Transfer(nil), b.list...), nil
}

func (b *transfers) TransfersChanged() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.changed
}

// set replaces the list and tells the followers.
func (b *transfers) set(list ...api.Transfer) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.list = list
	close(b.changed)
	b.changed = make(chan struct{})
}

// A queued fetch streams a "queued" line naming the transfer, what the backend sends, and its
// last line; every line names the transfer. A queue the backend refuses is an HTTP error.
func TestHandlersFetchStreamsTheTransfer(t *testing.T) {
	b := &transfers{fake: &fake{}}
	b.queue = func(root cid.Cid, _ []string, req api.FetchRequest) (api.Transfer, bool, error) {
		if req.Output == "/refused" {
			return api.Transfer{}, false, api.WithStatus(http.StatusConflict, errors.New("output exists"))
		}
		return api.Transfer{ID: "t1", State: "queued", CID: root.String()}, false, nil
	}
	b.watch = func(ctx context.Context, id string, attached bool, send func(api.FetchEvent)) {
		send(api.FetchEvent{Type: "progress", Progress: &api.FetchProgress{Bytes: 10, BytesDone: 5}})
		send(api.FetchEvent{Type: "done", File: &api.File{CID: emptyCID, Name: "f"}, Path: "/out/f"})
	}
	_, c := serve(t, b)
	var evs []api.FetchEvent
	done, err := c.Fetch(t.Context(), api.FetchRequest{CID: emptyCID, Output: "/out/f"}, func(ev api.FetchEvent) { evs = append(evs, ev) })
	require.NoError(t, err)
	require.Equal(t, "done", done.Type)
	require.Equal(t, emptyCID, done.File.Root.String(), "the client fills the file's Root")
	require.Len(t, evs, 3)
	require.Equal(t, "queued", evs[0].Type)
	require.Equal(t, "queued", evs[0].State)
	for _, ev := range evs {
		require.Equal(t, "t1", ev.Transfer)
	}
	require.Equal(t, int64(5), evs[1].Progress.BytesDone)

	_, err = c.Fetch(t.Context(), api.FetchRequest{CID: emptyCID, Output: "/refused"}, nil)
	var se *api.StatusError
	require.ErrorAs(t, err, &se)
	require.Equal(t, http.StatusConflict, se.Code)
}

// A path into a folder is queued like any other fetch, its names given to the backend, by
// POST /fetch and POST /transfers alike; a path that names nothing sane is refused.
func TestHandlersFetchPathIsQueued(t *testing.T) {
	b := &transfers{fake: &fake{}}
	var gotNames [][]string
	b.queue = func(root cid.Cid, names []string, req api.FetchRequest) (api.Transfer, bool, error) {
		gotNames = append(gotNames, names)
		return api.Transfer{ID: "t2", State: "queued", CID: root.String(), Path: strings.Join(names, "/")}, false, nil
	}
	b.watch = func(ctx context.Context, id string, attached bool, send func(api.FetchEvent)) {
		send(api.FetchEvent{Type: "done", File: &api.File{CID: emptyCID, Name: "f"}, Path: "/out/f"})
	}
	_, c := serve(t, b)
	done, err := c.Fetch(t.Context(), api.FetchRequest{CID: emptyCID + "/sub/f"}, nil)
	require.NoError(t, err)
	require.Equal(t, "t2", done.Transfer)
	tr, err := c.Queue(t.Context(), api.QueueRequest{CID: "/ipfs/" + emptyCID + "/sub"})
	require.NoError(t, err)
	require.Equal(t, "sub", tr.Path)
	require.Equal(t, [][]string{{"sub", "f"}, {"sub"}}, gotNames)

	_, err = c.Queue(t.Context(), api.QueueRequest{CID: emptyCID + "/../x"})
	require.ErrorContains(t, err, `".." is not allowed`)
}

// Following the transfers gives the whole list first, then each transfer that changed, and not
// again one that did not.
func TestHandlersFollowTransfers(t *testing.T) {
	b := &transfers{fake: &fake{}, changed: make(chan struct{})}
	b.list = []api.Transfer{{ID: "a", State: "running"}, {ID: "b", State: "queued"}}
	_, c := serve(t, b)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	got := make(chan api.Transfer, 16)
	done := make(chan error, 1)
	go func() {
		done <- c.FollowTransfers(ctx, func(tr api.Transfer) error { got <- tr; return nil })
	}()
	next := func() api.Transfer {
		t.Helper()
		select {
		case tr := <-got:
			return tr
		case <-time.After(10 * time.Second):
			t.Fatal("no transfer came")
			return api.Transfer{}
		}
	}
	require.Equal(t, "a", next().ID)
	require.Equal(t, "b", next().ID)
	b.set(api.Transfer{ID: "a", State: "running"}, api.Transfer{ID: "b", State: "running"})
	tr := next()
	require.Equal(t, "b", tr.ID, "a did not change")
	require.Equal(t, "running", tr.State)
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
}

// repo is the double's part for add and export.
type repo struct {
	*fake
	export func(root cid.Cid, w io.Writer) error
	add    func(r io.Reader, name string, chunkSize int) (api.File, error)
}

func (b *repo) Export(_ context.Context, root cid.Cid, w io.Writer) error { return b.export(root, w) }

func (b *repo) Add(_ context.Context, r io.Reader, name string, chunkSize int) (api.File, error) {
	return b.add(r, name, chunkSize)
}

// An export that fails before its first byte keeps its status; one that fails midway breaks the
// connection, so the client's Read fails instead of a short CAR ending cleanly.
func TestHandlersExportBreaksOffMidway(t *testing.T) {
	whole, err := cid.Decode(emptyCID)
	require.NoError(t, err)
	missing, err := cid.Decode("bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq")
	require.NoError(t, err)
	b := &repo{fake: &fake{}, export: func(root cid.Cid, w io.Writer) error {
		if root == missing {
			return api.WithStatus(http.StatusNotFound, errors.New("not held whole"))
		}
		if _, err := w.Write(make([]byte, 64<<10)); err != nil {
			return err
		}
		return errors.New("a block failed to read")
	}}
	_, c := serve(t, b)
	var se *api.StatusError
	_, err = c.Export(t.Context(), missing)
	require.ErrorAs(t, err, &se)
	require.Equal(t, http.StatusNotFound, se.Code)

	rc, err := c.Export(t.Context(), whole)
	require.NoError(t, err)
	_, err = io.ReadAll(rc)
	rc.Close()
	require.ErrorContains(t, err, "broke off")
}

// add takes the raw body named by ?name=, or the first file of a multipart form named by its
// file name; a form with no file is a 400.
func TestHandlersAddReadsRawAndMultipart(t *testing.T) {
	type got struct {
		name, body string
		chunk      int
	}
	var last got
	b := &repo{fake: &fake{}, add: func(r io.Reader, name string, chunkSize int) (api.File, error) {
		body, err := io.ReadAll(r)
		last = got{name, string(body), chunkSize}
		return api.File{CID: emptyCID, Name: name}, err
	}}
	s, c := serve(t, b)
	f, err := c.Add(t.Context(), strings.NewReader("raw bytes"), "raw.txt")
	require.NoError(t, err)
	require.Equal(t, "raw.txt", f.Name)
	require.Equal(t, got{"raw.txt", "raw bytes", 0}, last)

	var form bytes.Buffer
	mw := multipart.NewWriter(&form)
	require.NoError(t, mw.WriteField("note", "not a file"))
	fw, err := mw.CreateFormFile("file", "dir/form.txt")
	require.NoError(t, err)
	_, _ = fw.Write([]byte("form bytes"))
	require.NoError(t, mw.Close())
	resp, err := c.Request(t.Context(), http.MethodPost, api.PathAdd+"?chunk_size=4096", &form, mw.FormDataContentType())
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, got{"form.txt", "form bytes", 4096}, last)

	form.Reset()
	mw = multipart.NewWriter(&form)
	require.NoError(t, mw.WriteField("note", "no file here"))
	require.NoError(t, mw.Close())
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, s.URL()+api.PathAdd, &form)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+s.Token())
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
}
