package node

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/boxo/blockservice"
	boxogw "github.com/ipfs/boxo/gateway"
	"github.com/ipfs/go-cid"

	"peer/node/api"
	"peer/store"
	"peer/store/unixfs"
	"peer/transfer"
)

// GatewayFile holds the gateway's base URL in the repo while the daemon runs (mode 0600).
const GatewayFile = "gateway"

// immutableCache is the Cache-Control of everything under /ipfs/: a CID names its bytes forever.
const immutableCache = "public, max-age=29030400, immutable"

// gatewayServer is the read-only HTTP gateway: GET and HEAD /ipfs/CID[/path] as the IPFS path
// and trustless gateway specs say, served by boxo's gateway handler over the blocks the node
// serves. A root not held here is fetched from the network: a whole-file GET of a file streams
// it while Node.Cat fetches it; any other request (a range, a folder, a path, a raw block or a
// CAR) is answered by boxo's reader with the blocks it reads fetched on demand, first
// (gatewayfetch.go), while a GET of a file fetches the whole file into the repo behind it.
type gatewayServer struct {
	n           *Node
	addr        string
	allowRemote bool
	dir         string
	boxo        http.Handler
	blocks      blockservice.BlockService

	ctx    context.Context // ends with Close: fetches behind requests stop
	cancel context.CancelFunc
	wg     sync.WaitGroup // fetches behind requests

	mu   sync.Mutex
	srv  *http.Server
	url  string
	done chan struct{}

	fetchMu  sync.Mutex
	fetching map[cid.Cid]*gatewayFetch // roots this gateway is fetching
}

// gatewayFetch is a fetch one request runs for others: they wait for done, then find the root
// held, or err.
type gatewayFetch struct {
	done chan struct{}
	err  error
}

// claim registers the caller as the fetcher of root (mine), or returns the fetch under way.
func (g *gatewayServer) claim(root cid.Cid) (f *gatewayFetch, mine bool) {
	g.fetchMu.Lock()
	defer g.fetchMu.Unlock()
	if f := g.fetching[root]; f != nil {
		return f, false
	}
	f = &gatewayFetch{done: make(chan struct{})}
	g.fetching[root] = f
	return f, true
}

func (g *gatewayServer) release(root cid.Cid, f *gatewayFetch, err error) {
	g.fetchMu.Lock()
	delete(g.fetching, root)
	g.fetchMu.Unlock()
	f.err = err
	close(f.done)
}

// held reports whether root can be answered from the repo: a complete file or folder, or a
// block of one.
func (g *gatewayServer) held(root cid.Cid) bool {
	st := g.n.opts.Store
	if f, ok := st.File(root); ok {
		return f.State == store.Complete
	}
	return st.ServeHas(root)
}

func newGateway(n *Node, addr, dir string, allowRemote bool) (*gatewayServer, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("gateway address %q: want HOST:PORT: %w", addr, err)
	}
	if !api.IsLoopback(host) && !allowRemote {
		return nil, fmt.Errorf("gateway address %s is not loopback: anyone who can reach it reads what this node holds and makes it fetch; pass --allow-remote-gateway to allow it", addr)
	}
	if dir == "" {
		return nil, errors.New("gateway: no repo directory")
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &gatewayServer{n: n, addr: addr, allowRemote: allowRemote, dir: dir, fetching: map[cid.Cid]*gatewayFetch{}, ctx: ctx, cancel: cancel}, nil
}

// start builds the handler over st, listens, writes the URL file and serves until Close.
func (g *gatewayServer) start(ctx context.Context, st *store.Store) error {
	// What the node holds is served as it is; what it does not hold is fetched on demand.
	bs := gatewayStore{servedStore: servedStore{st: st}, n: g.n, cache: newBlockCache(gatewayCacheBytes)}
	g.blocks = blockservice.New(bs, gatewayExchange{n: g.n})
	backend, err := boxogw.NewBlocksBackend(g.blocks, boxogw.WithPrometheusRegistry(g.n.reg))
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	g.boxo = boxogw.NewHandler(boxogw.Config{
		DeserializedResponses: true,
		NoDNSLink:             true,
		MetricsRegistry:       g.n.reg,
		RetrievalTimeout:      time.Minute,
	}, backend)
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", g.addr)
	if err != nil {
		return fmt.Errorf("gateway: listening on %s: %w (choose another with --gateway HOST:PORT)", g.addr, err)
	}
	url := "http://" + ln.Addr().String()
	if err := api.WriteFile0600(filepath.Join(g.dir, GatewayFile), []byte(url+"\n")); err != nil {
		ln.Close()
		return fmt.Errorf("gateway: writing %s: %w", GatewayFile, err)
	}
	srv := &http.Server{
		Handler:           g,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(slog.Default().Handler(), slog.LevelDebug),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger().Error("gateway stopped", "err", err)
		}
	}()
	g.mu.Lock()
	g.srv, g.url, g.done = srv, url, done
	g.mu.Unlock()
	logger().Info("gateway listening", "url", url)
	return nil
}

// URL is the gateway's base URL ("" when it does not run).
func (g *gatewayServer) URL() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.url
}

// Close removes the URL file and stops the server, waiting up to 5 s for open requests.
func (g *gatewayServer) Close() error {
	g.mu.Lock()
	srv, done := g.srv, g.done
	g.srv, g.url = nil, ""
	g.cancel()
	g.mu.Unlock()
	defer g.wg.Wait()
	if srv == nil {
		return nil
	}
	rmErr := os.Remove(filepath.Join(g.dir, GatewayFile))
	if errors.Is(rmErr, os.ErrNotExist) {
		rmErr = nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = srv.Close()
	}
	<-done
	return errors.Join(rmErr, err)
}

func (g *gatewayServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// A page elsewhere can make a browser ask a loopback gateway under a name of its own that
	// resolves to 127.0.0.1 (DNS rebinding): answer only to this gateway's own names.
	if !api.HostAllowed(r.Host, g.addr, g.allowRemote) {
		http.Error(w, fmt.Sprintf("host %q is not this gateway's address: use %s", r.Host, g.URL()), http.StatusForbidden)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "the gateway is read-only: GET or HEAD", http.StatusMethodNotAllowed)
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/ipfs/")
	if !ok {
		http.Error(w, "not found: this gateway serves /ipfs/CID[/path]", http.StatusNotFound)
		return
	}
	first, sub, _ := strings.Cut(rest, "/")
	root, err := cid.Decode(first)
	if err != nil {
		http.Error(w, fmt.Sprintf("%q is not a CID: %v", first, err), http.StatusBadRequest)
		return
	}
	if !g.held(root) {
		if r.Method == http.MethodGet && g.streamWhole(w, r, root, sub) {
			return
		}
		// boxo's reader fetches the blocks it reads, from root's providers; a GET of a file
		// then brings the whole file into the repo behind it. That fetch starts once the
		// answer is sent, or after behindDelay if it takes longer, so that the blocks this
		// request asked for come first: the whole file at full speed would slow them down.
		r = r.WithContext(withGatewayRoot(r.Context(), root))
		if r.Method == http.MethodGet {
			t := time.AfterFunc(behindDelay, func() { g.fetchBehind(root) })
			defer func() {
				if t.Stop() {
					g.fetchBehind(root)
				}
			}()
		}
	}
	g.boxo.ServeHTTP(w, r)
}

// behindDelay is how long a request answered on demand has its blocks fetched alone before the
// whole file is fetched behind it.
const behindDelay = time.Second

// isFile reports whether root is a file, reading its root block (fetched on demand when not
// held, and kept in the gateway's cache for the reader).
func (g *gatewayServer) isFile(ctx context.Context, root cid.Cid) (bool, error) {
	blk, err := g.blocks.GetBlock(withGatewayRoot(ctx, root), root)
	if err != nil {
		return false, err
	}
	kind, _, err := unixfs.Inspect(root, blk.RawData())
	return err == nil && kind == unixfs.File, nil
}

// streamWhole answers a whole-file GET of a file not held with its bytes as Node.Cat fetches
// them, in order, unless another request of the gateway is fetching it already or root is not
// a file (then it returns false and boxo answers, fetching on demand).
func (g *gatewayServer) streamWhole(w http.ResponseWriter, r *http.Request, root cid.Cid, sub string) bool {
	if sub != "" || r.Header.Get("Range") != "" || r.URL.Query().Get("format") != "" || trustlessAccept(r) {
		return false
	}
	f, mine := g.claim(root)
	if !mine {
		return false
	}
	if file, err := g.isFile(r.Context(), root); err != nil || !file {
		g.release(root, f, err)
		return false // boxo answers: a listing, or the error
	}
	err := g.streamFetch(w, r, root)
	g.release(root, f, err)
	if errors.Is(err, errStreamCut) {
		// The status line is sent: break the connection so that no client takes the short
		// body for the whole file.
		panic(http.ErrAbortHandler)
	}
	return true
}

// fetchBehind fetches file root whole into the repo, behind a request answered on demand,
// unless the gateway is fetching it already; it outlives the request (not Close).
func (g *gatewayServer) fetchBehind(root cid.Cid) {
	f, mine := g.claim(root)
	if !mine {
		return
	}
	g.mu.Lock()
	if g.ctx.Err() != nil { // closing: Close waits for the fetches started before
		g.mu.Unlock()
		g.release(root, f, g.ctx.Err())
		return
	}
	g.wg.Add(1)
	g.mu.Unlock()
	go func() {
		defer g.wg.Done()
		// A folder is not fetched behind: its blocks are fetched as requests read them.
		file, err := g.isFile(g.ctx, root)
		if err == nil && file {
			err = g.fetchWhole(g.ctx, root)
			if err != nil && g.ctx.Err() == nil {
				logger().Info("gateway: fetching behind a request failed", "root", root, "err", err)
			}
		}
		g.release(root, f, err)
	}()
}

// errStreamCut means a streamed answer ended short after its status line.
var errStreamCut = errors.New("the answer was cut short")

// trustlessAccept reports whether the request asks for a raw block or a CAR by its Accept header.
func trustlessAccept(r *http.Request) bool {
	a := r.Header.Get("Accept")
	return strings.Contains(a, "application/vnd.ipld.") || strings.Contains(a, "application/x-tar")
}

// fetchWhole fetches file root into the repo, reading it to the end.
func (g *gatewayServer) fetchWhole(ctx context.Context, root cid.Cid) error {
	rc, _, err := g.n.Cat(ctx, root, 0)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, rc)
	return errors.Join(err, rc.Close())
}

// streamFetch answers a whole-file GET of a root not held with the bytes as the fetch brings
// them, in order. An error before the status line is answered; errStreamCut means the body
// ended short.
func (g *gatewayServer) streamFetch(w http.ResponseWriter, r *http.Request, root cid.Cid) error {
	rc, size, err := g.n.Cat(r.Context(), root, 0)
	if err != nil {
		http.Error(w, err.Error(), fetchStatus(err))
		return err
	}
	defer rc.Close()
	br := bufio.NewReaderSize(rc, 64<<10)
	head, err := br.Peek(512)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return err
	}
	h := w.Header()
	h.Set("Content-Type", http.DetectContentType(head))
	h.Set("Content-Length", strconv.FormatUint(size, 10))
	h.Set("Etag", `"`+root.String()+`"`)
	h.Set("Cache-Control", immutableCache)
	h.Set("Accept-Ranges", "bytes")
	h.Set("X-Ipfs-Path", r.URL.Path)
	h.Set("X-Ipfs-Roots", root.String())
	w.WriteHeader(http.StatusOK)
	if n, err := io.Copy(w, br); err != nil || uint64(n) != size {
		return fmt.Errorf("%w: %d of %d bytes: %v", errStreamCut, n, size, err)
	}
	return nil
}

// fetchStatus is the HTTP status of a failed fetch.
func fetchStatus(err error) int {
	switch {
	case errors.Is(err, transfer.ErrNoProviders):
		return http.StatusNotFound
	case errors.Is(err, ErrRootTimeout):
		return http.StatusGatewayTimeout
	case errors.Is(err, ErrNoExchange):
		return http.StatusServiceUnavailable
	case errors.Is(err, unixfs.ErrNotFile):
		return http.StatusNotImplemented
	}
	return http.StatusBadGateway
}
