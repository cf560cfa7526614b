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
)

// The API's calls into the store (api.Repo): every one is in this file.

func (b apiBackend) needStore() (*store.Store, error) {
	st := b.n.opts.Store
	if st == nil {
		return nil, api.WithStatus(http.StatusServiceUnavailable, errors.New("this node runs without a repo"))
	}
	return st, nil
}

// Export writes a CARv1 of the DAG under root: a DAG the repo does not hold whole is a 404.
func (b apiBackend) Export(ctx context.Context, root cid.Cid, w io.Writer) error {
	st, err := b.needStore()
	if err != nil {
		return err
	}
	_, err = st.Export(ctx, root, w)
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrIncomplete) {
		return api.WithStatus(http.StatusNotFound, err)
	}
	return err
}

// Import reads a CAR into the store: one that is not valid is a 400, with nothing recorded.
func (b apiBackend) Import(ctx context.Context, r io.Reader) (api.ImportResult, error) {
	st, err := b.needStore()
	if err != nil {
		return api.ImportResult{}, err
	}
	res, err := st.ImportCAR(ctx, r)
	if err != nil {
		status := http.StatusInternalServerError
		if errors.Is(err, store.ErrBadCAR) {
			status = http.StatusBadRequest
		}
		return api.ImportResult{}, api.WithStatus(status, err)
	}
	return APIImportResult(res), nil
}

// Add imports r, streamed into the store, never held in memory.
func (b apiBackend) Add(ctx context.Context, r io.Reader, name string, chunkSize int) (api.File, error) {
	st, err := b.needStore()
	if err != nil {
		return api.File{}, err
	}
	f, err := st.Add(ctx, r, name, store.AddOptions{ChunkSize: chunkSize})
	if err != nil {
		return api.File{}, err
	}
	return APIFile(f), nil
}

// AddPath imports a folder or file of this machine, with everything in it.
func (b apiBackend) AddPath(ctx context.Context, req api.AddPathRequest) (api.File, error) {
	st, err := b.needStore()
	if err != nil {
		return api.File{}, err
	}
	f, err := st.AddTree(ctx, req.Path, store.AddOptions{ChunkSize: req.ChunkSize, Hidden: req.Hidden})
	if err != nil {
		return api.File{}, err
	}
	return APIFile(f), nil
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

// ListDir lists the folder path names (an IPFS path).
func (b apiBackend) ListDir(ctx context.Context, path string) ([]api.Entry, error) {
	st, err := b.needStore()
	if err != nil {
		return nil, err
	}
	root, names, err := unixfs.ParsePath(path)
	if err != nil {
		return nil, api.WithStatus(http.StatusBadRequest, err)
	}
	c, err := st.Resolve(ctx, root, names)
	if err != nil {
		return nil, api.WithStatus(pathStatus(err), fmt.Errorf("resolving %s: %w", path, err))
	}
	es, err := st.ListDir(ctx, c)
	if err != nil {
		return nil, api.WithStatus(pathStatus(err), fmt.Errorf("listing %s: %w", path, err))
	}
	return APIEntries(es), nil
}

// Files lists the files held now (at zero), or as a replay of the log says they were at at.
func (b apiBackend) Files(at time.Time) ([]api.File, error) {
	st, err := b.needStore()
	if err != nil {
		return nil, err
	}
	if at.IsZero() {
		return APIFiles(st.Files()), nil
	}
	fs, err := st.FilesAt(at)
	if err != nil {
		return nil, err
	}
	return APIFiles(fs), nil
}

// Cat opens file root, or the file at path under the folder root (from the blocks held here);
// Node.Cat says how a file not held is fetched.
func (b apiBackend) Cat(ctx context.Context, root cid.Cid, path string, timeout time.Duration) (io.ReadCloser, uint64, error) {
	st, err := b.needStore()
	if err != nil {
		return nil, 0, err
	}
	var rc io.ReadCloser
	var size uint64
	if path != "" {
		if rc, size, err = catPath(ctx, st, root, path); err != nil {
			err = fmt.Errorf("reading %s/%s: %w", root, path, err)
		}
	} else {
		rc, size, err = b.n.Cat(ctx, root, timeout)
	}
	if err != nil {
		return nil, 0, api.WithStatus(pathStatus(err), err)
	}
	return rc, size, nil
}

// catPath opens the file at path (names separated by '/') under the folder root, from the blocks
// held here.
func catPath(ctx context.Context, st *store.Store, root cid.Cid, path string) (io.ReadCloser, uint64, error) {
	_, names, err := unixfs.ParsePath(root.String() + "/" + path)
	if err != nil {
		return nil, 0, err
	}
	c, err := st.Resolve(ctx, root, names)
	if err != nil {
		return nil, 0, err
	}
	block, err := st.GetBlock(ctx, c)
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
	rc, err := st.Cat(ctx, c)
	return rc, size, err
}

// Events is the store's event log.
func (b apiBackend) Events() (api.EventLog, error) {
	st, err := b.needStore()
	if err != nil {
		return nil, err
	}
	return eventLog{st}, nil
}

// eventLog is the store's log in the API's types.
type eventLog struct{ st *store.Store }

func (l eventLog) List(from uint64, fn func(api.Event) error) error {
	return l.st.Events(from, func(e store.Event) error { return fn(APIEvent(e)) })
}

// Follow never misses or repeats an event however slowly fn returns: store.Follow refills a
// gap from the log.
func (l eventLog) Follow(ctx context.Context, from uint64, fn func(api.Event) error) error {
	return l.st.Follow(ctx, from, func(e store.Event) error { return fn(APIEvent(e)) })
}

// Pin pins (pin true) a held file, so that Remove refuses it, or lifts its pin.
func (b apiBackend) Pin(root cid.Cid, pin bool) (api.File, error) {
	st, err := b.needStore()
	if err != nil {
		return api.File{}, err
	}
	set := st.Unpin
	if pin {
		set = st.Pin
	}
	f, err := set(root)
	if err != nil {
		return api.File{}, apiErr(err)
	}
	return APIFile(f), nil
}
