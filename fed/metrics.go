package fed

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	assertions      *prometheus.CounterVec
	forwards        *prometheus.CounterVec
	peerCalls       *prometheus.CounterVec
	relayEvents     prometheus.Counter
	relayReconnects prometheus.Counter
	ingestEvents    *prometheus.CounterVec
	streams         prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (metrics, error) {
	m := metrics{
		assertions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "agentos_fed_peer_assertions_total",
			Help: "Peer assertions verified, by outcome (ok, unauthorized, forbidden).",
		}, []string{"outcome"}),
		forwards: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "agentos_fed_forwards_total",
			Help: "runs:forward requests, by role (sent, received, replayed) and outcome (ok or error code).",
		}, []string{"role", "outcome"}),
		peerCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "agentos_fed_peer_calls_total",
			Help: "Outbound calls to peers, by operation and outcome (ok, retry, error).",
		}, []string{"operation", "outcome"}),
		relayEvents: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "agentos_fed_relay_events_total",
			Help: "Events relayed from peers to this node's clients.",
		}),
		relayReconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "agentos_fed_relay_reconnects_total",
			Help: "Reconnections of relayed event streams after a drop.",
		}),
		ingestEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "agentos_fed_ingest_events_total",
			Help: "Events received by events:ingest, by outcome (stored, duplicate, rejected).",
		}, []string{"outcome"}),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "agentos_fed_event_streams_active",
			Help: "Event streams open on the federation router.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.assertions, m.forwards, m.peerCalls, m.relayEvents, m.relayReconnects, m.ingestEvents, m.streams} {
		if err := reg.Register(c); err != nil {
			return m, fmt.Errorf("register federation metrics: %w", err)
		}
	}
	return m, nil
}
