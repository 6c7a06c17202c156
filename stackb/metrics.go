package stackb

import (
	"github.com/prometheus/client_golang/prometheus"
)

// gatewayMetrics are Stack B's metrics. Labels are bounded: backend names
// come from the providers file, statuses and kinds from fixed sets.
type gatewayMetrics struct {
	requests   *prometheus.CounterVec // backend, status
	errors     *prometheus.CounterVec // code
	tokens     *prometheus.CounterVec // direction
	cost       prometheus.Counter
	blocks     prometheus.Counter
	redactions *prometheus.CounterVec // kind
	backendUp  *prometheus.GaugeVec   // backend
	latency    *prometheus.HistogramVec
}

func newGatewayMetrics(reg prometheus.Registerer) (*gatewayMetrics, error) {
	m := &gatewayMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "agentos_model_requests_total",
			Help: "Model calls through Stack B by backend and outcome (ok or an error code)."}, []string{"backend", "status"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "agentos_model_errors_total",
			Help: "Model calls that ended in an error, by error code."}, []string{"code"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "agentos_tokens_total",
			Help: "Tokens metered, by direction (input or output)."}, []string{"direction"}),
		cost: prometheus.NewCounter(prometheus.CounterOpts{Name: "agentos_cost_usd_total",
			Help: "Estimated model cost metered, in USD."}),
		blocks: prometheus.NewCounter(prometheus.CounterOpts{Name: "agentos_policy_blocks_total",
			Help: "Requests the policy engine blocked."}),
		redactions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "agentos_redactions_total",
			Help: "Spans redacted by the policy engine, by kind."}, []string{"kind"}),
		backendUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "agentos_backend_up",
			Help: "1 when the model backend is in routing, 0 when health took it out."}, []string{"backend"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "agentos_model_latency_seconds",
			Help:    "Latency of successful backend calls.",
			Buckets: []float64{0.001, 0.005, 0.025, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}}, []string{"backend"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.errors, m.tokens, m.cost, m.blocks, m.redactions, m.backendUp, m.latency} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
