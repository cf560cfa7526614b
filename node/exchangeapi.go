package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/ipfs/go-cid"

	"peer/node/api"
	"peer/store"
	"peer/store/unixfs"
	"peer/transfer"
)

// The API's calls that share, search and forget (api.Exchange), and Cat.

// statusOf maps an error to the HTTP status that describes it.
func statusOf(err error) int {
	switch {
	case errors.Is(err, store.ErrUnknownFile), errors.Is(err, store.ErrNotFound), errors.Is(err, transfer.ErrNoProviders):
		return http.StatusNotFound
	case errors.Is(err, ErrExists), errors.Is(err, ErrIsDir), errors.Is(err, store.ErrBusy), errors.Is(err, store.ErrPinned), errors.Is(err, store.ErrFetching),
		errors.Is(err, store.ErrUnknownPart):
		return http.StatusConflict
	case errors.Is(err, ErrUnknownTransfer):
		return http.StatusNotFound
	case errors.Is(err, ErrTransferState):
		return http.StatusConflict
	case errors.Is(err, ErrNotStarted), errors.Is(err, ErrNoExchange):
		return http.StatusServiceUnavailable
	case errors.Is(err, ErrRootTimeout):
		return http.StatusGatewayTimeout
	case errors.Is(err, unixfs.ErrNotFile):
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

// Share adds, provides and announces the file or folder at req.Path.
func (b apiBackend) Share(ctx context.Context, req api.ShareRequest) (api.File, error) {
	f, err := b.n.Share(ctx, req.Path, ShareOptions{Copy: req.Copy, Hidden: req.Hidden})
	if err != nil {
		return api.File{}, apiErr(err)
	}
	return APIFile(f), nil
}

// Search lists what the network announced matching term.
func (b apiBackend) Search(term string) []api.Offer { return APIOffers(b.n.Search(term)) }

// Remove forgets a file, unpinning it first when force.
func (b apiBackend) Remove(ctx context.Context, root cid.Cid, force bool) error {
	if force {
		st, err := b.needStore()
		if err != nil {
			return err
		}
		if _, err := st.Unpin(root); err != nil && !errors.Is(err, store.ErrUnknownFile) {
			return apiErr(err)
		}
	}
	return apiErr(b.n.Remove(ctx, root))
}

// GC reclaims the blocks no held file needs.
func (b apiBackend) GC(ctx context.Context) (api.GCResult, error) {
	st, err := b.needStore()
	if err != nil {
		return api.GCResult{}, err
	}
	res, err := st.GC(ctx)
	if err != nil {
		return api.GCResult{}, apiErr(err)
	}
	return APIGCResult(res), nil
}

func progressOf(p FetchProgress) api.FetchProgress {
	return api.FetchProgress{Blocks: p.Blocks, BlocksDone: p.BlocksDone, Bytes: int64(p.Size), BytesDone: int64(p.Have),
		Resumed: int64(p.Found), Received: p.Progress.Bytes, Peers: p.Peers, Rate: p.Rate, Duplicates: p.Duplicates,
		Files: p.Files, FilesDone: p.FilesDone}
}

// ErrRootTimeout means a file's root block did not arrive in the time Cat was given: providers
// may exist but none sent it.
var ErrRootTimeout = errors.New("timed out waiting for the file's root block")

// DefaultCatTimeout is how long Cat waits for the root block of a file it does not hold when it
// is given no timeout.
const DefaultCatTimeout = 60 * time.Second

// Cat streams file root and returns its size: from the store when held, else fetched into the
// repo while it streams, in order, as blocks arrive. For a fetched file it returns only once the
// root block is here (so the size is known and a caller can answer before the first byte), or
// with the error that stopped it: one wrapping transfer.ErrNoProviders when no provider has the
// file, ErrRootTimeout when rootTimeout (0: DefaultCatTimeout) passed first. A fetch that fails
// later makes the reader's Read fail after the bytes that came before.
func (n *Node) Cat(ctx context.Context, root cid.Cid, rootTimeout time.Duration) (io.ReadCloser, uint64, error) {
	st := n.opts.Store
	if st == nil {
		return nil, 0, ErrNoExchange
	}
	if f, ok := st.File(root); ok && f.State == store.Complete {
		rc, err := st.Cat(ctx, root)
		return rc, f.Size, err
	}
	if t := root.Type(); t != cid.Raw && t != cid.DagProtobuf {
		_, err := st.Cat(ctx, root) // not a file: its error says so
		return nil, 0, err
	}
	ex, err := n.exchange()
	if err != nil {
		return nil, 0, err
	}
	d, err := ex.begin(root, ex.announcedName(root), "")
	if err != nil {
		return nil, 0, err
	}
	fctx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer ex.end(root)
		_, err := ex.run(fctx, d, FetchOptions{})
		if err == nil {
			err = d.Complete()
		}
		if err != nil {
			n.metrics.Fetches.WithLabelValues("failed").Inc()
			cancel(err)
			_ = d.Fail(err)
			return
		}
		n.metrics.Fetches.WithLabelValues("completed").Inc()
		ex.provide(root)
	}()
	stop := func(err error) (io.ReadCloser, uint64, error) {
		cancel(err)
		<-done
		cancel(nil)
		return nil, 0, err
	}
	if rootTimeout <= 0 {
		rootTimeout = DefaultCatTimeout
	}
	wctx, wcancel := context.WithTimeout(fctx, rootTimeout)
	block, err := d.Wait(wctx, root)
	wcancel()
	if err != nil {
		switch cause := context.Cause(fctx); {
		case cause != nil: // the fetch ended (no providers, say) or the caller went away
			return stop(cause)
		case errors.Is(err, context.DeadlineExceeded):
			return stop(fmt.Errorf("%w: no provider sent %s within %s", ErrRootTimeout, root, rootTimeout))
		default:
			return stop(err)
		}
	}
	nd, err := unixfs.ParseNode(root, block)
	if err != nil {
		return stop(err)
	}
	get := func(ctx context.Context, c cid.Cid) ([]byte, error) {
		b, err := d.Wait(ctx, c)
		if err != nil && context.Cause(fctx) != nil {
			return nil, context.Cause(fctx)
		}
		return b, err
	}
	return &fetchReader{ReadCloser: unixfs.NewReader(fctx, root, get), cancel: cancel, done: done}, nd.Size, nil
}

// fetchReader lets a fetch finish when its bytes were read to the end, and stops it otherwise.
type fetchReader struct {
	io.ReadCloser
	cancel context.CancelCauseFunc
	done   chan struct{}
	eof    bool
}

func (r *fetchReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	if err == io.EOF {
		r.eof = true
	}
	return n, err
}

func (r *fetchReader) Close() error {
	err := r.ReadCloser.Close()
	if !r.eof {
		r.cancel(errors.New("reader closed"))
	}
	<-r.done
	r.cancel(nil)
	return err
}
