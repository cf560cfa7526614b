package store

import "sync"

// Downloads is the fetches in progress, by root: what Files reports a partial file's progress
// from, what Remove refuses to take away, and what serving asks about blocks that no event names
// yet. Each Download (download.go) has its own lock; this one guards only the set.
type Downloads struct {
	mu     sync.Mutex
	active map[string]*Download
}

func newDownloads() *Downloads { return &Downloads{active: map[string]*Download{}} }

// get returns the download in progress of root (a CID string), or nil.
func (ds *Downloads) get(root string) *Download {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	return ds.active[root]
}

// add makes d the download in progress of its root.
func (ds *Downloads) add(d *Download) {
	ds.mu.Lock()
	ds.active[d.root.String()] = d
	ds.mu.Unlock()
}

// remove forgets d, if it is still the download in progress of its root.
func (ds *Downloads) remove(d *Download) {
	ds.mu.Lock()
	if ds.active[d.root.String()] == d {
		delete(ds.active, d.root.String())
	}
	ds.mu.Unlock()
}

// knows reports whether a download in progress has learnt of block k.
func (ds *Downloads) knows(k string) bool {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	for _, d := range ds.active {
		if d.knows(k) {
			return true
		}
	}
	return false
}
