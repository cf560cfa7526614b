package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

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

// fetchTree fetches the folder root as the new directory out: every block verified, each file
// written once, at its offsets, in the partial tree store.PartPath(out, root), which is renamed to
// out once every file is written and durable; the folder is then held in place, its files served
// from out. What is already here (from an interrupted fetch, found in the partial tree, or from
// another folder) is not asked for again.
func (ex *exchange) fetchTree(ctx context.Context, root cid.Cid, name, out string, opts FetchOptions) (FetchResult, error) {
	if f, _ := ex.st.File(root); !store.TreeMovedInPlace(f, out) {
		if _, err := os.Lstat(out); err == nil {
			return FetchResult{}, fmt.Errorf("%w: %s (a folder is never written over: use -o to choose another name)", ErrExists, out)
		}
	}
	d, err := ex.beginTree(root, name, out)
	if err != nil {
		return FetchResult{}, err
	}
	defer ex.end(root)
	topts := opts
	if opts.Progress != nil {
		topts.Progress = func(p FetchProgress) {
			p.Files, p.FilesDone, _ = d.TreeFiles()
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
	if opts.Progress != nil {
		opts.Progress(FetchProgress{Progress: transfer.Progress{BlocksDone: stats.Blocks + stats.LocalBlocks, Blocks: stats.Blocks + stats.LocalBlocks,
			Bytes: stats.Received, BytesDone: stats.Bytes}, Size: f.Size, Have: f.Size, Found: d.Found(), Files: f.Files, FilesDone: f.Files})
	}
	ex.n.metrics.Fetches.WithLabelValues("completed").Inc()
	ex.provide(root)
	return FetchResult{File: f, Path: out, Stats: stats, Resumed: d.Found()}, nil
}

// beginTree is begin for a folder.
func (ex *exchange) beginTree(root cid.Cid, name, out string) (*store.Download, error) {
	ex.mu.Lock()
	defer ex.mu.Unlock()
	if _, busy := ex.fetching[root.String()]; busy {
		return nil, fmt.Errorf("%s is already being fetched", root)
	}
	d, err := ex.st.StartTreeDownload(root, name, out)
	if err != nil {
		return nil, err
	}
	ex.fetching[root.String()] = d
	ex.n.metrics.Fetches.WithLabelValues("started").Inc()
	return d, nil
}
