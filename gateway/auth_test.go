package gateway

import (
	"bytes"
	"encoding/base64"
	"log/slog"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	shopv1 "github.com/tienda/tienda/gen/tienda/shop/v1"
)

func TestCreateSession(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			res, err := env.client(t, p).CreateSession(t.Context(),
				connect.NewRequest(&shopv1.CreateSessionRequest{}))
			if err != nil {
				t.Fatalf("CreateSession: %v", err)
			}
			if id := res.Msg.GetShopperId(); !strings.HasPrefix(id, "shp_") || len(id) < 20 {
				t.Errorf("CreateSession: shopper_id = %q, want shp_ and a random part", id)
			}
			want := env.clock.Now().Add(DefaultSessionTTL)
			if got := res.Msg.GetExpireTime().AsTime(); !got.Equal(want) {
				t.Errorf("CreateSession: expire_time = %v, want %v", got, want)
			}
			got, err := env.gw.verifyToken(res.Msg.GetToken())
			if err != nil || got != res.Msg.GetShopperId() {
				t.Errorf("verifyToken(new token) = %q, %v, want %q", got, err, res.Msg.GetShopperId())
			}
		})
	}
}

func TestTokenIsRequired(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	valid := newSession(t, env.client(t, protocols[0])).token
	other := newSession(t, env.client(t, protocols[0])).token

	// A gateway with another secret signs tokens this one must refuse.
	stranger, err := New(Config{
		Inventory: env.gw.inv,
		Cart:      env.gw.cart,
		Secret:    []byte(strings.Repeat("x", MinSecretBytes)),
		Logger:    slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	validPayload, validSig, _ := strings.Cut(valid, ".")
	otherPayload, _, _ := strings.Cut(other, ".")

	tests := []struct {
		name          string
		authorization string
		wantCode      connect.Code // 0 for success
		wantMsg       string
	}{
		{name: "valid", authorization: "Bearer " + valid},
		{name: "scheme_in_lower_case", authorization: "bearer " + valid},
		{name: "missing", wantCode: connect.CodeUnauthenticated, wantMsg: "missing bearer token"},
		{
			name:          "other_scheme",
			authorization: "Basic dXNlcjpwYXNz",
			wantCode:      connect.CodeUnauthenticated,
			wantMsg:       "missing bearer token",
		},
		{
			name:          "malformed",
			authorization: "Bearer not-a-token",
			wantCode:      connect.CodeUnauthenticated,
			wantMsg:       "malformed bearer token",
		},
		{
			name:          "bad_base64",
			authorization: "Bearer !!!." + validSig,
			wantCode:      connect.CodeUnauthenticated,
			wantMsg:       "malformed bearer token",
		},
		{
			name:          "signed_with_other_secret",
			authorization: "Bearer " + stranger.signToken("shp_mallory", env.clock.Now().Add(time.Hour)),
			wantCode:      connect.CodeUnauthenticated,
			wantMsg:       "invalid bearer token",
		},
		{
			name:          "payload_of_another_token",
			authorization: "Bearer " + otherPayload + "." + validSig,
			wantCode:      connect.CodeUnauthenticated,
			wantMsg:       "invalid bearer token",
		},
		{
			// 12 characters are 9 whole bytes: valid base64, wrong MAC.
			name:          "signature_cut_short",
			authorization: "Bearer " + validPayload + "." + validSig[:12],
			wantCode:      connect.CodeUnauthenticated,
			wantMsg:       "invalid bearer token",
		},
	}
	for _, p := range protocols {
		client := env.client(t, p)
		for _, tc := range tests {
			t.Run(p.name+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				r := connect.NewRequest(&shopv1.GetCartRequest{})
				if tc.authorization != "" {
					r.Header().Set("Authorization", tc.authorization)
				}
				_, err := client.GetCart(t.Context(), r)
				if tc.wantCode == 0 {
					if err != nil {
						t.Fatalf("GetCart: %v", err)
					}
					return
				}
				cerr := checkCode(t, "GetCart", err, tc.wantCode, tc.wantMsg)
				got := cerr.Meta().Get("WWW-Authenticate")
				if p.opts == nil && !strings.HasPrefix(got, "Bearer") {
					t.Errorf("GetCart: WWW-Authenticate = %q, want a Bearer challenge", got)
				}
			})
		}
	}
}

func TestTokenExpires(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	s := newSession(t, env.client(t, protocols[0]))

	env.clock.Advance(DefaultSessionTTL - time.Second)
	if _, err := s.shop.GetCart(t.Context(), req(s, &shopv1.GetCartRequest{})); err != nil {
		t.Fatalf("GetCart a second before expiry: %v", err)
	}
	env.clock.Advance(time.Second)
	_, err := s.shop.GetCart(t.Context(), req(s, &shopv1.GetCartRequest{}))
	checkCode(t, "GetCart at expiry", err, connect.CodeUnauthenticated, "expired")
}

func TestStreamRequiresToken(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			stream, err := env.client(t, p).WatchAvailability(t.Context(),
				connect.NewRequest(&shopv1.WatchAvailabilityRequest{Skus: []string{skuMug}}))
			if err == nil {
				defer stream.Close()
				for stream.Receive() {
					t.Errorf("WatchAvailability without token: got %v", stream.Msg())
				}
				err = stream.Err()
			}
			checkCode(t, "WatchAvailability", err, connect.CodeUnauthenticated, "missing bearer token")
		})
	}
}

func TestOrderID(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	g := env.gw
	id := g.orderID("shp_a", "req-1")
	if !strings.HasPrefix(id, "ord_") || len(id) != len("ord_")+20 {
		t.Errorf("orderID = %q, want ord_ and 20 characters", id)
	}
	if again := g.orderID("shp_a", "req-1"); again != id {
		t.Errorf("orderID again = %q, want %q", again, id)
	}
	for _, other := range [][2]string{{"shp_b", "req-1"}, {"shp_a", "req-2"}, {"shp_a\x00req", "-1"}} {
		if got := g.orderID(other[0], other[1]); got == id {
			t.Errorf("orderID(%q, %q) = %q, the id of (shp_a, req-1)", other[0], other[1], got)
		}
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	good := Config{
		Inventory: env.gw.inv,
		Cart:      env.gw.cart,
		Secret:    make([]byte, MinSecretBytes),
		Logger:    slog.New(slog.DiscardHandler),
	}
	tests := []struct {
		name   string
		change func(*Config)
	}{
		{name: "short_secret", change: func(c *Config) { c.Secret = c.Secret[:MinSecretBytes-1] }},
		{name: "no_inventory", change: func(c *Config) { c.Inventory = nil }},
		{name: "no_cart", change: func(c *Config) { c.Cart = nil }},
		{name: "no_logger", change: func(c *Config) { c.Logger = nil }},
		{name: "negative_ttl", change: func(c *Config) { c.SessionTTL = -time.Second }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := good
			tc.change(&cfg)
			if _, err := New(cfg); err == nil {
				t.Errorf("New: got no error")
			}
		})
	}
	if _, err := New(good); err != nil {
		t.Errorf("New(good config): %v", err)
	}
}

// TestTokenHasOneSpelling flips the unused low bits of a token's last
// character, which a lax base64 decoder ignores: the variant must be
// refused, so that a token cannot be re-minted in other spellings.
func TestTokenHasOneSpelling(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	g := env.gw
	token := g.signToken("shp_spelling", g.now().Add(time.Hour))
	if _, err := g.verifyToken(token); err != nil {
		t.Fatalf("verifyToken(own token) = %v", err)
	}

	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	_, sig, _ := strings.Cut(token, ".")
	want, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		t.Fatal(err)
	}
	variants := 0
	for _, c := range alphabet {
		variant := sig[:len(sig)-1] + string(c)
		got, err := base64.RawURLEncoding.DecodeString(variant)
		if variant == sig || err != nil || !bytes.Equal(got, want) {
			continue // not a lax spelling of the same signature
		}
		variants++
		head, _, _ := strings.Cut(token, ".")
		if _, err := g.verifyToken(head + "." + variant); err == nil {
			t.Errorf("verifyToken accepted the variant spelling %q of %q", variant, sig)
		}
	}
	if variants == 0 {
		t.Fatalf("signature %q has no lax variants to try; the test proves nothing", sig)
	}
}
