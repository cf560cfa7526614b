package api

import (
	"context"
	"net/http"
	"time"
)

// PathBandwidth answers the node's recent bandwidth, one sample per interval.
const PathBandwidth = "/api/v1/bandwidth"

// Bandwidth is the answer of GET /api/v1/bandwidth: the bytes per second received from and sent
// to peers (all protocols) over each of the last intervals, oldest first, and the totals.
type Bandwidth struct {
	IntervalMS int64             `json:"interval_ms"`
	Samples    []BandwidthSample `json:"samples"`
	TotalIn    int64             `json:"total_in"`
	TotalOut   int64             `json:"total_out"`
}

// BandwidthSample is one interval's rates, in bytes per second.
type BandwidthSample struct {
	Time time.Time `json:"time"` // the interval's end
	In   float64   `json:"in"`
	Out  float64   `json:"out"`
}

// BandwidthSource is what GET /api/v1/bandwidth answers from (the node). Bandwidth is called
// from the server's goroutines, concurrently.
type BandwidthSource interface {
	Bandwidth() Bandwidth
}

// BandwidthRoutes registers GET /api/v1/bandwidth on s, served by b.
func BandwidthRoutes(s *Server, b BandwidthSource) {
	s.HandleFunc("GET "+PathBandwidth, func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusOK, b.Bandwidth())
	})
}

// Bandwidth asks the daemon for its recent bandwidth.
func (c *Client) Bandwidth(ctx context.Context) (Bandwidth, error) {
	var b Bandwidth
	err := c.Call(ctx, http.MethodGet, PathBandwidth, nil, &b)
	return b, err
}
