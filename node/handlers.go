package node

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"peer/internal/fsys"
	"peer/node/api"
	"peer/node/ui"
)

// apiBackend serves the API's handlers (api.Routes) from the node: it does the work they ask
// for, in the API's types, and gives each error the HTTP status that describes it (statusOf).
// The store's parts are in storeapi.go, sharing in exchangeapi.go, transfers in transfersapi.go.
type apiBackend struct{ n *Node }

var _ api.Backend = apiBackend{}

// routes registers the API's endpoints on the API server.
// The dashboard's bandwidth history and the dashboard itself come along.
func (n *Node) routes() {
	api.Routes(n.api, apiBackend{n})
	api.BandwidthRoutes(n.api, n)
	ui.Register(n.api)
}

// apiErr gives err the HTTP status that describes it.
func apiErr(err error) error { return api.WithStatus(statusOf(err), err) }

func (b apiBackend) ID() api.ID         { return b.n.IDInfo() }
func (b apiBackend) Status() api.Status { return b.n.Status() }
func (b apiBackend) Peers() []api.Peer  { return b.n.Peers() }
func (b apiBackend) Metrics() http.Handler {
	return promhttp.HandlerFor(b.n.reg, promhttp.HandlerOpts{})
}

// Connect dials addr; an address that is not a peer's is a 400, a peer that cannot be reached
// a 502.
func (b apiBackend) Connect(ctx context.Context, addr string) (api.Peer, error) {
	ai, err := b.n.Connect(ctx, addr)
	if err != nil {
		code := http.StatusBadGateway
		if errors.Is(err, ErrNotStarted) {
			code = http.StatusServiceUnavailable
		} else if ai.ID == "" {
			code = http.StatusBadRequest
		}
		return api.Peer{}, api.WithStatus(code, err)
	}
	p := api.Peer{ID: ai.ID.String(), Direction: "outbound"}
	for _, pi := range b.n.Peers() {
		if pi.ID == p.ID {
			p = pi
		}
	}
	return p, nil
}

// IDInfo is the node's ID and addresses, as GET /api/v1/id answers.
func (n *Node) IDInfo() api.ID {
	id := api.ID{ID: n.id.String(), Addrs: []string{}}
	for _, a := range n.Addrs() {
		id.Addrs = append(id.Addrs, a.String())
	}
	return id
}

// Status is the node's one-screen summary.
func (n *Node) Status() api.Status {
	id := n.IDInfo()
	st := api.Status{ID: id.ID, Addrs: id.Addrs, Network: n.cfg.Network, Private: n.psk != nil, Gateway: n.GatewayURL()}
	if h := n.Host(); h != nil {
		st.Peers = len(h.Network().Peers())
	}
	if d := n.Discovery(); d != nil {
		s := d.Stats()
		st.DHT = api.DHTStatus{
			Protocol:        string(d.Protocol()),
			Mode:            d.ModeName(),
			RoutingTable:    d.RoutingTableSize(),
			ProvidedRoots:   s.Roots,
			ProvidesPending: s.Pending,
			ProvidesDone:    s.Provided,
			ProvidesFailed:  s.Failed,
		}
		if !s.LastReprovide.IsZero() {
			st.DHT.LastReprovideAgo = time.Since(s.LastReprovide).Round(time.Second).String()
		}
	}
	if s := n.opts.Store; s != nil {
		files := s.Files()
		st.Files = len(files)
		for _, f := range files {
			st.FilesBytes += f.Size
		}
		st.DiskFree, _ = fsys.DiskFree(s.Dir()) // 0 where the platform cannot say
	}
	if tm, err := n.transfers(); err == nil {
		for _, t := range tm.list() {
			switch {
			case t.Direction == api.Upload:
				st.Transfers.Uploads++
			case t.State == "running":
				st.Transfers.Running++
			case t.State == "queued":
				st.Transfers.Queued++
			case t.State == "paused":
				st.Transfers.Paused++
			}
		}
	}
	bw := n.bw.GetBandwidthTotals()
	st.BytesIn, st.BytesOut = bw.TotalIn, bw.TotalOut
	n.mu.Lock()
	started := n.started
	n.mu.Unlock()
	if !started.IsZero() {
		st.Started = started
		st.Uptime = time.Since(started).Round(time.Second).String()
	}
	return st
}
