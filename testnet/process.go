package testnet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"peer/internal/config"
	"peer/node/api"
	"peer/store"
)

// ManifestFile is the name of a process testnet's manifest inside its directory.
const ManifestFile = "manifest.json"

// DefaultDir is where `peer testnet up`, `status` and `down` keep a testnet when no --dir is
// given: one fixed folder in the OS temp dir, so the three commands find the same testnet.
func DefaultDir() string { return filepath.Join(os.TempDir(), "peer-testnet") }

// Manifest describes a process testnet: written by Up, read by Status and Down.
type Manifest struct {
	Dir     string     `json:"dir"`
	Network string     `json:"network"`
	Netns   bool       `json:"netns"`
	MDNS    bool       `json:"mdns"`
	Binary  string     `json:"binary"`
	Created time.Time  `json:"created"`
	Stopped *time.Time `json:"stopped"`
	Nodes   []ProcNode `json:"nodes"`
}

// ProcNode is one daemon of a process testnet.
type ProcNode struct {
	Name  string   `json:"name"` // node-i
	Repo  string   `json:"repo"` // use it with `peer --repo REPO ...`
	PID   int      `json:"pid"`
	ID    string   `json:"id"`
	API   string   `json:"api"`   // the daemon's API URL (inside Netns when set)
	Addrs []string `json:"addrs"` // listen addresses with /p2p/ID
	Log   string   `json:"log"`
	Netns string   `json:"netns"` // its network namespace (--netns)
	IP    string   `json:"ip"`    // its address in the namespace
}

// UpOptions shape a process testnet.
type UpOptions struct {
	// Nodes is how many daemons to run (at least 2). Node 0 is the bootstrap of the others.
	Nodes int
	// Dir holds the repos (Dir/node-i), their logs and the manifest. Default DefaultDir().
	Dir string
	// Network is the private network name. Default "testnet".
	Network string
	// Netns runs each node in its own network namespace (root only; see CanNetns).
	Netns bool
	// MDNS has the nodes find each other by multicast DNS on the namespaces' shared link instead
	// of bootstrapping off node 0. It needs Netns: loopback carries no multicast.
	MDNS bool
	// Binary is the peer command to run. Default: this executable.
	Binary string
	// ReadyTimeout bounds the wait for every node to be ready. Default 30 s + 1 s per node.
	ReadyTimeout time.Duration
}

// ReadManifest reads the manifest of the testnet in dir.
func ReadManifest(dir string) (*Manifest, error) {
	b, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no testnet in %s (start one with `peer testnet up`)", dir)
	}
	if err != nil {
		return nil, fmt.Errorf("reading manifest: %w", err)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("reading %s: %w", filepath.Join(dir, ManifestFile), err)
	}
	return &m, nil
}

func (m *Manifest) write() error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(m.Dir, ManifestFile)
	if err := os.WriteFile(path+".tmp", append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("writing manifest: %w", err)
	}
	return os.Rename(path+".tmp", path)
}

// Up starts opts.Nodes `peer daemon` processes, node 0 first and then the others bootstrapping
// off it, and returns once every node has a peer and a non-empty DHT routing table. The daemons
// run in their own sessions and outlive the caller; stop them with Down. On error Up stops what
// it started.
func Up(ctx context.Context, opts UpOptions) (_ *Manifest, err error) {
	if opts.Nodes < 2 {
		return nil, fmt.Errorf("a testnet needs at least 2 nodes, not %d", opts.Nodes)
	}
	if opts.Dir == "" {
		opts.Dir = DefaultDir()
	}
	if opts.Network == "" {
		opts.Network = DefaultNetwork
	}
	if opts.Binary == "" {
		if opts.Binary, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("finding the peer binary: %w", err)
		}
	}
	if opts.ReadyTimeout == 0 {
		opts.ReadyTimeout = 30*time.Second + time.Duration(opts.Nodes)*time.Second
	}
	if opts.Netns {
		if err := CanNetns(); err != nil {
			return nil, err
		}
	}
	if opts.MDNS && !opts.Netns {
		return nil, errors.New("mDNS needs network namespaces (--netns): loopback carries no multicast")
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, err
	}
	if old, err := ReadManifest(dir); err == nil {
		if running := old.running(); len(running) > 0 {
			return nil, fmt.Errorf("a testnet already runs in %s (%d nodes): stop it with `peer testnet down --dir %s`", dir, len(running), dir)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	m := &Manifest{Dir: dir, Network: opts.Network, Netns: opts.Netns, MDNS: opts.MDNS, Binary: opts.Binary, Created: time.Now().UTC()}
	var plan netnsPlan
	if opts.Netns {
		plan = planNetns(dir, opts.Nodes)
		// Namespaces left by a testnet that was not brought down are replaced.
		if err := plan.teardown(ctx); err != nil {
			return nil, err
		}
		if err := plan.setup(ctx); err != nil {
			return nil, err
		}
	}
	defer func() {
		if err != nil {
			_, derr := down(context.WithoutCancel(ctx), m, 5*time.Second)
			err = errors.Join(err, derr)
		}
	}()

	for i := range opts.Nodes {
		pn := ProcNode{Name: fmt.Sprintf("node-%d", i)}
		pn.Repo = filepath.Join(dir, pn.Name)
		pn.Log = filepath.Join(pn.Repo, "daemon.log")
		if opts.Netns {
			pn.Netns, pn.IP = plan.nodes[i], plan.ips[i]
		}
		m.Nodes = append(m.Nodes, pn)
	}
	if err := m.write(); err != nil {
		return nil, err
	}
	rctx, cancel := context.WithTimeout(ctx, opts.ReadyTimeout)
	defer cancel()
	// The manifest is rewritten after each start so that a `down` finds every pid even if this
	// process dies half-way.
	start := func(i int, boot string) error {
		if err := m.start(i, boot); err != nil {
			return err
		}
		return m.write()
	}
	// Node 0 first: its address is the others' bootstrap.
	if err := start(0, ""); err != nil {
		return nil, err
	}
	if err := m.wait(rctx, 0, false); err != nil {
		return nil, err
	}
	boot := m.Nodes[0].Addrs[0]
	if m.MDNS {
		boot = "" // they find node 0, and each other, by mDNS
	}
	for i := 1; i < len(m.Nodes); i++ {
		if err := start(i, boot); err != nil {
			return nil, err
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, len(m.Nodes))
	for i := 1; i < len(m.Nodes); i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = m.wait(rctx, i, true)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	// Node 0 bootstrapped off nobody: it is ready once the others reached it.
	if err := m.wait(rctx, 0, true); err != nil {
		return nil, err
	}
	return m, m.write()
}

// start launches node i's daemon in its own session, logging to its daemon.log.
func (m *Manifest) start(i int, boot string) error {
	pn := &m.Nodes[i]
	if _, err := store.Init(pn.Repo); err != nil {
		return fmt.Errorf("%s: %w", pn.Name, err)
	}
	// A daemon killed earlier leaves its address file; the new one must not be read before the
	// daemon writes it.
	if err := os.Remove(filepath.Join(pn.Repo, api.AddrFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	host := "127.0.0.1"
	if pn.IP != "" {
		host = pn.IP
	}
	args := []string{"--repo", pn.Repo, "daemon",
		"--listen", "/ip4/" + host + "/tcp/0",
		"--api", "127.0.0.1:0",
		"--network", m.Network}
	if m.MDNS {
		cfg, err := config.Load(pn.Repo)
		if err != nil {
			return fmt.Errorf("%s: %w", pn.Name, err)
		}
		cfg.MDNS = true
		if err := config.Save(pn.Repo, cfg); err != nil {
			return fmt.Errorf("%s: %w", pn.Name, err)
		}
	} else {
		args = append(args, "--no-mdns")
	}
	if boot != "" {
		args = append(args, "--bootstrap", boot)
	}
	bin := m.Binary
	if pn.Netns != "" {
		args = append([]string{"netns", "exec", pn.Netns, bin}, args...)
		bin = "ip"
	}
	logf, err := os.OpenFile(pn.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	detach(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: starting daemon: %w", pn.Name, err)
	}
	pn.PID = cmd.Process.Pid
	// Reap it if it exits while this process lives (the demo, tests); otherwise it outlives us.
	go func() { _ = cmd.Wait() }()
	return nil
}

// wait polls node i's API until it answers, and with connected, until it has a peer and a
// non-empty routing table. It fills in the node's ID, API and addresses.
func (m *Manifest) wait(ctx context.Context, i int, connected bool) error {
	pn := &m.Nodes[i]
	t := time.NewTicker(25 * time.Millisecond)
	defer t.Stop()
	var last error
	for {
		// Not alive(): right after exec, /proc/PID/cmdline can still be empty.
		if !running(pn.PID) {
			return fmt.Errorf("%s: the daemon exited: %s", pn.Name, lastLines(pn.Log, 3))
		}
		st, err := pn.status(ctx)
		if err == nil {
			pn.ID, pn.API = st.ID, st.url
			pn.Addrs = st.Addrs
			if len(pn.Addrs) == 0 {
				err = errors.New("no listen address yet")
			} else if connected && (st.Peers == 0 || st.DHT.RoutingTable == 0) {
				err = fmt.Errorf("%d peers, routing table %d", st.Peers, st.DHT.RoutingTable)
			} else {
				return nil
			}
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: not ready (%v): %w; see %s", pn.Name, last, ctx.Err(), pn.Log)
		case <-t.C:
		}
	}
}

type nodeStatus struct {
	api.Status
	url string
}

// status asks node pn's daemon for its status, from inside its namespace if it has one.
func (pn *ProcNode) status(ctx context.Context) (nodeStatus, error) {
	var st nodeStatus
	u, err := os.ReadFile(filepath.Join(pn.Repo, api.AddrFile))
	if err != nil {
		return st, fmt.Errorf("%w: no API address yet", api.ErrNoDaemon)
	}
	tok, err := os.ReadFile(filepath.Join(pn.Repo, api.TokenFile))
	if err != nil {
		return st, err
	}
	st.url = strings.TrimSpace(string(u))
	ns := pn.Netns
	hc := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return dialIn(ctx, ns, network, addr)
		},
		DisableKeepAlives: true,
	}}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, st.url+api.PathStatus, nil)
	if err != nil {
		return st, err
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	resp, err := hc.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("status: HTTP %d", resp.StatusCode)
	}
	err = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&st.Status)
	return st, err
}

// NodeStatus is what Status says of one node.
type NodeStatus struct {
	ProcNode
	Running      bool   `json:"running"`
	Peers        int    `json:"peers"`
	RoutingTable int    `json:"routing_table"`
	Files        int    `json:"files"`
	Err          string `json:"error"`
}

// Status reports, for each node of the testnet in dir, whether its daemon runs and, if so, its
// peers, routing table and files.
func Status(ctx context.Context, dir string) (*Manifest, []NodeStatus, error) {
	m, err := ReadManifest(dir)
	if err != nil {
		return nil, nil, err
	}
	out := make([]NodeStatus, len(m.Nodes))
	var wg sync.WaitGroup
	for i, pn := range m.Nodes {
		out[i].ProcNode = pn
		if !alive(pn.PID, pn.Repo) {
			continue
		}
		out[i].Running = true
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := pn.status(ctx)
			if err != nil {
				out[i].Err = err.Error()
				return
			}
			out[i].Peers, out[i].RoutingTable, out[i].Files = st.Peers, st.DHT.RoutingTable, st.Files
		}()
	}
	wg.Wait()
	return m, out, nil
}

// DownResult says how Down stopped the nodes.
type DownResult struct {
	Stopped int // exited after SIGTERM
	Killed  int // needed SIGKILL
}

// Down stops every daemon of the testnet in dir: SIGTERM (Ctrl-Break on Windows), a wait of at
// most grace, then SIGKILL (TerminateProcess) for any left, and removes the testnet's network namespaces. The repos and logs stay.
func Down(ctx context.Context, dir string, grace time.Duration) (DownResult, error) {
	m, err := ReadManifest(dir)
	if err != nil {
		return DownResult{}, err
	}
	return down(ctx, m, grace)
}

func down(ctx context.Context, m *Manifest, grace time.Duration) (DownResult, error) {
	var res DownResult
	running := m.running()
	for _, pn := range running {
		terminate(pn.PID)
	}
	left := waitExit(ctx, running, grace)
	res.Stopped = len(running) - len(left)
	for _, pn := range left {
		kill(pn.PID)
	}
	res.Killed = len(left)
	var errs []error
	// Bounded, and not cut short by ctx: an interrupted down still says whether a daemon survived.
	if left = waitExit(context.WithoutCancel(ctx), left, 5*time.Second); len(left) > 0 {
		errs = append(errs, fmt.Errorf("%d daemons survived SIGKILL (pid %d first)", len(left), left[0].PID))
	}
	if m.Netns {
		errs = append(errs, planNetns(m.Dir, len(m.Nodes)).teardown(context.WithoutCancel(ctx)))
	}
	now := time.Now().UTC()
	m.Stopped = &now
	if len(m.Nodes) > 0 {
		errs = append(errs, m.write())
	}
	return res, errors.Join(errs...)
}

// running is the nodes whose daemon still runs.
func (m *Manifest) running() []ProcNode {
	var out []ProcNode
	for _, pn := range m.Nodes {
		if alive(pn.PID, pn.Repo) {
			out = append(out, pn)
		}
	}
	return out
}

// waitExit waits at most d for the nodes' daemons to exit and returns those still running.
func waitExit(ctx context.Context, nodes []ProcNode, d time.Duration) []ProcNode {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		var left []ProcNode
		for _, pn := range nodes {
			if alive(pn.PID, pn.Repo) {
				left = append(left, pn)
			}
		}
		if len(left) == 0 {
			return nil
		}
		nodes = left
		select {
		case <-deadline.C:
			return left
		case <-ctx.Done():
			return left
		case <-t.C:
		}
	}
}

// lastLines is the last n lines of a log file, for error messages.
func lastLines(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "no log"
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
