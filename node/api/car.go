package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/ipfs/go-cid"
)

// Paths of the CAR endpoints.
const (
	PathExport = "/api/v1/export/" // + CID: GET answers a CARv1 of the DAG
	PathImport = "/api/v1/import"  // POST a CAR as the body
)

// ContentTypeCAR is the media type of a CAR file.
const ContentTypeCAR = "application/vnd.ipld.car"

// Export streams a CARv1 of the DAG under root, as the daemon's repo holds it. A DAG the repo
// does not hold whole is an error before any byte; a stream the daemon breaks off (a block that
// failed to read) makes Read fail, so a short CAR is never taken for a whole one. The caller
// closes the reader.
func (c *Client) Export(ctx context.Context, root cid.Cid) (io.ReadCloser, error) {
	resp, err := c.Request(ctx, http.MethodGet, PathExport+root.String(), nil, "")
	if err != nil {
		return nil, err
	}
	return &exportReader{body: resp.Body, root: root}, nil
}

type exportReader struct {
	body io.ReadCloser
	root cid.Cid
}

func (r *exportReader) Read(p []byte) (int, error) {
	n, err := r.body.Read(p)
	if err != nil && err != io.EOF && !errors.Is(err, context.Canceled) {
		err = fmt.Errorf("the daemon broke off the CAR of %s: %w (a block failed to read: the daemon's log says which)", r.root, err)
	}
	return n, err
}

func (r *exportReader) Close() error { return r.body.Close() }

// Import streams a CAR to the daemon, which verifies and stores its blocks and records its
// complete roots.
func (c *Client) Import(ctx context.Context, car io.Reader) (ImportResult, error) {
	var res ImportResult
	resp, err := c.Request(ctx, http.MethodPost, PathImport, car, ContentTypeCAR)
	if err != nil {
		return res, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxAnswer)).Decode(&res); err != nil {
		return res, fmt.Errorf("reading the daemon's answer: %w", err)
	}
	return res, nil
}
