package testnet

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// NetnsSubnet is the private range of netns testnets. It exists only inside the namespaces a
// testnet creates (each node's eth0, joined by a bridge in a hub namespace); the root namespace
// has no address or route in it.
const NetnsSubnet = "10.231.0.0/16"

// netnsPlan names the namespaces and addresses of a netns testnet in dir.
type netnsPlan struct {
	hub   string   // the namespace holding the bridge
	nodes []string // one namespace per node
	ips   []string // node i's address in netnsSubnet
}

func planNetns(dir string, n int) netnsPlan {
	sum := sha256.Sum256([]byte(dir))
	prefix := fmt.Sprintf("ptn-%x", sum[:3])
	p := netnsPlan{hub: prefix + "-hub"}
	for i := range n {
		p.nodes = append(p.nodes, fmt.Sprintf("%s-%d", prefix, i))
		// Node i is host i+1 of NetnsSubnet.
		p.ips = append(p.ips, fmt.Sprintf("10.231.%d.%d", (i+1)/256, (i+1)%256))
	}
	return p
}

// CanNetns says whether this process can create network namespaces (root, with `ip`), and if
// not, why.
func CanNetns() error {
	if os.Geteuid() != 0 {
		return errors.New("--netns needs root (it creates network namespaces)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return errors.New("--netns needs the ip command (iproute2)")
	}
	// Root in a container may lack the capabilities: CAP_NET_ADMIN (12) and CAP_SYS_ADMIN (21).
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "CapEff:"); ok {
				caps, err := strconv.ParseUint(strings.TrimSpace(rest), 16, 64)
				if err == nil && (caps&(1<<12) == 0 || caps&(1<<21) == 0) {
					return errors.New("--netns needs CAP_NET_ADMIN and CAP_SYS_ADMIN, which this process lacks")
				}
			}
		}
	}
	return nil
}

func ipCmd(ctx context.Context, args ...string) error {
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "ip", args...)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// setup creates the hub namespace with a bridge and, for each node, a namespace joined to the
// bridge by a veth pair, with loopback up and its address on eth0. On error it removes what it
// created.
func (p netnsPlan) setup(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			err = errors.Join(err, p.teardown(context.WithoutCancel(ctx)))
		}
	}()
	if err := ipCmd(ctx, "netns", "add", p.hub); err != nil {
		return err
	}
	if err := ipCmd(ctx, "-n", p.hub, "link", "add", "br0", "type", "bridge"); err != nil {
		return err
	}
	if err := ipCmd(ctx, "-n", p.hub, "link", "set", "br0", "up"); err != nil {
		return err
	}
	for i, ns := range p.nodes {
		veth := fmt.Sprintf("v%d", i)
		steps := [][]string{
			{"netns", "add", ns},
			{"-n", ns, "link", "set", "lo", "up"},
			{"-n", p.hub, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns},
			{"-n", p.hub, "link", "set", veth, "master", "br0", "up"},
			{"-n", ns, "addr", "add", p.ips[i] + "/" + strings.Split(NetnsSubnet, "/")[1], "dev", "eth0"},
			{"-n", ns, "link", "set", "eth0", "up"},
		}
		for _, s := range steps {
			if err := ipCmd(ctx, s...); err != nil {
				return err
			}
		}
	}
	return nil
}

// teardown deletes every namespace of the plan that exists (their veth pairs go with them).
func (p netnsPlan) teardown(ctx context.Context) error {
	var errs []error
	for _, ns := range append(append([]string(nil), p.nodes...), p.hub) {
		if _, err := os.Stat(filepath.Join("/var/run/netns", ns)); err != nil {
			continue
		}
		errs = append(errs, ipCmd(ctx, "netns", "del", ns))
	}
	return errors.Join(errs...)
}

// dialIn dials addr from inside the named network namespace ("" is this process's own). The
// socket is created on a locked thread that has joined the namespace; the thread is discarded
// afterwards, and the connection works from any goroutine.
func dialIn(ctx context.Context, ns, network, addr string) (net.Conn, error) {
	var d net.Dialer
	if ns == "" {
		return d.DialContext(ctx, network, addr)
	}
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		// Never unlocked: the goroutine ends with the thread locked, so the runtime ends the
		// thread instead of reusing it in the wrong namespace.
		runtime.LockOSThread()
		f, err := os.Open(filepath.Join("/var/run/netns", ns))
		if err != nil {
			ch <- result{err: fmt.Errorf("namespace %s: %w", ns, err)}
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- result{err: fmt.Errorf("entering namespace %s: %w", ns, err)}
			return
		}
		c, err := d.DialContext(ctx, network, addr)
		ch <- result{c, err}
	}()
	r := <-ch
	return r.c, r.err
}
