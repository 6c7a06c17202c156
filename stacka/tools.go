package stacka

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/agentos/agentos/core"
)

// validID: an agent or tool id, 1-128 letters, digits, '_', '.' or '-',
// beginning with a letter or digit.
func validID(id string) bool { return core.ValidName(id, 128, "_.-") }

// lookupTool finds a tool in the tenant's registry, then among builtins.
func (s *Service) lookupTool(ctx context.Context, tenantID, toolID string) (core.ToolDescriptor, error) {
	td, err := s.cachedTool(ctx, tenantID, toolID)
	if err == nil {
		return td, nil
	}
	if !core.IsCode(err, core.CodeNotFound) {
		return td, err
	}
	if b, ok := builtinTool(toolID); ok {
		return b, nil
	}
	return td, core.NotFound("tool", toolID)
}

// resolveTool checks that the run may call toolID and returns its descriptor.
func (s *Service) resolveTool(ctx context.Context, r *core.RunRecord, toolID string) (core.ToolDescriptor, error) {
	if !slices.Contains(r.Tools, toolID) {
		return core.ToolDescriptor{ToolID: toolID}, core.Errorf(core.CodeForbidden, "tool %s is not in this run's tool set", toolID).With("tool_id", toolID)
	}
	return s.lookupTool(ctx, r.TenantID, toolID)
}

func (s *Service) modelTools(ctx context.Context, tenantID string, ids []string) ([]core.ModelTool, error) {
	out := make([]core.ModelTool, 0, len(ids))
	for _, id := range ids {
		td, err := s.lookupTool(ctx, tenantID, id)
		if err != nil {
			if core.IsCode(err, core.CodeNotFound) {
				continue
			}
			return nil, err
		}
		name := td.Name
		if name == "" {
			name = td.ToolID
		}
		schema := td.InputSchema
		if schema == nil {
			schema = map[string]any{"type": "object"}
		}
		out = append(out, core.ModelTool{ToolID: td.ToolID, Name: name, Description: td.Description, InputSchema: schema})
	}
	return out, nil
}

func (s *Service) toolIDByName(ctx context.Context, r *core.RunRecord, name string) string {
	for _, id := range r.Tools {
		if id == name {
			return id
		}
		if td, err := s.lookupTool(ctx, r.TenantID, id); err == nil && td.Name == name {
			return id
		}
	}
	return name
}

func cfgString(td core.ToolDescriptor, keys ...string) string {
	for _, k := range keys {
		if v, ok := td.Config[k].(string); ok && v != "" {
			return v
		}
	}
	return ""
}

// egressPolicy decides which addresses tools may reach; it is applied to
// the resolved IP at dial time, so a name cannot smuggle a private address.
type egressPolicy struct {
	hosts    []string
	nets     []*net.IPNet
	loopback bool
}

func newEgressPolicy(cfg Config) (egressPolicy, error) {
	p := egressPolicy{loopback: cfg.AllowLoopbackEgress}
	for _, h := range cfg.ToolEgressAllow {
		h = strings.ToLower(strings.TrimSpace(h))
		if h == "" {
			continue
		}
		if strings.Contains(h, "/") {
			_, n, err := net.ParseCIDR(h)
			if err != nil {
				return p, fmt.Errorf("tool egress allow %q: %w", h, err)
			}
			p.nets = append(p.nets, n)
			continue
		}
		if ip := net.ParseIP(h); ip != nil {
			bits := 32
			if ip.To4() == nil {
				bits = 128
			}
			p.nets = append(p.nets, &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)})
			continue
		}
		p.hosts = append(p.hosts, h)
	}
	return p, nil
}

var cgnat = &net.IPNet{IP: net.IPv4(100, 64, 0, 0), Mask: net.CIDRMask(10, 32)}

func (p egressPolicy) hostListed(host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, h := range p.hosts {
		if h == host || (strings.HasPrefix(h, "*.") && strings.HasSuffix(host, h[1:])) {
			return true
		}
	}
	return false
}

func (p egressPolicy) allowed(host string, ip net.IP) bool {
	for _, n := range p.nets {
		if n.Contains(ip) {
			return true
		}
	}
	if ip.IsLoopback() {
		return p.loopback
	}
	if ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.IsUnspecified() ||
		ip.IsMulticast() || ip.IsInterfaceLocalMulticast() || cgnat.Contains(ip) {
		return false
	}
	return p.hostListed(host)
}

func (p egressPolicy) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	var ips []net.IP
	if ip := net.ParseIP(host); ip != nil {
		ips = []net.IP{ip}
	} else {
		addrs, err := net.DefaultResolver.LookupIPAddr(ctx, host)
		if err != nil {
			return nil, core.Errorf(core.CodeDependencyUnavailable, "resolve %s: %v", host, err)
		}
		for _, a := range addrs {
			ips = append(ips, a.IP)
		}
	}
	d := net.Dialer{Timeout: 10 * time.Second}
	for _, ip := range ips {
		if p.allowed(host, ip) {
			return d.DialContext(ctx, network, net.JoinHostPort(ip.String(), port))
		}
	}
	return nil, core.Errorf(core.CodeForbidden, "egress to %s is not allowed", host).With("host", host)
}

func newEgressClient(cfg Config) (*http.Client, error) {
	p, err := newEgressPolicy(cfg)
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{Proxy: nil, DialContext: p.dial, MaxIdleConnsPerHost: 16, IdleConnTimeout: 60 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second, ResponseHeaderTimeout: 60 * time.Second}
	return &http.Client{Transport: tr, Timeout: 5 * time.Minute,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return core.Errorf(core.CodeForbidden, "too many redirects")
			}
			return nil
		}}, nil
}

// EnsureTool registers td for tenantID unless an identical descriptor is
// already there (the demo seed calls it on every start).
func (s *Service) EnsureTool(ctx context.Context, tenantID string, td core.ToolDescriptor) error {
	td.TenantID = tenantID
	if err := validateTool(&td); err != nil {
		return err
	}
	if prev, err := s.tools.GetTool(ctx, tenantID, td.ToolID); err == nil {
		prev.CreatedAt, prev.UpdatedAt = nil, nil
		a, _ := json.Marshal(prev)
		b, _ := json.Marshal(td)
		if bytes.Equal(a, b) {
			return nil
		}
	}
	_, err := s.tools.PutTool(ctx, td)
	s.cache.forget("x/" + tenantID + "/" + td.ToolID)
	return err
}
