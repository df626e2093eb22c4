package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// shopMethods are the unary methods the fuzzer calls; it picks one by index.
var shopMethods = []string{
	"CreateSession", "ListProducts", "GetProduct", "GetCart", "AddToCart",
	"UpdateCartItem", "RemoveFromCart", "Checkout", "GetOrder", "ListOrders",
}

// FuzzShopRequest sends the gateway arbitrary bodies and headers, as a
// careless or hostile client would. Every answer must be a success or a
// well-formed Connect error a client can act on: never a server fault,
// never a leaked internal.
func FuzzShopRequest(f *testing.F) {
	a := startTestApp(f, "")
	token := newShopper(f, a).token

	seeds := []struct {
		method      uint8
		body        string
		contentType string
		auth        string
	}{
		{0, `{}`, "application/json", ""},
		{1, `{"pageSize": 5, "query": "mug"}`, "application/json", "good"},
		{1, `{"page_token": "%%%"}`, "application/json", "good"},
		{2, `{"sku": "MUG-ENAMEL-WHT"}`, "application/json", "good"},
		{4, `{"sku": "MUG-ENAMEL-WHT", "quantity": 2}`, "application/json", "good"},
		{4, `{"sku": "MUG-ENAMEL-WHT", "quantity": "9999999999999999999999"}`, "application/json", "good"},
		{5, `{"sku": "", "quantity": -1}`, "application/json", "Bearer x.y"},
		{7, `{"requestId": "r1"}`, "application/json", "good"},
		{8, `{"orderId": "` + strings.Repeat("9", 300) + `"}`, "application/json", "good"},
		{3, "\x00\x01\x02", "application/proto", "good"},
		{9, `[1,2,3]`, "text/plain", "Bearer "},
	}
	for _, s := range seeds {
		f.Add(s.method, s.body, s.contentType, s.auth)
	}

	client := h2cClient()
	f.Fuzz(func(t *testing.T, method uint8, body, contentType, auth string) {
		name := shopMethods[int(method)%len(shopMethods)]
		req, err := http.NewRequest(http.MethodPost,
			a.gatewayURL+"/tienda.shop.v1.ShopService/"+name, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", contentType)
		switch auth {
		case "":
		case "good":
			req.Header.Set("Authorization", "Bearer "+token)
		default:
			req.Header.Set("Authorization", auth)
		}
		res, err := client.Do(req)
		if err != nil {
			// Headers net/http refuses to send never reach the server.
			return
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)

		if res.StatusCode >= 500 && res.StatusCode != http.StatusServiceUnavailable &&
			res.StatusCode != http.StatusGatewayTimeout {
			t.Fatalf("%s %q: status %d: %s", name, body, res.StatusCode, raw)
		}
		for _, leak := range []string{"goroutine ", ".go:", "sqlite", "SQLITE", "pgx", "SELECT ", "panic:"} {
			// A message may quote the request; only a leak it did not send counts.
			if bytes.Contains(raw, []byte(leak)) && !strings.Contains(body, leak) {
				t.Fatalf("%s %q: answer leaks %q: %s", name, body, leak, raw)
			}
		}
		if res.StatusCode == http.StatusOK || res.StatusCode == http.StatusUnsupportedMediaType {
			return // 415 is how Connect refuses a content type it does not speak
		}
		var cerr struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		}
		if err := json.Unmarshal(raw, &cerr); err != nil || cerr.Code == "" {
			t.Fatalf("%s %q: status %d with a body that is no Connect error: %q", name, body, res.StatusCode, raw)
		}
		if cerr.Code == "internal" || cerr.Code == "unknown" {
			t.Fatalf("%s %q: server fault %s: %s", name, body, cerr.Code, cerr.Message)
		}
	})
}
