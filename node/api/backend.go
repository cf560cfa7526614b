package api

import (
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/ipfs/go-cid"
)

// Backend is what the API's handlers (Routes) need of a node: it does the work, in the API's
// types; the handlers decode requests, call it, and encode the answers. The node implements it
// (node/backend.go); the handler tests implement it with a double of their own.
//
// Its methods are called from the server's goroutines, one per request, concurrently. An error
// they return is answered with the status WithStatus gave it, else 500 (see StatusOf).
type Backend interface {
	Info
	Repo
	Exchange
	Transfers
}

// Info tells who the node is and how it runs.
type Info interface {
	ID() ID
	Peers() []Peer
	// Connect dials addr (a multiaddr ending in /p2p/ID) and returns the peer once connected.
	Connect(ctx context.Context, addr string) (Peer, error)
	Status() Status
	// Metrics serves the Prometheus exposition.
	Metrics() http.Handler
}

// Repo is the node's repo: files held, the event log, CARs.
type Repo interface {
	// Add imports r as a file named name; chunkSize 0 is the default.
	Add(ctx context.Context, r io.Reader, name string, chunkSize int) (File, error)
	// AddPath imports the folder or file of this machine at req.Path (absolute).
	AddPath(ctx context.Context, req AddPathRequest) (File, error)
	// Files lists the files held: now when at is zero, else as they were at that time.
	Files(at time.Time) ([]File, error)
	// ListDir lists the folder an IPFS path (CID/sub/dir, /ipfs/CID/...) names.
	ListDir(ctx context.Context, path string) ([]Entry, error)
	// Cat opens the file root (or the file at path, names separated by '/', under the folder
	// root) and returns its size. A file not held is fetched while it streams; Cat returns once
	// its root block is here, or with an error when it does not come within timeout (0: the
	// node's default). A fetch that fails later makes the reader's Read fail.
	Cat(ctx context.Context, root cid.Cid, path string, timeout time.Duration) (io.ReadCloser, uint64, error)
	// Events is the event log; an error when the node has none.
	Events() (EventLog, error)
	// Pin pins a held file (pin true) or lifts its pin, and returns it.
	Pin(root cid.Cid, pin bool) (File, error)
	// Export writes a CARv1 of the DAG under root to w. A DAG not held whole is an error before
	// any byte is written.
	Export(ctx context.Context, root cid.Cid, w io.Writer) error
	// Import reads a CAR from r and stores its blocks and complete roots.
	Import(ctx context.Context, r io.Reader) (ImportResult, error)
	// GC reclaims the blocks no held file needs.
	GC(ctx context.Context) (GCResult, error)
}

// EventLog is the node's event log.
type EventLog interface {
	// List calls fn with each event with Seq >= from, in order, until fn fails.
	List(from uint64, fn func(Event) error) error
	// Follow is List, then each new event as it is recorded, none missed or repeated, until ctx
	// ends (nil) or fn fails. fn is called from the calling goroutine.
	Follow(ctx context.Context, from uint64, fn func(Event) error) error
}

// Exchange shares, searches and forgets.
type Exchange interface {
	// Share adds, provides and announces the file or folder at req.Path (absolute).
	Share(ctx context.Context, req ShareRequest) (File, error)
	// Search lists what the network announced matching term.
	Search(term string) []Offer
	// Remove forgets a file (force: even a pinned one) and withdraws it if it was shared.
	Remove(ctx context.Context, root cid.Cid, force bool) error
}

// Transfers is the daemon's queue of downloads, and its uploads.
type Transfers interface {
	// Transfers lists the downloads and uploads.
	Transfers() ([]Transfer, error)
	// TransfersChanged is closed when a transfer's state next changes.
	TransfersChanged() <-chan struct{}
	// Queue queues a fetch of root, or of the entry names leads to under it (a path into a
	// folder; nil for root itself), or finds the transfer of the same (attached true).
	Queue(root cid.Cid, names []string, req FetchRequest) (t Transfer, attached bool, err error)
	// TransferAction pauses, resumes, cancels (keep: what was received) or moves to the front
	// ("top") transfer id, and returns it as it is afterwards.
	TransferAction(ctx context.Context, id, action string, keep bool) (Transfer, error)
	// WatchFetch calls send with the progress of transfer id (at most four times a second),
	// then with one "done" or "error" event when it ends, and returns. When ctx ends first, it
	// cancels the transfer (keeping what was received) unless attached, and returns.
	WatchFetch(ctx context.Context, id string, attached bool, send func(FetchEvent))
}

// statusError is an error with the HTTP status that answers it.
type statusError struct {
	code int
	err  error
}

func (e *statusError) Error() string { return e.err.Error() }
func (e *statusError) Unwrap() error { return e.err }

// WithStatus gives err the HTTP status code that answers it (nil stays nil). Wrapping the result
// (fmt.Errorf with %w) keeps the status.
func WithStatus(code int, err error) error {
	if err == nil {
		return nil
	}
	return &statusError{code: code, err: err}
}

// StatusOf is the HTTP status of err: the one WithStatus gave it, else 500.
func StatusOf(err error) int {
	if se := (*statusError)(nil); errors.As(err, &se) {
		return se.code
	}
	return http.StatusInternalServerError
}
