package api

import (
	"context"
	"net/http"
)

// Paths of the endpoints that pin and unpin.
const (
	PathPin   = "/api/v1/pin"
	PathUnpin = "/api/v1/unpin"
)

// PinRequest is the body of POST /api/v1/pin and POST /api/v1/unpin.
type PinRequest struct {
	CID string `json:"cid"`
}

// Pin pins a held file, so that rm refuses it, and returns it.
func (c *Client) Pin(ctx context.Context, cid string) (File, error) {
	return c.pinCall(ctx, PathPin, cid)
}

// Unpin lifts a file's pin and returns it.
func (c *Client) Unpin(ctx context.Context, cid string) (File, error) {
	return c.pinCall(ctx, PathUnpin, cid)
}

func (c *Client) pinCall(ctx context.Context, path, cid string) (File, error) {
	var f File
	if err := c.Call(ctx, http.MethodPost, path, PinRequest{CID: cid}, &f); err != nil {
		return f, err
	}
	return f, fillRoot(&f)
}

// RemoveForce forgets a file even if it is pinned (and withdraws it if it was shared).
func (c *Client) RemoveForce(ctx context.Context, cid string) error {
	return c.Call(ctx, http.MethodPost, PathRm, RmRequest{CID: cid, Force: true}, nil)
}
