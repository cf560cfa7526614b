package testnet

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"peer/internal/config"
	"peer/store"
)

// DemoOptions shape Demo.
type DemoOptions struct {
	// Binary is the peer command. Default: this executable.
	Binary string
	// Nodes is the size of the testnet (at least 4). Default 5.
	Nodes int
	// Size of the shared file in bytes. Default 8 MiB.
	Size int64
	// Keep leaves the testnet's directory (repos, logs) in place after stopping it.
	Keep bool
	// Out receives the story of the demo.
	Out io.Writer
}

// DemoResult is what the demo measured.
type DemoResult struct {
	Dir    string        `json:"dir"`
	CID    string        `json:"cid"`
	Up     time.Duration `json:"up_ns"`
	Share  time.Duration `json:"share_ns"`
	Search time.Duration `json:"search_ns"`
	Fetch  time.Duration `json:"fetch_ns"`
	Down   time.Duration `json:"down_ns"`
	Total  time.Duration `json:"total_ns"`
}

// Demo starts a process testnet, shares a generated file on node 1, finds it by searching on
// node 2, fetches it on node 3, checks its SHA-256, and stops the testnet: every step through
// the peer command line, as a user would type it. It prints what happens with timings.
func Demo(ctx context.Context, opts DemoOptions) (res DemoResult, err error) {
	if opts.Nodes == 0 {
		opts.Nodes = 5
	}
	if opts.Nodes < 4 {
		return res, fmt.Errorf("the demo needs at least 4 nodes, not %d", opts.Nodes)
	}
	if opts.Size == 0 {
		opts.Size = 8 << 20
	}
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	if opts.Binary == "" {
		if opts.Binary, err = os.Executable(); err != nil {
			return res, err
		}
	}
	out := opts.Out
	start := time.Now()
	dir, err := os.MkdirTemp("", "peer-demo-")
	if err != nil {
		return res, err
	}
	res.Dir = dir
	step := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }

	step("1. starting %d nodes on 127.0.0.1 (peer daemon processes, repos in %s)", opts.Nodes, dir)
	t0 := time.Now()
	m, err := Up(ctx, UpOptions{Nodes: opts.Nodes, Dir: dir, Binary: opts.Binary})
	if err != nil {
		// Up has stopped what it started; its error names a daemon log, kept for reading.
		step("   the repos and daemon logs are in %s", dir)
		return res, err
	}
	res.Up = time.Since(t0)
	defer func() {
		t0 := time.Now()
		_, derr := Down(context.WithoutCancel(ctx), dir, 10*time.Second)
		res.Down = time.Since(t0)
		if derr == nil {
			step("6. stopped every node in %v", res.Down.Round(time.Millisecond))
		}
		err = errors.Join(err, derr)
		if err != nil || opts.Keep {
			step("   the repos and daemon logs are in %s", dir)
		} else {
			os.RemoveAll(dir)
		}
		res.Total = time.Since(start)
		if err == nil {
			step("done in %v", res.Total.Round(time.Millisecond))
		}
	}()
	step("   every node is connected and its DHT has peers (%v):", res.Up.Round(time.Millisecond))
	PrintNodes(out, "   ", m.Nodes)

	seeder, searcher, fetcher := m.Nodes[1], m.Nodes[2], m.Nodes[3]
	tag := make([]byte, 4)
	_, _ = rand.Read(tag)
	name := "demo-" + hex.EncodeToString(tag) + ".bin"
	src := filepath.Join(dir, name)
	want, err := writeRandomFile(src, opts.Size, uint64(time.Now().UnixNano()))
	if err != nil {
		return res, err
	}

	step("2. %s shares %s (%s of random bytes): peer share", seeder.Name, name, mib(opts.Size))
	t0 = time.Now()
	stdout, err := runPeer(ctx, opts.Binary, seeder.Repo, 30*time.Second, "share", src)
	if err != nil {
		return res, err
	}
	res.Share = time.Since(t0)
	res.CID = strings.TrimSpace(stdout)
	step("   CID %s (%v): imported in place, provided on the DHT, announced on gossip", res.CID, res.Share.Round(time.Millisecond))

	term := strings.TrimSuffix(name, ".bin")
	step("3. %s searches the network's announcements for %q: peer search", searcher.Name, term)
	t0 = time.Now()
	var offer store.Offer
	err = poll(ctx, 30*time.Second, func() (bool, error) {
		stdout, err := runPeer(ctx, opts.Binary, searcher.Repo, 10*time.Second, "search", "--json", term)
		if err != nil {
			return false, err
		}
		var offers []store.Offer
		if err := json.Unmarshal([]byte(stdout), &offers); err != nil {
			return false, fmt.Errorf("reading search answer: %w", err)
		}
		for _, o := range offers {
			if o.CID == res.CID {
				offer = o
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return res, fmt.Errorf("searching for %s on %s: %w", term, searcher.Name, err)
	}
	res.Search = time.Since(t0)
	peers := "1 peer"
	if n := len(offer.Providers); n != 1 {
		peers = fmt.Sprintf("%d peers", n)
	}
	step("   found %s, %s, offered by %s (%v)", offer.Name, config.FormatSize(offer.Size), peers, res.Search.Round(time.Millisecond))

	step("4. %s fetches it by CID: peer fetch", fetcher.Name)
	dst := filepath.Join(dir, "fetched-"+name)
	t0 = time.Now()
	if _, err := runPeer(ctx, opts.Binary, fetcher.Repo, 60*time.Second, "fetch", res.CID, "-o", dst); err != nil {
		return res, err
	}
	res.Fetch = time.Since(t0)
	step("   %s in %v (%.1f MB/s, every block verified against its CID)", mib(opts.Size), res.Fetch.Round(time.Millisecond), float64(opts.Size)/1e6/res.Fetch.Seconds())

	got, err := fileSHA256(dst)
	if err != nil {
		return res, err
	}
	if got != want {
		return res, fmt.Errorf("the fetched file's SHA-256 %x differs from the shared file's %x", got, want)
	}
	step("5. SHA-256 of the fetched file matches the original: %x", got)
	return res, nil
}

// runPeer runs the peer command on repo, bounded by d, and returns its stdout.
func runPeer(ctx context.Context, bin, repo string, d time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"--repo", repo}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("peer %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// poll calls f every 100 ms until it says done, fails, or d passes.
func poll(ctx context.Context, d time.Duration, f func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		done, err := f()
		if err != nil || done {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// PrintNodes prints a table of process nodes, each line after indent: name, peer ID, API URL,
// listen address.
func PrintNodes(w io.Writer, indent string, nodes []ProcNode) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, indent+"NAME\tPEER ID\tAPI\tLISTEN")
	for _, n := range nodes {
		listen := ""
		if len(n.Addrs) > 0 {
			listen = strings.TrimSuffix(n.Addrs[0], "/p2p/"+n.ID)
		}
		fmt.Fprintf(tw, "%s%s\t%s\t%s\t%s\n", indent, n.Name, n.ID, n.API, listen)
	}
	tw.Flush()
}
