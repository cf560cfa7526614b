package node

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics is the node's own Prometheus metrics (names start with peer_). libp2p's metrics,
// including the resource manager's, are registered in the same registry by libp2p itself.
// Subsystems count into the exported counters.
type Metrics struct {
	// BlocksSent and BlocksReceived count blocks served to and verified from peers.
	BlocksSent     prometheus.Counter
	BlocksReceived prometheus.Counter
	// Fetches counts fetches by result: "started", "completed", "failed".
	Fetches *prometheus.CounterVec
}

func newMetrics(n *Node) *Metrics {
	m := &Metrics{
		BlocksSent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "peer_blocks_sent_total", Help: "Blocks served to peers.",
		}),
		BlocksReceived: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "peer_blocks_received_total", Help: "Blocks received from peers and verified.",
		}),
		Fetches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "peer_fetches_total", Help: "Fetches by result (started, completed, failed).",
		}, []string{"result"}),
	}
	for _, r := range []string{"started", "completed", "failed"} {
		m.Fetches.WithLabelValues(r)
	}
	n.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.BlocksSent, m.BlocksReceived, m.Fetches,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "peer_peers", Help: "Connected peers.",
		}, func() float64 {
			if h := n.Host(); h != nil {
				return float64(len(h.Network().Peers()))
			}
			return 0
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "peer_dht_routing_table_peers", Help: "Peers in the DHT routing table.",
		}, func() float64 {
			if d := n.Discovery(); d != nil {
				return float64(d.RoutingTableSize())
			}
			return 0
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "peer_dht_provided_roots", Help: "File roots the node provides and re-provides on the DHT.",
		}, func() float64 {
			if d := n.Discovery(); d != nil {
				return float64(d.Stats().Roots)
			}
			return 0
		}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "peer_network_received_bytes_total", Help: "Bytes received from peers (all protocols).",
		}, func() float64 { return float64(n.bw.GetBandwidthTotals().TotalIn) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "peer_network_sent_bytes_total", Help: "Bytes sent to peers (all protocols).",
		}, func() float64 { return float64(n.bw.GetBandwidthTotals().TotalOut) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "peer_files", Help: "Files held in the repo.",
		}, func() float64 {
			if st := n.opts.Store; st != nil {
				return float64(len(st.Files()))
			}
			return 0
		}),
	)
	return m
}
