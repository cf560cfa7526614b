package api

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Files the server keeps in the repo.
const (
	// AddrFile holds the daemon's base URL while it runs (mode 0600).
	AddrFile = "api"
	// TokenFile holds the bearer token (64 hex digits, mode 0600), created if missing.
	TokenFile = "api.token"
)

// DefaultMaxBody caps request bodies on ordinary routes (JSON requests).
const DefaultMaxBody = 1 << 20

// Config says where and how the server listens. Zero values take the documented defaults.
type Config struct {
	// Addr is HOST:PORT to listen on. Default 127.0.0.1:5040; port 0 picks a free port.
	Addr string
	// RepoDir is the repo where the address and token files live. Required.
	RepoDir string
	// AllowRemote must be true to listen on an address other than loopback.
	AllowRemote bool
	// MaxBody caps request bodies on routes registered with Handle. Default DefaultMaxBody.
	MaxBody int64
	// Logger receives the server's logs. Default slog.Default(), looked up on each use by the
	// handlers of Routes (so that a later slog.SetDefault applies), with pkg=api.
	Logger *slog.Logger
}

// Server is the HTTP gateway. New builds it, handlers are registered with Handle before or after
// Start, Start listens and writes the address file, Close shuts down and removes it.
type Server struct {
	cfg Config
	log *slog.Logger
	// userLog is Config.Logger as given (nil: the default, looked up on each use).
	userLog *slog.Logger
	mux     *http.ServeMux
	token   []byte

	pathMu sync.Mutex
	paths  map[string]bool // paths that have a JSON 405 fallback
	public map[string]bool // patterns that need no token nor session (HandlePublic)

	sess *sessions // the dashboard's login codes and sessions (session.go)

	starting atomic.Pointer[string] // while set, every route answers 503 with this message

	mu      sync.Mutex
	srv     *http.Server
	ln      net.Listener
	url     string
	cancel  context.CancelFunc
	done    chan struct{}
	serveEr error
}

// New checks the config and builds a server. It opens nothing.
func New(cfg Config) (*Server, error) {
	if cfg.RepoDir == "" {
		return nil, errors.New("api: no repo directory")
	}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:5040"
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	userLog := cfg.Logger
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	host, _, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("api address %q: want HOST:PORT: %w", cfg.Addr, err)
	}
	if !isLoopback(host) && !cfg.AllowRemote {
		return nil, fmt.Errorf("api address %s is not loopback: anyone who can reach it and holds the token controls the node; pass --api-allow-remote to allow it", cfg.Addr)
	}
	s := &Server{cfg: cfg, log: cfg.Logger, userLog: userLog, mux: http.NewServeMux(), paths: map[string]bool{}, public: map[string]bool{}, sess: newSessions()}
	s.sessionRoutes()
	s.mux.HandleFunc("GET "+PathHealth, func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, http.StatusNotFound, fmt.Errorf("no endpoint %s %s", r.Method, r.URL.Path))
	})
	return s, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Handle registers h for pattern (net/http ServeMux syntax, e.g. "GET /api/v1/id"). Request
// bodies are capped at Config.MaxBody; a larger body is answered 413. Safe to call at any time.
func (s *Server) Handle(pattern string, h http.Handler) {
	max := s.cfg.MaxBody
	s.register(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > max {
			WriteError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("request body of %d bytes exceeds the limit of %d", r.ContentLength, max))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, max)
		h.ServeHTTP(w, r)
	}))
}

// HandleFunc is Handle for a function.
func (s *Server) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	s.Handle(pattern, http.HandlerFunc(h))
}

// HandleUpload registers h for pattern with no cap on the body: for routes that stream a file
// of any size (add, share). The token is still required.
func (s *Server) HandleUpload(pattern string, h http.Handler) { s.register(pattern, h) }

// register adds pattern and, for a "METHOD /path" pattern, a fallback on /path that answers
// other methods with a JSON 405 (the mux's own answer is plain text). Register each path with
// methods only: a bare "/path" pattern would collide with the fallback.
func (s *Server) register(pattern string, h http.Handler) {
	s.mux.Handle(pattern, h)
	_, path, ok := strings.Cut(pattern, " ")
	if !ok {
		return
	}
	s.pathMu.Lock()
	defer s.pathMu.Unlock()
	if s.paths[path] {
		return
	}
	s.paths[path] = true
	s.mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, http.StatusMethodNotAllowed, fmt.Errorf("%s is not supported on %s", r.Method, r.URL.Path))
	})
}

// SetStarting makes every route answer 503 {"error": msg, "status": "starting"} (the health
// check too, without a token) until it is called with "": the daemon starts its API before the
// slow parts of its start (bootstrapping), so that clients can tell a daemon that is starting
// from none. Safe to call at any time.
func (s *Server) SetStarting(msg string) {
	if msg == "" {
		s.starting.Store(nil)
		return
	}
	s.starting.Store(&msg)
}

// ServeHTTP authenticates and dispatches one request. Every route but GET /api/v1/health and
// the public ones (HandlePublic) needs the bearer token or a session (session.go).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	securityHeaders(w.Header())
	// A web page can make a browser send requests here under a name of its own that resolves
	// to 127.0.0.1 (DNS rebinding), or from another site: neither is this API's own name.
	if !s.hostAllowed(r.Host) {
		WriteError(w, http.StatusForbidden, fmt.Errorf("host %q is not this API's address: use %s", r.Host, s.URL()))
		return
	}
	if o := r.Header.Get("Origin"); o != "" && !s.originAllowed(o, r.Host) {
		WriteError(w, http.StatusForbidden, fmt.Errorf("requests from origin %q are refused", o))
		return
	}
	health := r.Method == http.MethodGet && r.URL.Path == PathHealth
	if !health && !s.isPublic(r) && !s.authorize(w, r) {
		return
	}
	if msg := s.starting.Load(); msg != nil {
		w.Header().Set("Retry-After", "1")
		WriteJSON(w, http.StatusServiceUnavailable, Error{Error: *msg, Status: StatusStarting})
		return
	}
	s.mux.ServeHTTP(w, r)
}

// hostAllowed reports whether a request's Host names this server: a loopback name or address,
// or the host it was configured to listen on. Listening on every interface (0.0.0.0, ::) with
// AllowRemote, any name is accepted, as the machine's names cannot be known.
func (s *Server) hostAllowed(hostport string) bool {
	return HostAllowed(hostport, s.cfg.Addr, s.cfg.AllowRemote)
}

// HostAllowed reports whether a request's Host names a server listening on listen (HOST:PORT):
// a loopback name or address, or, with allowRemote, the listen host (any name when that is
// every interface, 0.0.0.0 or ::). It blocks DNS rebinding against a loopback server.
func HostAllowed(hostport, listen string, allowRemote bool) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	if isLoopback(host) || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return true
	}
	listen, _, _ = net.SplitHostPort(listen)
	if !allowRemote {
		return false
	}
	if ip := net.ParseIP(listen); listen == "" || ip != nil && ip.IsUnspecified() {
		return true
	}
	return strings.EqualFold(host, listen)
}

// IsLoopback reports whether host (no port) is localhost or a loopback address.
func IsLoopback(host string) bool { return isLoopback(host) }

// WriteFile0600 writes data to path atomically (a temporary file renamed), mode 0600.
func WriteFile0600(path string, data []byte) error { return writeFile0600(path, data) }

// originAllowed reports whether a browser's Origin is this server itself.
func (s *Server) originAllowed(origin, host string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return false
	}
	return strings.EqualFold(u.Host, host) && s.hostAllowed(u.Host)
}

func (s *Server) authorized(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	got, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || len(s.token) == 0 {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), s.token) == 1
}

// Start loads or creates the token, listens, writes the address file and serves until Close.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return errors.New("api: already started")
	}
	tok, err := LoadOrCreateToken(s.cfg.RepoDir)
	if err != nil {
		return err
	}
	s.token = []byte(tok)
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("api: listening on %s: %w (is another daemon or program using it? choose another with --api HOST:PORT)", s.cfg.Addr, err)
	}
	if host, _, _ := net.SplitHostPort(s.cfg.Addr); !isLoopback(host) {
		s.log.Warn("the API listens beyond loopback: anyone who can reach it and has the token controls this node", "addr", ln.Addr().String())
	}
	s.ln = ln
	s.url = "http://" + ln.Addr().String()
	if err := writeFile0600(filepath.Join(s.cfg.RepoDir, AddrFile), []byte(s.url+"\n")); err != nil {
		ln.Close()
		return fmt.Errorf("api: writing address file: %w", err)
	}
	base, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.srv = &http.Server{
		Handler:           s,
		BaseContext:       func(net.Listener) context.Context { return base },
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	s.done = make(chan struct{})
	go func(srv *http.Server, done chan struct{}) {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("api server stopped", "err", err)
			s.mu.Lock()
			s.serveEr = err
			s.mu.Unlock()
		}
	}(s.srv, s.done)
	return nil
}

// URL is the base URL the server listens on ("" before Start).
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.url
}

// Token is the bearer token ("" before Start).
func (s *Server) Token() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.token)
}

// Close removes the address file, ends long streams (their request contexts are cancelled),
// stops accepting requests and waits up to 5 s for open ones. Safe to call more than once.
func (s *Server) Close() error {
	s.mu.Lock()
	srv, done, cancel := s.srv, s.done, s.cancel
	s.srv = nil
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	cancel()
	rmErr := os.Remove(filepath.Join(s.cfg.RepoDir, AddrFile))
	if errors.Is(rmErr, os.ErrNotExist) {
		rmErr = nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = srv.Close()
	}
	<-done
	s.mu.Lock()
	serveErr := s.serveEr
	s.mu.Unlock()
	return errors.Join(rmErr, err, serveErr)
}

// LoadOrCreateToken returns the repo's API token, creating it (32 random bytes, hex, mode 0600)
// when missing.
func LoadOrCreateToken(dir string) (string, error) {
	path := filepath.Join(dir, TokenFile)
	b, err := os.ReadFile(path)
	if err == nil {
		tok := strings.TrimSpace(string(b))
		if len(tok) < 32 {
			return "", fmt.Errorf("api token %s is too short; delete it to make a new one", path)
		}
		return tok, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("reading api token: %w", err)
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	tok := hex.EncodeToString(raw[:])
	if err := writeFile0600(path, []byte(tok+"\n")); err != nil {
		return "", fmt.Errorf("writing api token: %w", err)
	}
	return tok, nil
}

func writeFile0600(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	_, werr := tmp.Write(data)
	if werr == nil {
		werr = tmp.Chmod(0o600)
	}
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), path)
	}
	if werr != nil {
		os.Remove(tmp.Name())
	}
	return werr
}

// WriteJSON answers with code and v as JSON.
func WriteJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// WriteError answers with code and {"error": err}.
func WriteError(w http.ResponseWriter, code int, err error) {
	WriteJSON(w, code, Error{Error: err.Error()})
}

// ReadJSON decodes the request body into v. It answers the request itself and returns false on
// failure: 413 when the body exceeds the route's cap, 400 when it is not the JSON expected.
func ReadJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			WriteError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("request body exceeds the limit of %d bytes", mbe.Limit))
			return false
		}
		WriteError(w, http.StatusBadRequest, fmt.Errorf("reading request: %w", err))
		return false
	}
	if _, err := io.Copy(io.Discard, r.Body); err != nil {
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			WriteError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("request body exceeds the limit of %d bytes", mbe.Limit))
			return false
		}
	}
	return true
}
