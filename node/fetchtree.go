package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"peer/store"
	"peer/store/unixfs"
	"peer/transfer"
)

// isFolder tells whether root is a UnixFS folder, fetching its root block (and only that) when
// it is not here. A raw root is a file without asking anyone; a root block that is not UnixFS is
// left to the file fetch to refuse. The block fetched is not kept: the fetch that follows gets it
// again (a round trip), so that a peer whose root lies about its DAG is blamed for it.
func (ex *exchange) isFolder(ctx context.Context, root, via cid.Cid) (bool, error) {
	if root.Type() != cid.DagProtobuf {
		return false, nil
	}
	block, err := ex.st.GetBlock(ctx, root)
	if err != nil {
		if block, err = ex.fetchBlock(ctx, root, via); err != nil {
			return false, err
		}
	}
	kind, _, err := unixfs.Inspect(root, block)
	return err == nil && kind == unixfs.Directory, nil
}

// fetchBlock fetches block c alone, verified, from the providers of via.
func (ex *exchange) fetchBlock(ctx context.Context, c, via cid.Cid) ([]byte, error) {
	var got []byte
	_, err := ex.xfer.Fetch(ctx, transfer.Request{
		Root:      c,
		Providers: ex.likelyProviders(via),
		Find:      func(ctx context.Context) <-chan peer.AddrInfo { return ex.findProviders(ctx, via) },
		Expand:    func(cid.Cid, []byte) ([]cid.Cid, error) { return nil, nil },
		Deliver: func(_ cid.Cid, b []byte) error {
			ex.n.metrics.BlocksReceived.Inc()
			got = append([]byte(nil), b...)
			return nil
		},
	})
	return got, err
}

// resolve walks names from the folder root to the CID they lead to, fetching only the blocks on
// the path (a sharded folder's shards on the name's hash path) that are not here; those it
// fetches are kept in the repo, so that a fetch of the path again asks for none of them.
func (ex *exchange) resolve(ctx context.Context, root cid.Cid, names []string) (cid.Cid, error) {
	get := func(ctx context.Context, c cid.Cid) ([]byte, error) {
		if b, err := ex.st.GetBlock(ctx, c); err == nil {
			return b, nil
		}
		b, err := ex.fetchBlock(ctx, c, root)
		if err != nil {
			return nil, err
		}
		return b, ex.st.PutBlock(c, b)
	}
	c, err := unixfs.Resolve(ctx, root, names, get)
	if err != nil {
		return cid.Undef, fmt.Errorf("%s/%s: %w", root, strings.Join(names, "/"), err)
	}
	return c, nil
}

// fetchTree fetches the folder root into the repo (every block verified; what is already here,
// from an interrupted fetch or another folder, is not asked for again), records it as held, and
// writes its tree as the new directory out: first under PartPath(out, root), renamed to out once
// every file is written and durable.
func (ex *exchange) fetchTree(ctx context.Context, root cid.Cid, name, out string, opts FetchOptions) (FetchResult, error) {
	if _, err := os.Lstat(out); err == nil {
		return FetchResult{}, fmt.Errorf("%w: %s (a folder is never written over: use -o to choose another name)", ErrExists, out)
	}
	d, err := ex.begin(root, name, "")
	if err != nil {
		return FetchResult{}, err
	}
	defer ex.end(root)
	var mu sync.Mutex
	var last FetchProgress // the transfer's last figures, which the writing phase keeps showing
	topts := opts
	if opts.Progress != nil {
		topts.Progress = func(p FetchProgress) {
			mu.Lock()
			last = p
			mu.Unlock()
			opts.Progress(p)
		}
	}
	stats, err := ex.run(ctx, d, topts)
	if err == nil {
		err = d.Complete()
	}
	if err != nil {
		ex.n.metrics.Fetches.WithLabelValues("failed").Inc()
		return FetchResult{Stats: stats, Resumed: d.Found()}, errors.Join(err, d.Fail(err))
	}
	f, _ := ex.st.File(root)
	part := store.PartPath(out, root)
	if st, err := os.Lstat(part); err == nil {
		// A tree an interrupted write left: every byte of it is in the repo, so it is written again.
		if !st.IsDir() {
			return FetchResult{}, fmt.Errorf("%s exists and is not a folder this fetch wrote", part)
		}
		if err := os.RemoveAll(part); err != nil { // never follows a link
			return FetchResult{}, err
		}
	}
	mu.Lock()
	p := last
	mu.Unlock()
	p.Size, p.Have, p.Files = f.Size, f.Size, f.Files
	err = ex.st.WriteTree(ctx, root, part, func(uint64) {
		p.FilesDone++
		if opts.Progress != nil && p.FilesDone%256 == 0 {
			opts.Progress(p)
		}
	})
	if err == nil {
		err = os.Rename(part, out)
	}
	if err != nil {
		ex.n.metrics.Fetches.WithLabelValues("failed").Inc()
		return FetchResult{Stats: stats, Resumed: d.Found()}, errors.Join(fmt.Errorf("writing %s: %w", out, err), os.RemoveAll(part))
	}
	if opts.Progress != nil {
		opts.Progress(p)
	}
	ex.n.metrics.Fetches.WithLabelValues("completed").Inc()
	ex.provide(root)
	return FetchResult{File: f, Path: out, Stats: stats, Resumed: d.Found()}, nil
}
