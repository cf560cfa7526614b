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
	"github.com/ipfs/boxo/exchange/offline"
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
// serves (an offline block service: it never asks the network itself). A root not held here is
// fetched first through Node.Cat: a whole-file request streams while the fetch runs; any other
// request (a range, a path, a raw block or a CAR) waits until the file is complete.
type gatewayServer struct {
	n           *Node
	addr        string
	allowRemote bool
	dir         string
	boxo        http.Handler

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
	return &gatewayServer{n: n, addr: addr, allowRemote: allowRemote, dir: dir, fetching: map[cid.Cid]*gatewayFetch{}}, nil
}

// start builds the handler over st, listens, writes the URL file and serves until Close.
func (g *gatewayServer) start(ctx context.Context, st *store.Store) error {
	bs := servedStore{st: st}
	backend, err := boxogw.NewBlocksBackend(blockservice.New(bs, offline.Exchange(bs)),
		boxogw.WithPrometheusRegistry(g.n.reg))
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
	g.mu.Unlock()
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
	if r.Method == http.MethodGet && !g.held(root) && !g.fetchFirst(w, r, root, sub) {
		return
	}
	g.boxo.ServeHTTP(w, r)
}

// fetchFirst brings a root that is not held into the repo, one fetch per root however many
// requests ask: a whole-file GET that starts the fetch streams it and is answered (false); any
// other request waits for the whole file and returns true to be answered from the repo, or
// answers an error and returns false.
func (g *gatewayServer) fetchFirst(w http.ResponseWriter, r *http.Request, root cid.Cid, sub string) bool {
	whole := sub == "" && r.Header.Get("Range") == "" && r.URL.Query().Get("format") == "" && !trustlessAccept(r)
	for tries := 0; !g.held(root); tries++ {
		if tries == 3 {
			http.Error(w, fmt.Sprintf("%s: the fetches of others ended without it", root), http.StatusBadGateway)
			return false
		}
		f, mine := g.claim(root)
		if !mine {
			select {
			case <-f.done:
			case <-r.Context().Done():
				return false
			}
			// A fetch that failed for want of the root is this request's answer too; one whose
			// client went away is tried again.
			if f.err != nil && !errors.Is(f.err, context.Canceled) && !errors.Is(f.err, errStreamCut) {
				http.Error(w, notHeldMessage(f.err), fetchStatus(f.err))
				return false
			}
			continue
		}
		if whole {
			err := g.streamFetch(w, r, root)
			g.release(root, f, err)
			if errors.Is(err, errStreamCut) {
				// The status line is sent: break the connection so that no client takes the
				// short body for the whole file.
				panic(http.ErrAbortHandler)
			}
			return false
		}
		err := g.fetchWhole(r.Context(), root)
		g.release(root, f, err)
		if err != nil {
			http.Error(w, notHeldMessage(err), fetchStatus(err))
			return false
		}
	}
	return true
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
		http.Error(w, notHeldMessage(err), fetchStatus(err))
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

// notHeldMessage is the answer's text when a root not held could not be fetched.
func notHeldMessage(err error) string {
	if errors.Is(err, unixfs.ErrNotFile) {
		return "a folder that is not held here is not fetched by the gateway: fetch it into the repo first (" + err.Error() + ")"
	}
	return err.Error()
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
