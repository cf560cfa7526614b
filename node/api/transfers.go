package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// PathTransfers lists (GET) and queues (POST) the daemon's transfers; PathTransfers/{id}/{action}
// pauses, resumes, cancels or moves one to the front.
const PathTransfers = "/api/v1/transfers"

// Transfer directions.
const (
	Download = "download"
	Upload   = "upload"
)

// Transfer is one download of the daemon's queue, or one peer fetching from the node (an upload).
type Transfer struct {
	ID        string `json:"id"`
	Direction string `json:"direction"` // "download" or "upload"
	// CID is the file's root. For an upload, the root of the held file the peer asked for, or,
	// when its first requests named no held file, the first CID it asked for; empty before it
	// asks anything.
	CID string `json:"cid"`
	// Path is the entry under CID a download fetches (CID/sub/file), names joined by '/'; empty
	// when it fetches the whole of CID.
	Path string `json:"path,omitempty"`
	Name string `json:"name"`           // the file's name; for an upload, empty when CID is no held file
	Peer string `json:"peer,omitempty"` // an upload's peer ID
	// State is queued, running, paused, done, failed or canceled (an upload is running).
	State     string  `json:"state"`
	Output    string  `json:"output,omitempty"`  // the file a download writes
	Bytes     int64   `json:"bytes"`             // the file's size, 0 until known (an upload: 0)
	BytesDone int64   `json:"bytes_done"`        // verified here (an upload: bytes sent to the peer)
	Rate      float64 `json:"rate"`              // bytes/s, recent; 0 when not running
	Peers     int     `json:"peers"`             // peers that delivered to this download; 1 for an upload
	Streams   int     `json:"streams,omitempty"` // an upload's open transfer streams
	// Received is what the download's last run (in this daemon) received from peers, duplicates
	// included; Resumed, what of the file was here when it began.
	Received int64     `json:"received,omitempty"`
	Resumed  int64     `json:"resumed,omitempty"`
	Limit    int64     `json:"limit,omitempty"` // bytes/s of its own, 0: none
	Error    string    `json:"error,omitempty"` // why it failed
	Queued   time.Time `json:"queued"`
	Changed  time.Time `json:"changed"` // when its state last changed
}

// QueueRequest is the body of POST /api/v1/transfers.
type QueueRequest = FetchRequest

// CancelRequest is the optional body of POST /api/v1/transfers/{id}/cancel.
type CancelRequest struct {
	Keep bool `json:"keep,omitempty"` // keep what was received (the .part file) instead of deleting it
}

// Queue queues a fetch in the daemon and returns the transfer: a new one, or the one already
// running (or paused, which this resumes) for the same file.
func (c *Client) Queue(ctx context.Context, req QueueRequest) (Transfer, error) {
	var t Transfer
	err := c.Call(ctx, http.MethodPost, PathTransfers, req, &t)
	return t, err
}

// Transfers lists the daemon's downloads and uploads.
func (c *Client) Transfers(ctx context.Context) ([]Transfer, error) {
	var ts []Transfer
	err := c.Call(ctx, http.MethodGet, PathTransfers, nil, &ts)
	return ts, err
}

// TransferAction pauses, resumes, cancels (keep: leaving what was received) or moves to the
// front ("top") one transfer, and returns it as it is afterwards.
func (c *Client) TransferAction(ctx context.Context, id, action string, keep bool) (Transfer, error) {
	var t Transfer
	var body any
	if action == "cancel" {
		body = CancelRequest{Keep: keep}
	}
	err := c.Call(ctx, http.MethodPost, PathTransfers+"/"+url.PathEscape(id)+"/"+action, body, &t)
	return t, err
}

// FollowTransfers calls fn with the whole list first, then with every transfer that changed (its
// state, or its progress, a few times a second), until ctx ends (it returns ctx's error), fn fails,
// or the daemon ends the stream (an error).
func (c *Client) FollowTransfers(ctx context.Context, fn func(Transfer) error) error {
	resp, err := c.Request(ctx, http.MethodGet, PathTransfers+"?follow=1", nil, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	err = readSSE(resp.Body, func(event string, data []byte) error {
		if event == "error" {
			var e Error
			if json.Unmarshal(data, &e) != nil || e.Error == "" {
				e.Error = string(data)
			}
			return errors.New(e.Error)
		}
		var t Transfer
		if err := json.Unmarshal(data, &t); err != nil {
			return fmt.Errorf("decoding transfer: %w", err)
		}
		return fn(t)
	})
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err == nil {
		err = errors.New("the daemon ended the transfer stream (it stopped?)")
	}
	return err
}
