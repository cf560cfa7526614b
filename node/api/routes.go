package api

import (
	"log/slog"
	"net/http"
	"net/http/pprof"

	"github.com/ipfs/go-cid"

	"peer/store/unixfs"
)

// handlers serve the API's endpoints over a Backend. They decode requests, call the backend and
// encode its answers; the work is the backend's.
type handlers struct {
	b       Backend
	userLog *slog.Logger // nil: slog.Default() at each use
}

func (h *handlers) log() *slog.Logger {
	if h.userLog != nil {
		return h.userLog
	}
	return slog.Default().With("pkg", "api")
}

// Routes registers every endpoint of the API on s, served by b.
func Routes(s *Server, b Backend) {
	h := &handlers{b: b, userLog: s.userLog}
	s.HandleFunc("GET "+PathID, h.handleID)
	s.HandleFunc("GET "+PathPeers, h.handlePeers)
	s.HandleFunc("POST "+PathConnect, h.handleConnect)
	s.HandleFunc("GET "+PathStatus, h.handleStatus)
	s.Handle("GET "+PathMetrics, b.Metrics())
	h.repoRoutes(s)
	h.exchangeRoutes(s)
	h.transferRoutes(s)
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

func (h *handlers) handleID(w http.ResponseWriter, r *http.Request) {
	WriteJSON(w, http.StatusOK, h.b.ID())
}

func (h *handlers) handlePeers(w http.ResponseWriter, r *http.Request) {
	ps := h.b.Peers()
	if ps == nil {
		ps = []Peer{}
	}
	WriteJSON(w, http.StatusOK, ps)
}

func (h *handlers) handleConnect(w http.ResponseWriter, r *http.Request) {
	var req ConnectRequest
	if !ReadJSON(w, r, &req) {
		return
	}
	p, err := h.b.Connect(r.Context(), req.Addr)
	if err != nil {
		WriteError(w, StatusOf(err), err)
		return
	}
	WriteJSON(w, http.StatusOK, p)
}

func (h *handlers) handleStatus(w http.ResponseWriter, r *http.Request) {
	WriteJSON(w, http.StatusOK, h.b.Status())
}

// parseRoot reads a root CID of a request (any base, CIDv0 or CIDv1), answering 400 when it is
// not one.
func parseRoot(w http.ResponseWriter, s string) (cid.Cid, bool) {
	c, err := unixfs.ParseCID(s)
	if err != nil {
		WriteError(w, http.StatusBadRequest, err)
		return cid.Undef, false
	}
	return c, true
}
