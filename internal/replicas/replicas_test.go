package replicas_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"

	"github.com/tienda/tienda/internal/replicas"
)

const service = "tienda.test.v1.TestService"

// replicaServer is one replica: a health service that counts its calls.
type replicaServer struct {
	srv     *httptest.Server
	checker *grpchealth.StaticChecker
	calls   atomic.Int64
}

func startReplica(tb testing.TB) *replicaServer {
	tb.Helper()
	r := &replicaServer{checker: grpchealth.NewStaticChecker(service)}
	mux := http.NewServeMux()
	mux.Handle(grpchealth.NewHandler(r.checker))
	r.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.calls.Add(1)
		mux.ServeHTTP(w, req)
	}))
	r.srv.Config.Protocols = new(http.Protocols)
	r.srv.Config.Protocols.SetHTTP1(true)
	r.srv.Config.Protocols.SetUnencryptedHTTP2(true)
	r.srv.Start()
	tb.Cleanup(r.srv.Close)
	return r
}

func newPool(tb testing.TB, servers ...*replicaServer) *replicas.Pool {
	tb.Helper()
	var urls []string
	for _, s := range servers {
		urls = append(urls, s.srv.URL)
	}
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	pool, err := replicas.New(service, urls, &http.Transport{Protocols: p}, slog.New(slog.DiscardHandler))
	if err != nil {
		tb.Fatalf("replicas.New: %v", err)
	}
	return pool
}

// call makes one health check through the pool, addressed to a logical
// host that only the pool resolves.
func call(tb testing.TB, pool *replicas.Pool) error {
	tb.Helper()
	client := grpchealth.NewClient(&http.Client{Transport: pool}, "http://service.invalid", connect.WithGRPC())
	_, err := client.Check(tb.Context(), &grpchealth.CheckRequest{Service: service})
	return err
}

func TestCallsAreSpreadOverReplicas(t *testing.T) {
	t.Parallel()
	a, b := startReplica(t), startReplica(t)
	pool := newPool(t, a, b)

	for i := range 10 {
		if err := call(t, pool); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if a.calls.Load() != 5 || b.calls.Load() != 5 {
		t.Errorf("calls per replica = %d, %d; want 5, 5", a.calls.Load(), b.calls.Load())
	}
}

func TestRefusedReplicaIsSkipped(t *testing.T) {
	t.Parallel()
	a, b := startReplica(t), startReplica(t)
	pool := newPool(t, a, b)
	a.srv.Close()

	for i := range 6 {
		if err := call(t, pool); err != nil {
			t.Fatalf("call %d with one replica down: %v", i, err)
		}
	}
	if got := b.calls.Load(); got != 6 {
		t.Errorf("live replica served %d calls, want 6", got)
	}
	want := []replicas.Status{{URL: a.srv.URL, Healthy: false}, {URL: b.srv.URL, Healthy: true}}
	if got := pool.Statuses(); got[0] != want[0] || got[1] != want[1] {
		t.Errorf("Statuses() = %v, want %v", got, want)
	}
}

func TestHealthChecksMoveReplicasInAndOut(t *testing.T) {
	t.Parallel()
	a, b := startReplica(t), startReplica(t)
	pool := newPool(t, a, b)
	checkClient := &http.Client{Transport: &http.Transport{Protocols: func() *http.Protocols {
		p := new(http.Protocols)
		p.SetUnencryptedHTTP2(true)
		return p
	}()}}

	b.checker.SetStatus(service, grpchealth.StatusNotServing)
	pool.CheckNow(t.Context(), checkClient)
	if got := pool.Statuses(); !got[0].Healthy || got[1].Healthy {
		t.Fatalf("after b reports not serving, Statuses() = %v", got)
	}
	a.calls.Store(0)
	b.calls.Store(0)
	for range 4 {
		if err := call(t, pool); err != nil {
			t.Fatal(err)
		}
	}
	if a.calls.Load() != 4 || b.calls.Load() != 0 {
		t.Errorf("calls = %d, %d; want all 4 on the healthy replica", a.calls.Load(), b.calls.Load())
	}

	b.checker.SetStatus(service, grpchealth.StatusServing)
	pool.CheckNow(t.Context(), checkClient)
	if got := pool.Statuses(); !got[1].Healthy {
		t.Errorf("after b serves again, Statuses() = %v", got)
	}
}

func TestAllReplicasDownFailsFast(t *testing.T) {
	t.Parallel()
	a := startReplica(t)
	pool := newPool(t, a)
	a.srv.Close()

	err := call(t, pool)
	if got := connect.CodeOf(err); got != connect.CodeUnavailable {
		t.Errorf("call with every replica down: code %v (%v), want Unavailable", got, err)
	}
	if pool.Healthy() {
		t.Error("Healthy() = true with every replica down")
	}
}

func TestCheckerReportsReplicas(t *testing.T) {
	t.Parallel()
	a, b := startReplica(t), startReplica(t)
	pool := newPool(t, a, b)
	a.srv.Close()
	for range 2 { // one of the two calls tries a and notices it is gone
		if err := call(t, pool); err != nil {
			t.Fatal(err)
		}
	}
	checker := replicas.NewChecker([]string{"tienda.shop.v1.ShopService"}, pool)

	tests := []struct {
		name    string
		service string
		want    grpchealth.Status
	}{
		{name: "whole_server", service: "", want: grpchealth.StatusServing},
		{name: "own_service", service: "tienda.shop.v1.ShopService", want: grpchealth.StatusServing},
		{name: "dependency", service: service, want: grpchealth.StatusServing},
		{name: "dead_replica", service: service + "/" + a.srv.URL, want: grpchealth.StatusNotServing},
		{name: "live_replica", service: service + "/" + b.srv.URL, want: grpchealth.StatusServing},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := checker.Check(t.Context(), &grpchealth.CheckRequest{Service: tc.service})
			if err != nil {
				t.Fatalf("Check(%q): %v", tc.service, err)
			}
			if res.Status != tc.want {
				t.Errorf("Check(%q) = %v, want %v", tc.service, res.Status, tc.want)
			}
		})
	}
	_, err := checker.Check(t.Context(), &grpchealth.CheckRequest{Service: "nope"})
	if connect.CodeOf(err) != connect.CodeNotFound {
		t.Errorf("Check(unknown) error = %v, want NotFound", err)
	}
}
