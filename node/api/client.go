package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ipfs/go-cid"

	"peer/internal/fsys"
)

// ErrNoDaemon means no daemon runs on the repo (or its address file is stale): start one with
// `peer daemon`, or use a command that works offline.
var ErrNoDaemon = errors.New("no daemon is running")

// ErrStarting means the daemon's API answers but the daemon is still starting (bootstrapping):
// try again in a moment. A *StatusError of such an answer matches it with errors.Is.
var ErrStarting = errors.New("the daemon is starting")

// maxAnswer caps a JSON answer read by the client (streams such as cat are not capped).
const maxAnswer = 64 << 20

// Client talks to a running daemon. Its methods are safe for concurrent use.
type Client struct {
	base  string
	token string
	hc    *http.Client
}

// NewClient returns a client for the daemon at baseURL (e.g. http://127.0.0.1:5040) with token.
func NewClient(baseURL, token string) *Client {
	return &Client{base: strings.TrimRight(baseURL, "/"), token: token, hc: &http.Client{}}
}

// ForRepo finds the daemon of repo dir from its address and token files. The error wraps
// ErrNoDaemon when the address file is missing.
func ForRepo(dir string) (*Client, error) {
	b, err := os.ReadFile(filepath.Join(dir, AddrFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w on repo %s (start one with `peer daemon`)", ErrNoDaemon, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("reading daemon address: %w", err)
	}
	tok, err := os.ReadFile(filepath.Join(dir, TokenFile))
	if err != nil {
		return nil, fmt.Errorf("reading api token: %w", err)
	}
	return NewClient(strings.TrimSpace(string(b)), strings.TrimSpace(string(tok))), nil
}

// URL is the daemon's base URL.
func (c *Client) URL() string { return c.base }

// Request sends an authenticated request to path (which may carry a query) and returns the
// answer when its status is 2xx; otherwise it returns the daemon's error message. The caller
// closes the body. It is the building block for endpoints without a typed method.
func (c *Client) Request(ctx context.Context, method, path string, body io.Reader, contentType string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if fsys.IsConnRefused(err) {
			return nil, fmt.Errorf("%w at %s (its address file is stale; start one with `peer daemon`)", ErrNoDaemon, c.base)
		}
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		return nil, decodeError(resp)
	}
	return resp, nil
}

// StatusError is a non-2xx answer of the daemon.
type StatusError struct {
	Code    int
	Message string
	// Starting is set when the daemon answered that it is still starting.
	Starting bool
}

// Is makes a "still starting" answer match ErrStarting.
func (e *StatusError) Is(target error) bool { return target == ErrStarting && e.Starting }

// Error is the daemon's message alone: it is written for the user, and the status code is in
// Code for programs.
func (e *StatusError) Error() string { return e.Message }

func decodeError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e Error
	if json.Unmarshal(b, &e) == nil && e.Error != "" {
		return &StatusError{Code: resp.StatusCode, Message: e.Error, Starting: resp.StatusCode == http.StatusServiceUnavailable && e.Status == StatusStarting}
	}
	msg := strings.TrimSpace(string(b))
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	return &StatusError{Code: resp.StatusCode, Message: msg}
}

// Call sends in (as JSON, when not nil) and decodes the JSON answer into out (when not nil).
func (c *Client) Call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	ct := ""
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body, ct = bytes.NewReader(b), "application/json"
	}
	resp, err := c.Request(ctx, method, path, body, ct)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, err := io.Copy(io.Discard, io.LimitReader(resp.Body, maxAnswer))
		return err
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxAnswer)).Decode(out); err != nil {
		return fmt.Errorf("reading answer of %s: %w", path, err)
	}
	return nil
}

// Health checks that the daemon answers; it needs no token.
func (c *Client) Health(ctx context.Context) error {
	return c.Call(ctx, http.MethodGet, PathHealth, nil, nil)
}

// ID returns the node's peer ID and addresses.
func (c *Client) ID(ctx context.Context) (ID, error) {
	var id ID
	err := c.Call(ctx, http.MethodGet, PathID, nil, &id)
	return id, err
}

// Peers lists the connected peers.
func (c *Client) Peers(ctx context.Context) ([]Peer, error) {
	var ps []Peer
	err := c.Call(ctx, http.MethodGet, PathPeers, nil, &ps)
	return ps, err
}

// Connect dials addr (a multiaddr ending in /p2p/ID) and returns the peer once connected.
func (c *Client) Connect(ctx context.Context, addr string) (Peer, error) {
	var p Peer
	err := c.Call(ctx, http.MethodPost, PathConnect, ConnectRequest{Addr: addr}, &p)
	return p, err
}

// Status returns the node's summary.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var s Status
	err := c.Call(ctx, http.MethodGet, PathStatus, nil, &s)
	return s, err
}

// Add streams r to the daemon, which imports it as name.
func (c *Client) Add(ctx context.Context, r io.Reader, name string) (File, error) {
	resp, err := c.Request(ctx, http.MethodPost, PathAdd+"?name="+url.QueryEscape(name), r, "application/octet-stream")
	if err != nil {
		return File{}, err
	}
	defer resp.Body.Close()
	var f File
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxAnswer)).Decode(&f); err != nil {
		return f, fmt.Errorf("reading answer of add: %w", err)
	}
	return f, fillRoot(&f)
}

func fillRoot(f *File) error {
	if f.CID == "" {
		return nil
	}
	c, err := cid.Decode(f.CID)
	if err != nil {
		return fmt.Errorf("daemon sent a bad CID %q: %w", f.CID, err)
	}
	f.Root = c
	return nil
}

// Ls lists the files the node holds.
func (c *Client) Ls(ctx context.Context) ([]File, error) {
	var fs []File
	if err := c.Call(ctx, http.MethodGet, PathLs, nil, &fs); err != nil {
		return nil, err
	}
	for i := range fs {
		if err := fillRoot(&fs[i]); err != nil {
			return nil, err
		}
	}
	return fs, nil
}

// AddPath has the daemon import the folder or file at req.Path (absolute) itself.
func (c *Client) AddPath(ctx context.Context, req AddPathRequest) (File, error) {
	var f File
	if err := c.Call(ctx, http.MethodPost, PathAddPath, req, &f); err != nil {
		return f, err
	}
	return f, fillRoot(&f)
}

// LsDir lists the entries of the folder an IPFS path (CID/sub/dir or /ipfs/CID/...) names.
func (c *Client) LsDir(ctx context.Context, path string) ([]Entry, error) {
	var es []Entry
	err := c.Call(ctx, http.MethodGet, PathLs+"?path="+url.QueryEscape(path), nil, &es)
	return es, err
}

// CatPath streams the bytes of the file at names under root. The caller closes the reader.
func (c *Client) CatPath(ctx context.Context, root cid.Cid, names []string) (io.ReadCloser, error) {
	p := PathCat + root.String()
	if len(names) > 0 {
		p += "?path=" + url.QueryEscape(strings.Join(names, "/"))
	}
	resp, err := c.Request(ctx, http.MethodGet, p, nil, "")
	if err != nil {
		return nil, err
	}
	return &catReader{body: resp.Body, root: root, want: resp.ContentLength}, nil
}

// Cat streams the bytes of file root. The daemon fetches a file it does not hold; timeout bounds
// its wait for the file's root block (0: the daemon's default). The reader's Read fails, after
// the bytes that came, when the stream ends short of the file's size (the fetch failed midway),
// so a short read is never taken for the whole file. The caller closes the reader.
func (c *Client) Cat(ctx context.Context, root cid.Cid, timeout time.Duration) (io.ReadCloser, error) {
	path := PathCat + root.String()
	if timeout > 0 {
		path += "?timeout=" + url.QueryEscape(timeout.String())
	}
	resp, err := c.Request(ctx, http.MethodGet, path, nil, "")
	if err != nil {
		return nil, err
	}
	return &catReader{body: resp.Body, root: root, want: resp.ContentLength}, nil
}

// catReader checks that a cat's body is as long as its Content-Length.
type catReader struct {
	body io.ReadCloser
	root cid.Cid
	want int64 // -1 when the daemon sent no length
	got  int64
}

func (r *catReader) Read(p []byte) (int, error) {
	n, err := r.body.Read(p)
	r.got += int64(n)
	switch {
	case err == nil:
	case err == io.EOF && (r.want < 0 || r.got == r.want):
	case errors.Is(err, context.Canceled):
	case r.want >= 0:
		err = fmt.Errorf("the daemon broke off %s after %d of %d bytes: its fetch failed (`peer events` says why)", r.root, r.got, r.want)
	default:
		err = fmt.Errorf("the daemon broke off %s after %d bytes: %w", r.root, r.got, err)
	}
	return n, err
}

func (r *catReader) Close() error { return r.body.Close() }

// Events returns the events with Seq >= from.
func (c *Client) Events(ctx context.Context, from uint64) ([]Event, error) {
	var evs []Event
	err := c.Call(ctx, http.MethodGet, PathEvents+"?from="+strconv.FormatUint(from, 10), nil, &evs)
	return evs, err
}

// FollowEvents calls fn for every event with Seq >= from, then for each new one as it is
// recorded, until ctx ends (it then returns ctx's error), fn fails, or the daemon stops (an
// error: the stream ended). The daemon never skips an event; if it cannot go on it ends the
// stream with an error, which FollowEvents returns. fn is called from the calling goroutine.
func (c *Client) FollowEvents(ctx context.Context, from uint64, fn func(Event) error) error {
	resp, err := c.Request(ctx, http.MethodGet, PathEvents+"?follow=1&from="+strconv.FormatUint(from, 10), nil, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var next uint64 // the Seq the next event must have; 0 before the first
	err = readSSE(resp.Body, func(event string, data []byte) error {
		if event == "error" {
			var e Error
			if json.Unmarshal(data, &e) != nil || e.Error == "" {
				e.Error = string(data)
			}
			return errors.New(e.Error)
		}
		var e Event
		if err := json.Unmarshal(data, &e); err != nil {
			return fmt.Errorf("decoding event: %w", err)
		}
		if next > 0 && e.Seq != next {
			return fmt.Errorf("the event stream skipped from event %d to %d", next, e.Seq)
		}
		next = e.Seq + 1
		return fn(e)
	})
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err == nil {
		err = errors.New("the daemon ended the event stream (it stopped?)")
	}
	return err
}

// ReadSSE reads server-sent events from r and calls fn with the data of each (lines of one
// event joined by "\n"). Lines are capped at 1 MiB.
func ReadSSE(r io.Reader, fn func(data []byte) error) error {
	return readSSE(r, func(_ string, data []byte) error { return fn(data) })
}

// readSSE is ReadSSE that also passes each event's type ("" when it has no "event:" line).
func readSSE(r io.Reader, fn func(event string, data []byte) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var data []byte
	event := ""
	for sc.Scan() {
		line := sc.Bytes()
		switch {
		case len(line) == 0:
			if data != nil {
				if err := fn(event, data); err != nil {
					return err
				}
			}
			data, event = nil, ""
		case bytes.HasPrefix(line, []byte("event:")):
			event = string(bytes.TrimSpace(bytes.TrimPrefix(line, []byte("event:"))))
		case bytes.HasPrefix(line, []byte("data:")):
			v := bytes.TrimPrefix(bytes.TrimPrefix(line, []byte("data:")), []byte(" "))
			if data != nil {
				data = append(data, '\n')
			}
			data = append(data, v...)
		}
	}
	return sc.Err()
}

// Metrics returns the Prometheus text exposition.
func (c *Client) Metrics(ctx context.Context) (string, error) {
	resp, err := c.Request(ctx, http.MethodGet, PathMetrics, nil, "")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	return string(b), err
}
