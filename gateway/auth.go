package gateway

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"connectrpc.com/connect"

	"github.com/tienda/tienda/gen/tienda/shop/v1/shopv1connect"
)

// A session token is
//
//	base64url(payload) "." base64url(HMAC-SHA256(secret, tokenDomain || payload))
//
// where payload is the expiry in Unix seconds as 8 big-endian bytes followed
// by the shopper id. The token is opaque to clients; the gateway keeps no
// session state, so any replica holding the same secret accepts it.
const (
	tokenDomain = "tienda-session-v1\x00"
	orderDomain = "tienda-order-v1\x00"

	shopperPrefix = "shp_"
	bearerPrefix  = "Bearer "
	maxTokenBytes = 512
)

// lowerBase32 encodes random ids and order ids: short, case-insensitive and
// safe in URLs and logs.
var lowerBase32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").
	WithPadding(base32.NoPadding)

// tokenEncoding is strict so that each token has one spelling: a client
// cannot mint variants of a token by flipping unused trailing bits.
var tokenEncoding = base64.RawURLEncoding.Strict()

// Reasons a token is refused. The messages reach the client, so they say
// what to do about it.
var (
	errNoToken = errors.New(`missing bearer token: send "Authorization: Bearer <token>" ` +
		"with the token from CreateSession")
	errMalformedToken = errors.New("malformed bearer token; call CreateSession for a new one")
	errForgedToken    = errors.New("invalid bearer token; call CreateSession for a new one")
)

// newShopperID returns a new random shopper id.
func newShopperID() string {
	b := make([]byte, 15)
	_, _ = rand.Read(b) // never fails: crypto/rand panics on failure instead
	return shopperPrefix + lowerBase32.EncodeToString(b)
}

// signToken returns a token that names shopperID until expiry.
func (g *Gateway) signToken(shopperID string, expiry time.Time) string {
	payload := binary.BigEndian.AppendUint64(nil, uint64(expiry.Unix()))
	payload = append(payload, shopperID...)
	return tokenEncoding.EncodeToString(payload) + "." +
		tokenEncoding.EncodeToString(g.mac(tokenDomain, payload))
}

// verifyToken returns the shopper id that token names, or an error whose
// text may be shown to the client.
func (g *Gateway) verifyToken(token string) (string, error) {
	if len(token) > maxTokenBytes {
		return "", errMalformedToken
	}
	encPayload, encSig, ok := strings.Cut(token, ".")
	if !ok {
		return "", errMalformedToken
	}
	payload, err := tokenEncoding.DecodeString(encPayload)
	if err != nil || len(payload) <= 8 {
		return "", errMalformedToken
	}
	sig, err := tokenEncoding.DecodeString(encSig)
	if err != nil {
		return "", errMalformedToken
	}
	if !hmac.Equal(sig, g.mac(tokenDomain, payload)) {
		return "", errForgedToken
	}

	// The signature is good, so the payload is one this gateway wrote.
	expiry := time.Unix(int64(binary.BigEndian.Uint64(payload)), 0)
	if !g.now().Before(expiry) {
		return "", fmt.Errorf("bearer token expired at %s; call CreateSession for a new one",
			expiry.UTC().Format(time.RFC3339))
	}
	shopperID := string(payload[8:])
	if !strings.HasPrefix(shopperID, shopperPrefix) {
		return "", errMalformedToken
	}
	return shopperID, nil
}

// mac returns the HMAC-SHA256 of domain followed by parts. The domain keeps
// tokens and order ids, which share the secret, from ever colliding.
func (g *Gateway) mac(domain string, parts ...[]byte) []byte {
	h := hmac.New(sha256.New, g.secret)
	h.Write([]byte(domain))
	for _, p := range parts {
		h.Write(p)
	}
	return h.Sum(nil)
}

// orderID derives the id of the order that requestID makes for shopperID.
// It is deterministic, so a retried Checkout maps to the same order and
// reservation, and keyed by the secret and the shopper, so two shoppers who
// pick the same request id never collide and nobody can guess another
// shopper's order ids.
func (g *Gateway) orderID(shopperID, requestID string) string {
	sum := g.mac(orderDomain, []byte(shopperID), []byte{0}, []byte(requestID))
	return "ord_" + lowerBase32.EncodeToString(sum)[:20]
}

type shopperKey struct{}

// shopperFrom returns the shopper id that the auth interceptor put in ctx.
func shopperFrom(ctx context.Context) string {
	id, _ := ctx.Value(shopperKey{}).(string)
	return id
}

// authInterceptor refuses every call but CreateSession that lacks a valid
// bearer token, and puts the token's shopper id in the context of the calls
// it lets through.
type authInterceptor struct {
	g *Gateway
}

var _ connect.Interceptor = (*authInterceptor)(nil)

func (a *authInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if req.Spec().IsClient {
			return next(ctx, req)
		}
		ctx, err := a.authenticate(ctx, req.Spec().Procedure, req.Peer().Protocol,
			req.Header().Get("Authorization"))
		if err != nil {
			return nil, err
		}
		return next(ctx, req)
	}
}

func (a *authInterceptor) WrapStreamingClient(
	next connect.StreamingClientFunc,
) connect.StreamingClientFunc {
	return next
}

func (a *authInterceptor) WrapStreamingHandler(
	next connect.StreamingHandlerFunc,
) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		ctx, err := a.authenticate(ctx, conn.Spec().Procedure, conn.Peer().Protocol,
			conn.RequestHeader().Get("Authorization"))
		if err != nil {
			return err
		}
		return next(ctx, conn)
	}
}

// authenticate checks the Authorization header of a call to procedure, made
// with protocol, and returns ctx with the caller's shopper id.
func (a *authInterceptor) authenticate(
	ctx context.Context, procedure, protocol, authorization string,
) (context.Context, error) {
	if procedure == shopv1connect.ShopServiceCreateSessionProcedure {
		return ctx, nil
	}
	shopperID, err := a.g.bearer(authorization)
	if err != nil {
		cerr := connect.NewError(connect.CodeUnauthenticated, err)
		// Only the Connect protocol answers with an HTTP 401, where the
		// challenge belongs; gRPC would put it in trailers, which net/http
		// refuses to send.
		if protocol == connect.ProtocolConnect {
			cerr.Meta().Set("WWW-Authenticate", `Bearer realm="tienda"`)
		}
		return nil, cerr
	}
	return context.WithValue(ctx, shopperKey{}, shopperID), nil
}

// bearer returns the shopper id of the token in an Authorization header.
func (g *Gateway) bearer(authorization string) (string, error) {
	// The scheme is case-insensitive (RFC 9110, section 11.1).
	if len(authorization) < len(bearerPrefix) ||
		!strings.EqualFold(authorization[:len(bearerPrefix)], bearerPrefix) {
		return "", errNoToken
	}
	return g.verifyToken(strings.TrimSpace(authorization[len(bearerPrefix):]))
}
