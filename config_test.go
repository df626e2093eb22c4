package main

import (
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    func(c *config)
		wantErr []string
	}{
		{
			name: "defaults",
			want: func(c *config) {},
		},
		{
			name: "one_part_with_flags",
			args: []string{"gateway", "-gateway-addr", "127.0.0.1:9090", "-inventory-url", "http://a:1,http://b:2"},
			want: func(c *config) {
				c.Mode = modeGateway
				c.GatewayAddr = "127.0.0.1:9090"
				c.InventoryURLs = []string{"http://a:1", "http://b:2"}
			},
		},
		{
			name: "environment_fills_in",
			env: map[string]string{
				"TIENDA_DATA_DIR":        "/tmp/shop",
				"TIENDA_CORS_ORIGINS":    "http://localhost:5173, http://localhost:3000",
				"TIENDA_RESERVATION_TTL": "30s",
				"TIENDA_LOG_LEVEL":       "debug",
			},
			want: func(c *config) {
				c.DataDir = "/tmp/shop"
				c.CORSOrigins = []string{"http://localhost:5173", "http://localhost:3000"}
				c.ReservationTTL = 30 * time.Second
				c.LogLevel = slog.LevelDebug
			},
		},
		{
			name: "flag_beats_environment",
			args: []string{"-data-dir", "flag"},
			env:  map[string]string{"TIENDA_DATA_DIR": "env"},
			want: func(c *config) { c.DataDir = "flag" },
		},
		{
			name:    "unknown_part",
			args:    []string{"warehouse"},
			wantErr: []string{`unknown part "warehouse"`},
		},
		{
			name:    "every_fault_named",
			args:    []string{"-session-secret", "short", "-log-format", "xml", "-cart-dsn", "mysql://x"},
			wantErr: []string{"session-secret", "log-format", "cart-dsn"},
		},
		{
			name:    "bad_duration",
			env:     map[string]string{"TIENDA_RESERVATION_TTL": "soon"},
			wantErr: []string{"reservation-ttl"},
		},
		{
			name:    "bad_url",
			args:    []string{"-cart-url", "localhost:8082"},
			wantErr: []string{"cart-url"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			getenv := func(k string) string { return tc.env[k] }
			got, err := parseConfig(tc.args, getenv, io.Discard)
			if len(tc.wantErr) > 0 {
				for _, want := range tc.wantErr {
					if err == nil || !strings.Contains(err.Error(), want) {
						t.Errorf("parseConfig(%q) error = %v, want it to mention %q", tc.args, err, want)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("parseConfig(%q): %v", tc.args, err)
			}
			want := defaults
			tc.want(&want)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("parseConfig(%q) mismatch (-want +got):\n%s", tc.args, diff)
			}
		})
	}
}
