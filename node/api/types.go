package api

import "time"

// Paths of the endpoints, relative to the daemon's URL.
const (
	PathHealth  = "/api/v1/health"
	PathID      = "/api/v1/id"
	PathPeers   = "/api/v1/peers"
	PathConnect = "/api/v1/connect"
	PathStatus  = "/api/v1/status"
	PathAdd     = "/api/v1/add"
	PathAddPath = "/api/v1/add/path"
	PathLs      = "/api/v1/ls"
	PathCat     = "/api/v1/cat/"
	PathEvents  = "/api/v1/events"
	PathMetrics = "/metrics"
)

// ID is who the node is and where it listens. Addrs carry the /p2p/ID suffix.
type ID struct {
	ID    string   `json:"id"`
	Addrs []string `json:"addrs"`
}

// Peer is one connected peer.
type Peer struct {
	ID        string `json:"id"`
	Addr      string `json:"addr"`      // the remote address of the first connection
	Direction string `json:"direction"` // "inbound" or "outbound"
	// Latency is the smoothed round-trip time the node measured, 0 when unknown.
	Latency time.Duration `json:"latency_ns"`
	// BytesIn and BytesOut are what the node received from and sent to the peer, all protocols.
	BytesIn  int64 `json:"bytes_in"`
	BytesOut int64 `json:"bytes_out"`
}

// AddPathRequest is the body of POST /api/v1/add/path: the daemon imports a folder (or file) of
// its own machine by path.
type AddPathRequest struct {
	Path      string `json:"path"` // absolute
	Hidden    bool   `json:"hidden,omitempty"`
	ChunkSize int    `json:"chunk_size,omitempty"`
}

// ConnectRequest is the body of POST /api/v1/connect.
type ConnectRequest struct {
	Addr string `json:"addr"` // a multiaddr ending in /p2p/ID
}

// DHTStatus describes the node's DHT.
type DHTStatus struct {
	Protocol         string `json:"protocol"` // e.g. /ipfs/kad/1.0.0
	Mode             string `json:"mode"`     // "server" or "client"
	RoutingTable     int    `json:"routing_table"`
	ProvidedRoots    int    `json:"provided_roots"`
	ProvidesPending  int    `json:"provides_pending"`
	ProvidesDone     uint64 `json:"provides_done"`
	ProvidesFailed   uint64 `json:"provides_failed"`
	LastReprovideAgo string `json:"last_reprovide_ago"`
}

// Status is the one-screen summary of GET /api/v1/status.
type Status struct {
	ID      string    `json:"id"`
	Network string    `json:"network"` // "" is the public IPFS network
	Addrs   []string  `json:"addrs"`
	Peers   int       `json:"peers"`
	DHT     DHTStatus `json:"dht"`
	Files   int       `json:"files"`
	// FilesBytes is the size of the files held, together; DiskFree the bytes left on the file
	// system of the repo (0 when the platform cannot say).
	FilesBytes uint64    `json:"files_bytes"`
	DiskFree   uint64    `json:"disk_free"`
	BytesIn    int64     `json:"bytes_in"`
	BytesOut   int64     `json:"bytes_out"`
	Uptime     string    `json:"uptime"`
	Started    time.Time `json:"started"`
	// Private is true when a swarm key keeps the node on a private network.
	Private bool `json:"private"`
	// Gateway is the HTTP gateway's base URL, "" when it does not run.
	Gateway string `json:"gateway"`
	// Transfers counts the daemon's downloads by state, and its uploads.
	Transfers TransferCounts `json:"transfers"`
}

// TransferCounts counts transfers for the status screen.
type TransferCounts struct {
	Running int `json:"running"`
	Queued  int `json:"queued"`
	Paused  int `json:"paused"`
	Uploads int `json:"uploads"`
}

// Error is the body of every error answer.
type Error struct {
	Error string `json:"error"`
	// Status is StatusStarting in the 503 answers of a daemon that is still starting.
	Status string `json:"status,omitempty"`
}

// StatusStarting is Error.Status while the daemon starts.
const StatusStarting = "starting"
