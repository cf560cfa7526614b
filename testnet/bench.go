package testnet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Scenarios lists the scenarios Bench runs.
var Scenarios = []string{"dht", "gossip", "transfer", "churn"}

// BenchOptions shape a Bench run. Zero fields take the documented defaults.
type BenchOptions struct {
	// Scenario is "dht", "gossip", "transfer" or "churn".
	Scenario string
	// Nodes is the size of the network. Default 20.
	Nodes int
	// Latency and Bandwidth (bytes per second) of every link. Either one non-zero runs the
	// nodes on a mocknet with those links; both zero run them on loopback TCP. The gossip
	// scenario always runs on a mocknet, with Latency (default 20 ms, recorded as such).
	Latency   time.Duration
	Bandwidth float64
	// Mocknet runs the nodes on a mocknet even with no latency or bandwidth set. Bench also
	// falls back to one when the open file limit is too low for that many loopback nodes.
	Mocknet bool
	// Out is the directory for results.json, the CSV files and the plots. "" writes nothing.
	Out string
	// Seed makes the choices of nodes, keys and file contents reproducible. Default 1.
	Seed uint64

	// Lookups is the number of DHT lookups (dht). Default 100.
	Lookups int
	// Keys is the number of provided CIDs the lookups look for (dht). Default 10.
	Keys int
	// Messages is the number of announcements (gossip). Default 20.
	Messages int
	// FileSize is the size of each file (transfer default 64 MiB, churn default 256 KiB).
	FileSize int64
	// Seeders is the largest number of seeders tried (transfer: 1, 2, ... Seeders). Default
	// min(4, Nodes-1).
	Seeders int
	// SeederRate caps what each node's transfer server sends, in bytes per second (transfer,
	// churn; 0: no cap). It emulates slow seeders on loopback.
	SeederRate int64
	// Files and Replicas: churn shares Files files, each on Replicas random nodes. Defaults 20, 3.
	Files, Replicas int
	// KillSteps is how many steps churn takes from 0 to MaxKill of the nodes killed. Defaults 6
	// and 0.9.
	KillSteps int
	MaxKill   float64
	// Timeout bounds one lookup, propagation or fetch. Default 10 s.
	Timeout time.Duration
	// Log receives a line per phase (nil: none).
	Log io.Writer `json:"-"`
}

// defaultGossipLatency is the link latency of the gossip scenario when none is given: it always
// runs on a mocknet, and links without latency would measure only the scheduler.
const defaultGossipLatency = 20 * time.Millisecond

func (o *BenchOptions) defaults() error {
	if !slices.Contains(Scenarios, o.Scenario) {
		return fmt.Errorf("unknown scenario %q (known: %s)", o.Scenario, strings.Join(Scenarios, ", "))
	}
	if o.Nodes == 0 {
		o.Nodes = 20
	}
	if o.Nodes < 2 {
		return fmt.Errorf("bench needs at least 2 nodes, not %d", o.Nodes)
	}
	if o.Latency < 0 || o.Bandwidth < 0 || o.SeederRate < 0 {
		return errors.New("latency, bandwidth and seeder rate must not be negative")
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	if o.Scenario == "gossip" && o.Latency == 0 {
		o.Latency = defaultGossipLatency // recorded as used, not as "0s"
	}
	if o.Lookups == 0 {
		o.Lookups = 100
	}
	if o.Keys == 0 {
		o.Keys = 10
	}
	if o.Messages == 0 {
		o.Messages = 20
	}
	if o.FileSize == 0 {
		o.FileSize = 64 << 20
		if o.Scenario == "churn" {
			o.FileSize = 256 << 10
		}
	}
	if o.Seeders == 0 {
		o.Seeders = min(4, o.Nodes-1)
	}
	if o.Scenario == "transfer" && o.Seeders > o.Nodes-1 {
		return fmt.Errorf("%d seeders need at least %d nodes", o.Seeders, o.Seeders+1)
	}
	if o.Files == 0 {
		o.Files = 20
	}
	if o.Replicas == 0 {
		o.Replicas = 3
	}
	if o.Scenario == "churn" && o.Replicas > o.Nodes-1 {
		return fmt.Errorf("%d replicas need at least %d nodes", o.Replicas, o.Replicas+1)
	}
	if o.KillSteps == 0 {
		o.KillSteps = 6
	}
	if o.MaxKill == 0 {
		o.MaxKill = 0.9
	}
	if o.MaxKill < 0 || o.MaxKill > 1 {
		return fmt.Errorf("max kill %v: want a fraction between 0 and 1", o.MaxKill)
	}
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Second
	}
	return nil
}

func (o *BenchOptions) logf(format string, args ...any) {
	if o.Log != nil {
		fmt.Fprintf(o.Log, format+"\n", args...)
	}
}

// mocknet reports whether the run uses mocknet links.
func (o *BenchOptions) mocknet() bool { return o.Mocknet || o.Latency > 0 || o.Bandwidth > 0 }

// fdsFor is about how many file descriptors n in-process loopback nodes need: each node keeps
// tens of DHT connections (~80 at 200 nodes), and both ends of each are in this process.
func fdsFor(n int) uint64 { return uint64(n)*100 + 1000 }

// Event is one measurement of a run.
type Event struct {
	// Kind is "provide", "lookup" (dht), "receipt" (gossip), "fetch" (transfer) or "probe"
	// (churn).
	Kind string `json:"kind"`
	// Node is the index of the node that measured it (-1: not one node).
	Node int `json:"node"`
	// Target is the CID looked up or fetched.
	Target string `json:"target"`
	// Seeders is how many nodes shared the file (transfer), and Peers how many of them sent
	// blocks that verified.
	Seeders int `json:"seeders"`
	Peers   int `json:"peers"`
	// Killed is the fraction of nodes killed when it was measured (churn).
	Killed float64 `json:"killed"`
	// Millis is how long it took.
	Millis float64 `json:"ms"`
	// Bytes moved and the rate in MB/s (10^6 bytes per second).
	Bytes int64   `json:"bytes"`
	MBps  float64 `json:"mbps"`
	// OK says whether it succeeded (the provider was found, the file fetched and verified).
	OK  bool   `json:"ok"`
	Err string `json:"error"`
	// Available says whether a node holding the file was alive (churn).
	Available bool `json:"available"`
}

// Stat is one line of a run's summary.
type Stat struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
}

// Setup is what building the network cost.
type Setup struct {
	Transport   string  `json:"transport"` // "tcp" (loopback) or "mocknet"
	Seconds     float64 `json:"seconds"`
	HeapPerNode int64   `json:"heap_per_node_bytes"` // Go heap in use after GC, per node
	RSSPerNode  int64   `json:"rss_per_node_bytes"`  // process resident set, per node
	Goroutines  int     `json:"goroutines_per_node"`
}

// Result is a run: its parameters, setup cost, every event and a summary.
type Result struct {
	Scenario  string        `json:"scenario"`
	Nodes     int           `json:"nodes"`
	Latency   string        `json:"latency"`
	Bandwidth float64       `json:"bandwidth_bytes_per_sec"`
	Options   BenchOptions  `json:"options"`
	Started   time.Time     `json:"started"`
	Duration  time.Duration `json:"duration_ns"`
	Setup     Setup         `json:"setup"`
	Events    []Event       `json:"events"`
	Summary   []Stat        `json:"summary"`
	Files     []string      `json:"files"`
	GoVersion string        `json:"go_version"`
	CPUs      int           `json:"cpus"`
}

// Bench builds an in-process network, runs the scenario on it, and writes the results to
// opts.Out. Every wait is bounded by opts.Timeout.
func Bench(ctx context.Context, opts BenchOptions) (*Result, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	res := newResult(opts)
	var err error
	switch opts.Scenario {
	case "dht":
		err = benchDHT(ctx, &opts, res)
	case "gossip":
		err = benchGossip(ctx, &opts, res)
	case "transfer":
		err = benchTransfer(ctx, &opts, res)
	case "churn":
		err = benchChurn(ctx, &opts, res)
	}
	res.Duration = time.Since(res.Started)
	if err != nil {
		return res, err
	}
	if opts.Out != "" {
		if err := res.write(opts.Out); err != nil {
			return res, err
		}
	}
	return res, nil
}

// newResult is the result of a run with opts (defaults applied): what it will use, before it runs.
func newResult(opts BenchOptions) *Result {
	res := &Result{
		Scenario: opts.Scenario, Nodes: opts.Nodes, Latency: opts.Latency.String(), Bandwidth: opts.Bandwidth,
		Options: opts, Started: time.Now().UTC(), GoVersion: runtime.Version(), CPUs: runtime.NumCPU(),
	}
	res.Options.Log = nil
	return res
}

// startMeasured starts an in-process network of opts.Nodes and records its setup cost.
func startMeasured(ctx context.Context, opts *BenchOptions, res *Result, extra ...Option) (*Network, error) {
	heap0, rss0, g0 := memory()
	var o []Option
	res.Setup.Transport = "tcp"
	if opts.mocknet() {
		o = append(o, WithMocknet(opts.Latency, opts.Bandwidth))
		res.Setup.Transport = "mocknet"
	} else if err := raiseFileLimit(fdsFor(opts.Nodes)); err != nil {
		opts.logf("%v: running on a mocknet without latency instead", err)
		o = append(o, WithMocknet(0, 0))
		res.Setup.Transport = "mocknet"
	}
	opts.logf("starting %d nodes (%s)", opts.Nodes, res.Setup.Transport)
	nw, err := Start(ctx, opts.Nodes, append(o, extra...)...)
	if err != nil {
		return nil, err
	}
	heap1, rss1, g1 := memory()
	n := int64(opts.Nodes)
	res.Setup.Seconds = nw.Setup.Seconds()
	res.Setup.HeapPerNode = (heap1 - heap0) / n
	res.Setup.RSSPerNode = (rss1 - rss0) / n
	res.Setup.Goroutines = (g1 - g0) / opts.Nodes
	opts.logf("ready in %v: %s heap, %s RSS, %d goroutines per node", nw.Setup.Round(time.Millisecond),
		mib(res.Setup.HeapPerNode), mib(res.Setup.RSSPerNode), res.Setup.Goroutines)
	return nw, nil
}

// memory is the Go heap in use after a GC, the process RSS (bytes), and the goroutine count.
func memory() (heap, rss int64, goroutines int) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapInuse), readRSS(), runtime.NumGoroutine()
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// quantile of sorted values, nearest rank (NaN when empty).
func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// latencyStats summarizes the Millis of the events of kind that succeeded. With none, it gives
// only the counts: a quantile of nothing is NaN, which JSON cannot carry.
func latencyStats(prefix string, evs []Event, kind string) []Stat {
	var ms []float64
	total, ok := 0, 0
	for _, e := range evs {
		if e.Kind != kind {
			continue
		}
		total++
		if e.OK {
			ok++
			ms = append(ms, e.Millis)
		}
	}
	slices.Sort(ms)
	counts := []Stat{
		{prefix + " count", float64(total), ""},
		{prefix + " succeeded", float64(ok), ""},
	}
	if ok == 0 {
		return counts
	}
	return append(counts, []Stat{
		{prefix + " p50", quantile(ms, 0.5), "ms"},
		{prefix + " p90", quantile(ms, 0.9), "ms"},
		{prefix + " p99", quantile(ms, 0.99), "ms"},
		{prefix + " max", quantile(ms, 1), "ms"},
	}...)
}

func millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
