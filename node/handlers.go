package node

import (
	"errors"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"peer/internal/fsys"
	"peer/node/api"
	"peer/node/ui"
)

// routes registers the node's endpoints on the API server. The store endpoints are in
// storeapi.go.
func (n *Node) routes() {
	s := n.api
	s.HandleFunc("GET "+api.PathID, n.handleID)
	s.HandleFunc("GET "+api.PathPeers, n.handlePeers)
	s.HandleFunc("POST "+api.PathConnect, n.handleConnect)
	s.HandleFunc("GET "+api.PathStatus, n.handleStatus)
	s.Handle("GET "+api.PathMetrics, promhttp.HandlerFor(n.reg, promhttp.HandlerOpts{}))
	n.storeRoutes()
	n.exchangeRoutes()
	n.transferRoutes()
	s.HandleFunc("GET "+api.PathBandwidth, n.handleBandwidth)
	ui.Register(s)
	// Go's profiler, behind the token like everything else: `go tool pprof` with
	// -http and a header, or curl -H "Authorization: Bearer $(cat REPO/api.token)".
	s.HandleFunc("GET /debug/pprof/", func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/debug/pprof/profile":
			pprof.Profile(w, r)
		case "/debug/pprof/trace":
			pprof.Trace(w, r)
		case "/debug/pprof/symbol":
			pprof.Symbol(w, r)
		default:
			pprof.Index(w, r)
		}
	})
}

// IDInfo is the node's ID and addresses, as GET /api/v1/id answers.
func (n *Node) IDInfo() api.ID {
	id := api.ID{ID: n.id.String(), Addrs: []string{}}
	for _, a := range n.Addrs() {
		id.Addrs = append(id.Addrs, a.String())
	}
	return id
}

func (n *Node) handleID(w http.ResponseWriter, r *http.Request) {
	api.WriteJSON(w, http.StatusOK, n.IDInfo())
}

func (n *Node) handlePeers(w http.ResponseWriter, r *http.Request) {
	ps := n.Peers()
	if ps == nil {
		ps = []api.Peer{}
	}
	api.WriteJSON(w, http.StatusOK, ps)
}

func (n *Node) handleConnect(w http.ResponseWriter, r *http.Request) {
	var req api.ConnectRequest
	if !api.ReadJSON(w, r, &req) {
		return
	}
	ai, err := n.Connect(r.Context(), req.Addr)
	if err != nil {
		code := http.StatusBadGateway
		if errors.Is(err, ErrNotStarted) {
			code = http.StatusServiceUnavailable
		} else if ai.ID == "" {
			code = http.StatusBadRequest
		}
		api.WriteError(w, code, err)
		return
	}
	p := api.Peer{ID: ai.ID.String(), Direction: "outbound"}
	for _, pi := range n.Peers() {
		if pi.ID == p.ID {
			p = pi
		}
	}
	api.WriteJSON(w, http.StatusOK, p)
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

func (n *Node) handleStatus(w http.ResponseWriter, r *http.Request) {
	api.WriteJSON(w, http.StatusOK, n.Status())
}
