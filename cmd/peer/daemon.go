package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"slices"

	"github.com/spf13/cobra"

	"peer/internal/config"
	"peer/node"
	"peer/node/api"
	"peer/store"
)

func init() { register(newDaemonCmd) }

// Client returns a client for the daemon running on the repo. The error wraps api.ErrNoDaemon
// when none runs, so offline commands can fall back to the repo.
func (a *App) Client() (*api.Client, error) { return api.ForRepo(a.Repo()) }

type daemonFlags struct {
	listen, bootstrap []string
	apiAddr           string
	allowRemote       bool
	gatewayAddr       string
	gatewayRemote     bool
	network           string
	noMDNS            bool
	swarmKey          string
	logLevel          string
}

func newDaemonCmd(app *App) *cobra.Command {
	var f daemonFlags
	cmd := &cobra.Command{
		Use:   "daemon [--listen MADDR]... [--bootstrap MADDR]... [--api HOST:PORT] [--network NAME] [--no-mdns] [--swarm-key FILE]",
		Short: "run the node until interrupted: serve, discover, and answer the local API",
		Long: `Run the node until SIGINT or SIGTERM. It listens on the configured addresses (default: all
interfaces, TCP and QUIC, port 4040), dials only the bootstrap peers it is given, and serves the
local API (default 127.0.0.1:5040) that the other commands use. Flags override the repo's
config.json for this run; change it for good with 'peer config set'.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDaemon(cmd, app, f)
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVar(&f.listen, "listen", nil, "multiaddr to listen on (repeatable; replaces config listen; port 0 picks a free port)")
	fl.StringArrayVar(&f.bootstrap, "bootstrap", nil, "peer to bootstrap the DHT from, a multiaddr ending in /p2p/ID (repeatable; added to config bootstrap)")
	fl.StringVar(&f.apiAddr, "api", "", "HOST:PORT of the local API (default from config, 127.0.0.1:5040; port 0 picks a free port)")
	fl.BoolVar(&f.allowRemote, "api-allow-remote", false, "allow --api on a non-loopback address (anyone who reaches it and has the token controls the node)")
	fl.StringVar(&f.gatewayAddr, "gateway", "", "HOST:PORT of a read-only HTTP gateway serving /ipfs/CID[/path] without a token (default from config gateway: none; port 0 picks a free port)")
	fl.BoolVar(&f.gatewayRemote, "allow-remote-gateway", false, "allow --gateway on a non-loopback address (anyone who reaches it reads what the node holds and makes it fetch)")
	fl.StringVar(&f.network, "network", "", "private network name: DHT /peer/NAME and its own gossip topic (default from config: the public IPFS network)")
	fl.BoolVar(&f.noMDNS, "no-mdns", false, "do not look for peers on the LAN by mDNS, whatever the config says")
	fl.StringVar(&f.swarmKey, "swarm-key", "", "pre-shared key file of a private libp2p network (TCP only)")
	fl.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	return cmd
}

// daemonProcs is how many Ps the daemon runs with: one more than the CPUs it may use (procs, the
// runtime's default), unless GOMAXPROCS is set (env). A goroutine blocked in a file system call
// keeps its P until the runtime notices, and a fetch's writer spends about a third of a transfer
// in O_DIRECT writes: with no spare P, the hashing and the network stall meanwhile. With one,
// paired fetches of 1 GiB between two daemons on two cores were about 5% faster (BENCHMARKS.md).
func daemonProcs(env string, procs int) int {
	if env != "" {
		return procs
	}
	return procs + 1
}

func runDaemon(cmd *cobra.Command, app *App, f daemonFlags) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		return fmt.Errorf("--log-level %q: want debug, info, warn or error", f.logLevel)
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(app.Err, &slog.HandlerOptions{Level: level})))
	runtime.GOMAXPROCS(daemonProcs(os.Getenv("GOMAXPROCS"), runtime.GOMAXPROCS(0)))

	dir := app.Repo()
	// Open the repo first: its lock makes a second daemon on the same repo refuse before it
	// touches a port.
	st, err := store.Open(dir)
	if err != nil {
		if errors.Is(err, store.ErrLocked) {
			return fmt.Errorf("%w (is a daemon already running? `%s` asks it)", err, app.command("id"))
		}
		return err
	}
	n, err := startNode(cmd, app, f, st)
	if err != nil {
		return errors.Join(err, st.Close())
	}
	<-cmd.Context().Done()
	slog.Info("shutting down")
	return errors.Join(n.Close(), st.Close())
}

func startNode(cmd *cobra.Command, app *App, f daemonFlags, st *store.Store) (*node.Node, error) {
	dir := st.Dir()
	cfg, err := config.Load(dir)
	if err != nil {
		return nil, err
	}
	fl := cmd.Flags()
	if fl.Changed("listen") {
		cfg.Listen = f.listen
	}
	for _, b := range f.bootstrap {
		if !slices.Contains(cfg.Bootstrap, b) {
			cfg.Bootstrap = append(cfg.Bootstrap, b)
		}
	}
	if fl.Changed("api") {
		cfg.API = f.apiAddr
	}
	if fl.Changed("gateway") {
		cfg.Gateway = f.gatewayAddr
		if err := cfg.Validate(); err != nil {
			return nil, err
		}
	}
	if fl.Changed("network") {
		cfg.Network = f.network
	}
	if f.noMDNS {
		cfg.MDNS = false
	}
	if fl.Changed("swarm-key") {
		cfg.SwarmKey = f.swarmKey
	}
	if cfg.API == "" {
		return nil, errors.New("the API address is empty: set one with --api HOST:PORT or `peer config set api 127.0.0.1:5040`")
	}
	key, err := store.ReadIdentity(dir)
	if err != nil {
		return nil, err
	}
	n, err := node.New(node.Options{Config: cfg, Key: key, Store: st, APIAllowRemote: f.allowRemote, GatewayAllowRemote: f.gatewayRemote})
	if err != nil {
		return nil, err
	}
	if err := n.Start(cmd.Context()); err != nil {
		return nil, err
	}
	fmt.Fprintf(app.Out, "peer ID %s\n", n.ID())
	for _, a := range n.Addrs() {
		fmt.Fprintf(app.Out, "listening on %s\n", a)
	}
	if cfg.Network != "" {
		fmt.Fprintf(app.Out, "network %s\n", cfg.Network)
	}
	fmt.Fprintf(app.Out, "API at %s\n", n.API().URL())
	if u := n.GatewayURL(); u != "" {
		fmt.Fprintf(app.Out, "gateway at %s/ipfs/\n", u)
	}
	fmt.Fprintln(app.Out, "daemon ready; stop it with Ctrl-C")
	return n, nil
}
