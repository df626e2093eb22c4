// Package replicas spreads a client's calls over several replicas of one
// service. A [Pool] is an http.RoundTripper: a Connect client built on it
// addresses the service by one logical base URL, and each call goes to the
// next healthy replica in turn.
//
// A replica is skipped while it fails its gRPC health check or refuses
// connections, and used again once its health check passes. A call that
// could not connect is sent to another replica, since it reached no
// server; a call that reached a server is never repeated here (retrying
// is the caller's decision, for idempotent calls only).
package replicas

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
)

// Pool is a set of replicas of one service. It is safe for concurrent use.
type Pool struct {
	service   string // the gRPC service name health checks ask about
	replicas  []*replica
	transport http.RoundTripper
	logger    *slog.Logger
	next      atomic.Uint64
}

type replica struct {
	url     *url.URL
	healthy atomic.Bool
}

// Status is what a pool knows of one replica.
type Status struct {
	URL     string
	Healthy bool
}

// New returns a pool over the replicas at urls, reached through transport.
// service is the gRPC service name that health checks ask about. Every
// replica counts as healthy until a check or a connection says otherwise.
func New(service string, urls []string, transport http.RoundTripper, logger *slog.Logger) (*Pool, error) {
	if len(urls) == 0 {
		return nil, errors.New("no replica URLs")
	}
	p := &Pool{service: service, transport: transport, logger: logger}
	for _, raw := range urls {
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("replica URL %q: want scheme://host:port", raw)
		}
		r := &replica{url: u}
		r.healthy.Store(true)
		p.replicas = append(p.replicas, r)
	}
	return p, nil
}

// RoundTrip sends req to the next healthy replica. If every replica is
// marked unhealthy it still tries them all, since a mark can be stale.
func (p *Pool) RoundTrip(req *http.Request) (*http.Response, error) {
	var lastErr error
	for _, r := range p.order() {
		res, err := p.transport.RoundTrip(p.rewrite(req, r))
		if err == nil {
			return res, nil
		}
		lastErr = err
		if !refused(err) || !rewindable(req) {
			return nil, err
		}
		p.mark(r, false, err)
		if req.GetBody != nil {
			body, berr := req.GetBody()
			if berr != nil {
				return nil, err
			}
			req = req.Clone(req.Context())
			req.Body = body
		}
	}
	return nil, lastErr
}

// order returns the replicas to try for one call: healthy ones first,
// starting at the next in turn, then the unhealthy ones.
func (p *Pool) order() []*replica {
	n := len(p.replicas)
	start := int(p.next.Add(1) % uint64(n))
	healthy := make([]*replica, 0, n)
	var sick []*replica
	for i := range n {
		r := p.replicas[(start+i)%n]
		if r.healthy.Load() {
			healthy = append(healthy, r)
		} else {
			sick = append(sick, r)
		}
	}
	return append(healthy, sick...)
}

func (p *Pool) rewrite(req *http.Request, r *replica) *http.Request {
	out := req.Clone(req.Context())
	out.URL.Scheme = r.url.Scheme
	out.URL.Host = r.url.Host
	out.Host = r.url.Host
	return out
}

func (p *Pool) mark(r *replica, healthy bool, reason error) {
	if r.healthy.Swap(healthy) == healthy {
		return
	}
	if healthy {
		p.logger.Info("replica back in use", slog.String("service", p.service),
			slog.String("replica", r.url.String()))
		return
	}
	p.logger.Warn("replica skipped", slog.String("service", p.service),
		slog.String("replica", r.url.String()), slog.String("err", reason.Error()))
}

// Statuses reports every replica and whether it is in use.
func (p *Pool) Statuses() []Status {
	out := make([]Status, len(p.replicas))
	for i, r := range p.replicas {
		out[i] = Status{URL: r.url.String(), Healthy: r.healthy.Load()}
	}
	return out
}

// Healthy reports whether at least one replica is in use.
func (p *Pool) Healthy() bool {
	for _, r := range p.replicas {
		if r.healthy.Load() {
			return true
		}
	}
	return false
}

// Watch checks every replica's health each interval until ctx is done,
// marking replicas in or out of use as the checks say. It blocks, so run it
// in its own goroutine.
func (p *Pool) Watch(ctx context.Context, interval time.Duration) {
	client := &http.Client{Transport: p.transport}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		p.CheckNow(ctx, client)
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// CheckNow runs one health check of every replica, in parallel.
func (p *Pool) CheckNow(ctx context.Context, client *http.Client) {
	var wg sync.WaitGroup
	for _, r := range p.replicas {
		wg.Go(func() {
			checkCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			health := grpchealth.NewClient(client, r.url.String(), connect.WithGRPC())
			res, err := health.Check(checkCtx, &grpchealth.CheckRequest{Service: p.service})
			if ctx.Err() != nil {
				return // shutting down: the check says nothing about the replica
			}
			switch {
			case err != nil:
				p.mark(r, false, err)
			case res.Status != grpchealth.StatusServing:
				p.mark(r, false, fmt.Errorf("health status %v", res.Status))
			default:
				p.mark(r, true, nil)
			}
		})
	}
	wg.Wait()
}

// refused reports whether err means the call never reached a server.
func refused(err error) bool {
	var opErr *net.OpError
	return errors.Is(err, syscall.ECONNREFUSED) ||
		errors.As(err, &opErr) && opErr.Op == "dial"
}

func rewindable(req *http.Request) bool {
	return req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
}
