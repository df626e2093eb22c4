package replicas

import (
	"context"
	"errors"
	"strings"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
)

// Checker answers health checks for a server that depends on pools of
// replicas, such as the gateway. It knows these service names:
//
//   - "" and each of the server's own services: serving while every pool
//     has at least one replica in use, since the server cannot do its work
//     otherwise;
//   - each pool's service, such as "tienda.inventory.v1.InventoryService":
//     serving while at least one of its replicas is in use;
//   - a pool's service, a slash and a replica URL, such as
//     "tienda.inventory.v1.InventoryService/http://127.0.0.1:8081":
//     serving while that replica is in use.
type Checker struct {
	own   map[string]bool
	pools []*Pool
}

var _ grpchealth.Checker = (*Checker)(nil)

// NewChecker returns a checker for a server that serves the services named
// own and calls the services of pools.
func NewChecker(own []string, pools ...*Pool) *Checker {
	c := &Checker{own: map[string]bool{"": true}, pools: pools}
	for _, s := range own {
		c.own[s] = true
	}
	return c
}

// Check reports the status of one service name; see [Checker].
func (c *Checker) Check(_ context.Context, req *grpchealth.CheckRequest) (*grpchealth.CheckResponse, error) {
	serving := func(ok bool) (*grpchealth.CheckResponse, error) {
		if ok {
			return &grpchealth.CheckResponse{Status: grpchealth.StatusServing}, nil
		}
		return &grpchealth.CheckResponse{Status: grpchealth.StatusNotServing}, nil
	}
	if c.own[req.Service] {
		all := true
		for _, p := range c.pools {
			all = all && p.Healthy()
		}
		return serving(all)
	}
	for _, p := range c.pools {
		if req.Service == p.service {
			return serving(p.Healthy())
		}
		replica, ok := strings.CutPrefix(req.Service, p.service+"/")
		if !ok {
			continue
		}
		for _, s := range p.Statuses() {
			if s.URL == replica {
				return serving(s.Healthy)
			}
		}
	}
	return nil, connect.NewError(connect.CodeNotFound, errors.New("unknown service "+req.Service))
}
