package api

import (
	"fmt"
	"net/http"
	"path/filepath"
)

// The endpoints that share, search, forget and collect garbage. Fetches are in
// transfershandlers.go.

func (h *handlers) exchangeRoutes(s *Server) {
	s.HandleFunc("POST "+PathShare, h.handleShare)
	s.HandleFunc("POST "+PathFetch, h.handleFetch)
	s.HandleFunc("GET "+PathSearch, h.handleSearch)
	s.HandleFunc("POST "+PathRm, h.handleRm)
	s.HandleFunc("POST "+PathGC, h.handleGC)
}

func (h *handlers) handleShare(w http.ResponseWriter, r *http.Request) {
	var req ShareRequest
	if !ReadJSON(w, r, &req) {
		return
	}
	if !filepath.IsAbs(req.Path) {
		WriteError(w, http.StatusBadRequest, fmt.Errorf("path %q must be absolute", req.Path))
		return
	}
	f, err := h.b.Share(r.Context(), req)
	if err != nil {
		WriteError(w, StatusOf(err), err)
		return
	}
	WriteJSON(w, http.StatusOK, f)
}

func (h *handlers) handleSearch(w http.ResponseWriter, r *http.Request) {
	offers := h.b.Search(r.URL.Query().Get("q"))
	if offers == nil {
		offers = []Offer{}
	}
	WriteJSON(w, http.StatusOK, offers)
}

func (h *handlers) handleRm(w http.ResponseWriter, r *http.Request) {
	var req RmRequest
	if !ReadJSON(w, r, &req) {
		return
	}
	root, ok := parseRoot(w, req.CID)
	if !ok {
		return
	}
	if err := h.b.Remove(r.Context(), root, req.Force); err != nil {
		WriteError(w, StatusOf(err), err)
		return
	}
	WriteJSON(w, http.StatusOK, struct{}{})
}

func (h *handlers) handleGC(w http.ResponseWriter, r *http.Request) {
	res, err := h.b.GC(r.Context())
	if err != nil {
		WriteError(w, StatusOf(err), err)
		return
	}
	WriteJSON(w, http.StatusOK, res)
}
