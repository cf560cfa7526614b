package testnet

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"peer/internal/config"
)

// write puts results.json, events.csv, summary.csv and the scenario's plot in dir.
func (r *Result) write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	plots, err := r.plot(dir)
	if err != nil {
		return fmt.Errorf("plotting: %w", err)
	}
	r.Files = append([]string{"results.json", "events.csv", "summary.csv"}, plots...)
	if err := writeCSV(filepath.Join(dir, "events.csv"), eventRows(r.Events)); err != nil {
		return err
	}
	if err := writeCSV(filepath.Join(dir, "summary.csv"), summaryRows(r.Summary)); err != nil {
		return err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "results.json"), append(b, '\n'), 0o644)
}

func eventRows(evs []Event) [][]string {
	rows := [][]string{{"kind", "node", "target", "seeders", "peers", "killed", "ms", "bytes", "mbps", "ok", "available", "error"}}
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	for _, e := range evs {
		rows = append(rows, []string{e.Kind, strconv.Itoa(e.Node), e.Target, strconv.Itoa(e.Seeders), strconv.Itoa(e.Peers), f(e.Killed),
			f(e.Millis), strconv.FormatInt(e.Bytes, 10), f(e.MBps), strconv.FormatBool(e.OK), strconv.FormatBool(e.Available), e.Err})
	}
	return rows
}

func summaryRows(stats []Stat) [][]string {
	rows := [][]string{{"name", "value", "unit"}}
	for _, s := range stats {
		rows = append(rows, []string{s.Name, strconv.FormatFloat(s.Value, 'f', -1, 64), s.Unit})
	}
	return rows
}

func writeCSV(path string, rows [][]string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	if err := w.WriteAll(rows); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// WriteSummary prints the run's summary as a table.
func (r *Result) WriteSummary(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "scenario\t%s\t\n", r.Scenario)
	fmt.Fprintf(tw, "nodes\t%d (%s)\t\n", r.Nodes, r.Setup.Transport)
	if r.Setup.Transport == "mocknet" {
		fmt.Fprintf(tw, "links\t%s latency, %s\t\n", r.Latency, bandwidthText(r.Bandwidth))
	}
	fmt.Fprintf(tw, "setup\t%.2f s\t\n", r.Setup.Seconds)
	if r.Setup.HeapPerNode > 0 {
		fmt.Fprintf(tw, "memory per node\t%s heap, %s RSS, %d goroutines\t\n", mib(r.Setup.HeapPerNode), mib(r.Setup.RSSPerNode), r.Setup.Goroutines)
	}
	for _, s := range r.Summary {
		v := strconv.FormatFloat(s.Value, 'f', 2, 64)
		if s.Value == math.Trunc(s.Value) && s.Unit == "" {
			v = strconv.FormatFloat(s.Value, 'f', 0, 64)
		}
		fmt.Fprintf(tw, "%s\t%s %s\t\n", s.Name, v, s.Unit)
	}
	fmt.Fprintf(tw, "took\t%.2f s\t\n", r.Duration.Seconds())
	for _, f := range r.Files {
		fmt.Fprintf(tw, "wrote\t%s\t\n", f)
	}
	return tw.Flush()
}

func bandwidthText(b float64) string {
	if b == 0 {
		return "unlimited bandwidth"
	}
	return config.FormatBytes(b) + "/s"
}

// plot draws the scenario's figure into dir and returns the file names.
func (r *Result) plot(dir string) ([]string, error) {
	switch r.Scenario {
	case "dht":
		name := "dht-lookup-cdf.png"
		return []string{name}, r.cdf(filepath.Join(dir, name), "lookup", "DHT lookup latency (provider found)", "time to find the provider (ms)")
	case "gossip":
		name := "gossip-propagation-cdf.png"
		return []string{name}, r.cdf(filepath.Join(dir, name), "receipt", "Gossip propagation delay", "publish to receipt at a node (ms)")
	case "transfer":
		name := "transfer-throughput.png"
		return []string{name}, r.throughput(filepath.Join(dir, name))
	case "churn":
		name := "churn-availability.png"
		return []string{name}, r.churn(filepath.Join(dir, name))
	}
	return nil, nil
}

// title is a plot's title: what it shows, then the conditions it was measured under (nodes,
// transport, link latency and bandwidth, and for transfers the file size and seeder rate).
func (r *Result) title(what string) string {
	cond := []string{fmt.Sprintf("%d nodes", r.Nodes)}
	if r.Setup.Transport == "mocknet" {
		cond = append(cond, "mocknet", r.Latency+" latency", bandwidthText(r.Bandwidth))
	} else {
		cond = append(cond, "loopback "+r.Setup.Transport)
	}
	if r.Scenario == "transfer" || r.Scenario == "churn" {
		cond = append(cond, config.FormatSize(uint64(r.Options.FileSize))+" files")
		if r.Options.SeederRate > 0 {
			cond = append(cond, "seeders capped at "+config.FormatBytes(float64(r.Options.SeederRate))+"/s")
		} else {
			cond = append(cond, "seeders uncapped")
		}
	}
	return what + "\n" + strings.Join(cond, ", ")
}

// cdf plots the empirical CDF of the Millis of successful events of kind.
func (r *Result) cdf(path, kind, title, xlabel string) error {
	var ms []float64
	total := 0
	for _, e := range r.Events {
		if e.Kind == kind {
			total++
			if e.OK {
				ms = append(ms, e.Millis)
			}
		}
	}
	slices.Sort(ms)
	xys := make(plotter.XYs, 0, len(ms)+1)
	if len(ms) > 0 {
		xys = append(xys, plotter.XY{X: ms[0], Y: 0})
	}
	for i, v := range ms {
		// Divided by all events, so failures keep the curve below 1.
		xys = append(xys, plotter.XY{X: v, Y: float64(i+1) / float64(max(total, 1))})
	}
	p := plot.New()
	p.Title.Text = r.title(title)
	p.X.Label.Text = xlabel
	p.Y.Label.Text = "fraction of " + kind + "s"
	p.Y.Min, p.Y.Max = 0, 1
	p.Add(plotter.NewGrid())
	if len(xys) > 0 {
		l, err := plotter.NewLine(xys)
		if err != nil {
			return err
		}
		l.StepStyle = plotter.PostStep
		l.Width = vg.Points(1.5)
		p.Add(l)
	}
	return p.Save(6*vg.Inch, 4*vg.Inch, path)
}

// throughput plots fetch throughput against the number of seeders.
func (r *Result) throughput(path string) error {
	var xys plotter.XYs
	for _, e := range r.Events {
		if e.Kind == "fetch" && e.OK {
			xys = append(xys, plotter.XY{X: float64(e.Seeders), Y: e.MBps})
		}
	}
	p := plot.New()
	p.Title.Text = r.title("Fetch throughput against seeders")
	p.X.Label.Text = "seeders"
	p.Y.Label.Text = "throughput (MB/s)"
	p.Y.Min = 0
	p.Add(plotter.NewGrid())
	if len(xys) > 0 {
		if err := plotutil.AddLinePoints(p, "fetch", xys); err != nil {
			return err
		}
	}
	return p.Save(6*vg.Inch, 4*vg.Inch, path)
}

// churn plots, against the fraction of nodes killed, the fraction of files fetched and the
// fraction that still had a live holder.
func (r *Result) churn(path string) error {
	type step struct{ ok, avail, n int }
	steps := map[float64]*step{}
	var keys []float64
	for _, e := range r.Events {
		if e.Kind != "probe" {
			continue
		}
		s := steps[e.Killed]
		if s == nil {
			s = &step{}
			steps[e.Killed] = s
			keys = append(keys, e.Killed)
		}
		s.n++
		if e.OK {
			s.ok++
		}
		if e.Available {
			s.avail++
		}
	}
	slices.Sort(keys)
	var fetched, avail, expect plotter.XYs
	for _, k := range keys {
		s := steps[k]
		fetched = append(fetched, plotter.XY{X: k, Y: float64(s.ok) / float64(s.n)})
		avail = append(avail, plotter.XY{X: k, Y: float64(s.avail) / float64(s.n)})
	}
	for killed := 0; killed <= r.Nodes; killed++ {
		expect = append(expect, plotter.XY{X: float64(killed) / float64(r.Nodes), Y: 1 - allKilled(r.Nodes, killed, r.Options.Replicas)})
	}
	p := plot.New()
	p.Title.Text = r.title("Files fetchable under churn")
	p.X.Label.Text = "fraction of nodes killed"
	p.Y.Label.Text = "fraction of files"
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = 0, 1, 0, 1.05
	p.Add(plotter.NewGrid())
	p.Legend.Top = false
	p.Legend.Left = true
	if len(keys) > 0 {
		if err := plotutil.AddLinePoints(p, "fetched by a new node", fetched, "a holder is alive", avail); err != nil {
			return err
		}
		l, err := plotter.NewLine(expect)
		if err != nil {
			return err
		}
		l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		l.Color = plotutil.Color(2)
		p.Add(l)
		p.Legend.Add(fmt.Sprintf("expected: 1 - P(all %d holders killed)", r.Options.Replicas), l)
	}
	return p.Save(6*vg.Inch, 4*vg.Inch, path)
}

// allKilled is the probability that r given nodes of n are all among k killed at random:
// C(n-r, k-r) / C(n, k) = k(k-1)...(k-r+1) / (n(n-1)...(n-r+1)).
func allKilled(n, k, r int) float64 {
	if k < r {
		return 0
	}
	p := 1.0
	for i := range r {
		p *= float64(k-i) / float64(n-i)
	}
	return p
}
