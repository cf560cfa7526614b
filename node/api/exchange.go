package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// Paths of the endpoints that share, fetch and search.
const (
	PathShare  = "/api/v1/share"
	PathFetch  = "/api/v1/fetch"
	PathSearch = "/api/v1/search"
	PathRm     = "/api/v1/rm"
	PathGC     = "/api/v1/gc"
)

// ShareRequest is the body of POST /api/v1/share: a file or folder on the daemon's machine.
type ShareRequest struct {
	Path   string `json:"path"`             // absolute
	Copy   bool   `json:"copy"`             // import the bytes instead of serving the files in place
	Hidden bool   `json:"hidden,omitempty"` // in a folder, include names starting with '.'
}

// FetchRequest is the body of POST /api/v1/fetch.
type FetchRequest struct {
	CID    string `json:"cid"`              // a CID, or a path into a folder: CID/sub/file or /ipfs/CID/sub/file
	Output string `json:"output,omitempty"` // absolute path of the file to write
	Dir    string `json:"dir,omitempty"`    // absolute directory for the announced name, when no output
	Force  bool   `json:"force,omitempty"`  // overwrite an existing output
	Limit  int64  `json:"limit,omitempty"`  // bytes/s for this fetch, 0: only the node's download_limit
}

// FetchProgress is how far a fetch is.
type FetchProgress struct {
	Blocks     int     `json:"blocks"`      // blocks known so far (the DAG unfolds as it arrives)
	BlocksDone int     `json:"blocks_done"` // verified and stored, or already here
	Bytes      int64   `json:"bytes"`       // the file's size (0 until the root block is here)
	BytesDone  int64   `json:"bytes_done"`  // bytes of the file here and verified, resumed ones included
	Resumed    int64   `json:"resumed"`     // of those, bytes that were here before this fetch began
	Received   int64   `json:"received"`    // bytes received from peers by this fetch (duplicates included)
	Peers      int     `json:"peers"`       // peers that delivered at least one verified block
	Rate       float64 `json:"rate"`        // bytes/s received, recent
	Duplicates int64   `json:"duplicates"`  // bytes received twice
	// Files and FilesDone count a folder's files: those named so far (all of them once every
	// folder node is here), and those written whole. 0 for a single file.
	Files     uint64 `json:"files,omitempty"`
	FilesDone uint64 `json:"files_done,omitempty"`
}

// FetchEvent is one line of the NDJSON answer of POST /api/v1/fetch: progress lines, then one
// "done" or "error" line.
type FetchEvent struct {
	Type string `json:"type"` // "progress", "done", "error"
	// Transfer is the ID of the daemon's transfer the request queued or attached to.
	Transfer string `json:"transfer,omitempty"`
	// State is the transfer's state when the request queued or found it ("queued" line).
	State    string         `json:"state,omitempty"`
	Progress *FetchProgress `json:"progress,omitempty"`
	File     *File          `json:"file,omitempty"`
	Path     string         `json:"path,omitempty"`
	Error    string         `json:"error,omitempty"`
	// Summary of a finished fetch.
	Received   int64         `json:"received,omitempty"` // bytes received from peers by this fetch
	Resumed    int64         `json:"resumed,omitempty"`  // bytes of the file that were already here
	Duplicates int64         `json:"duplicates,omitempty"`
	Peers      int           `json:"peers,omitempty"` // peers that delivered at least one verified block
	BadBlocks  int           `json:"bad_blocks,omitempty"`
	Duration   time.Duration `json:"duration_ns,omitempty"`
}

// RmRequest is the body of POST /api/v1/rm.
type RmRequest struct {
	CID   string `json:"cid"`
	Force bool   `json:"force,omitempty"` // remove a pinned file too
}

// Share asks the daemon to share the file or folder at path (absolute, on the daemon's machine).
func (c *Client) Share(ctx context.Context, req ShareRequest) (File, error) {
	var f File
	if err := c.Call(ctx, http.MethodPost, PathShare, req, &f); err != nil {
		return f, err
	}
	return f, fillRoot(&f)
}

// Fetch asks the daemon to fetch a file and calls fn with each event until the last ("done" or
// "error"), which it returns. A lost connection is an error; the daemon then stops the fetch,
// and the same request later resumes it.
func (c *Client) Fetch(ctx context.Context, req FetchRequest, fn func(FetchEvent)) (FetchEvent, error) {
	resp, err := c.Request(ctx, http.MethodPost, PathFetch, jsonBody(req), "application/json")
	if err != nil {
		return FetchEvent{}, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var ev FetchEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return FetchEvent{}, fmt.Errorf("reading fetch progress: %w", err)
		}
		if ev.File != nil {
			if err := fillRoot(ev.File); err != nil {
				return ev, err
			}
		}
		if fn != nil {
			fn(ev)
		}
		switch ev.Type {
		case "done":
			return ev, nil
		case "error":
			return ev, fmt.Errorf("%s", ev.Error)
		}
	}
	if err := sc.Err(); err != nil {
		return FetchEvent{}, fmt.Errorf("fetch interrupted: %w", err)
	}
	return FetchEvent{}, fmt.Errorf("fetch interrupted: the daemon closed the connection")
}

// Search lists what the network announced matching term.
func (c *Client) Search(ctx context.Context, term string) ([]Offer, error) {
	var out []Offer
	err := c.Call(ctx, http.MethodGet, PathSearch+"?q="+url.QueryEscape(term), nil, &out)
	return out, err
}

// Remove forgets a file (and withdraws it if it was shared).
func (c *Client) Remove(ctx context.Context, cid string) error {
	return c.Call(ctx, http.MethodPost, PathRm, RmRequest{CID: cid}, nil)
}

// GC reclaims blocks no held file needs.
func (c *Client) GC(ctx context.Context) (GCResult, error) {
	var res GCResult
	err := c.Call(ctx, http.MethodPost, PathGC, nil, &res)
	return res, err
}

// LsAt lists the files held at time t.
func (c *Client) LsAt(ctx context.Context, t time.Time) ([]File, error) {
	var fs []File
	if err := c.Call(ctx, http.MethodGet, PathLs+"?at="+url.QueryEscape(t.Format(time.RFC3339Nano)), nil, &fs); err != nil {
		return nil, err
	}
	for i := range fs {
		if err := fillRoot(&fs[i]); err != nil {
			return nil, err
		}
	}
	return fs, nil
}

func jsonBody(v any) io.Reader {
	b, _ := json.Marshal(v) // the request types always marshal
	return bytes.NewReader(b)
}
