package web_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tienda/tienda/web"
)

// serve sends one request to a fresh [web.Handler] and returns the
// response with its body read.
func serve(t testing.TB, method, target string, header http.Header) (*http.Response, []byte) {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	web.Handler().ServeHTTP(rec, req)
	res := rec.Result()
	t.Cleanup(func() { res.Body.Close() })
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("read body of %s %s: %v", method, target, err)
	}
	return res, body
}

func TestHandler(t *testing.T) {
	t.Parallel()
	const (
		get, head, post = http.MethodGet, http.MethodHead, http.MethodPost
		ok, notFound    = http.StatusOK, http.StatusNotFound
	)
	tests := []struct {
		name        string
		method      string
		path        string
		wantStatus  int
		wantType    string // prefix of Content-Type
		wantContain string
	}{
		{
			name: "index_at_root", method: get, path: "/",
			wantStatus: ok, wantType: "text/html", wantContain: `src="app.js"`,
		},
		{
			name: "index_by_name", method: get, path: "/index.html",
			wantStatus: ok, wantType: "text/html", wantContain: "<main",
		},
		{
			name: "script", method: get, path: "/app.js",
			wantStatus: ok, wantType: "text/javascript", wantContain: "Bearer ",
		},
		{
			name: "stylesheet", method: get, path: "/style.css",
			wantStatus: ok, wantType: "text/css",
		},
		{
			name: "head_of_script", method: head, path: "/app.js",
			wantStatus: ok, wantType: "text/javascript",
		},
		{name: "unknown_file", method: get, path: "/nope.js", wantStatus: notFound},
		{name: "view_path_is_not_served", method: get, path: "/cart", wantStatus: notFound},
		{name: "directory_escape", method: get, path: "/../web.go", wantStatus: notFound},
		{name: "post", method: post, path: "/", wantStatus: http.StatusMethodNotAllowed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res, body := serve(t, tc.method, tc.path, nil)
			if res.StatusCode != tc.wantStatus {
				t.Fatalf("%s %s: status %d, want %d",
					tc.method, tc.path, res.StatusCode, tc.wantStatus)
			}
			if tc.wantStatus != ok {
				return
			}
			if got := res.Header.Get("Content-Type"); !strings.HasPrefix(got, tc.wantType) {
				t.Errorf("%s %s: Content-Type %q, want %s…", tc.method, tc.path, got, tc.wantType)
			}
			if got := res.Header.Get("Cache-Control"); got != "no-cache" {
				t.Errorf("%s %s: Cache-Control %q, want no-cache", tc.method, tc.path, got)
			}
			if res.Header.Get("ETag") == "" {
				t.Errorf("%s %s: no ETag", tc.method, tc.path)
			}
			if tc.method == head && len(body) != 0 {
				t.Errorf("HEAD %s: got a body of %d bytes, want none", tc.path, len(body))
			}
			if !bytes.Contains(body, []byte(tc.wantContain)) {
				t.Errorf("%s %s: body lacks %q", tc.method, tc.path, tc.wantContain)
			}
		})
	}
}

func TestHandlerRevalidates(t *testing.T) {
	t.Parallel()
	first, _ := serve(t, http.MethodGet, "/app.js", nil)
	etag := first.Header.Get("ETag")

	res, body := serve(t, http.MethodGet, "/app.js", http.Header{"If-None-Match": {etag}})
	if res.StatusCode != http.StatusNotModified {
		t.Fatalf("GET /app.js with If-None-Match %s: status %d, want %d",
			etag, res.StatusCode, http.StatusNotModified)
	}
	if len(body) != 0 {
		t.Errorf("GET /app.js with If-None-Match: got %d bytes, want none", len(body))
	}
}

func TestHandlerGzip(t *testing.T) {
	t.Parallel()
	_, plain := serve(t, http.MethodGet, "/app.js", nil)
	accept := http.Header{"Accept-Encoding": {"br, gzip"}}
	res, zipped := serve(t, http.MethodGet, "/app.js", accept)
	if got := res.Header.Get("Content-Encoding"); got != "gzip" {
		t.Fatalf("GET /app.js accepting gzip: Content-Encoding %q, want gzip", got)
	}
	zr, err := gzip.NewReader(bytes.NewReader(zipped))
	if err != nil {
		t.Fatalf("gzip.NewReader: %v", err)
	}
	got, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("gunzip /app.js: %v", err)
	}
	if !bytes.Equal(got, plain) {
		t.Errorf("gunzipped /app.js differs from the plain one (%d bytes, want %d)",
			len(got), len(plain))
	}

	refused, _ := serve(t, http.MethodGet, "/app.js", http.Header{"Accept-Encoding": {"gzip;q=0"}})
	if got := refused.Header.Get("Content-Encoding"); got != "" {
		t.Errorf("GET /app.js refusing gzip: Content-Encoding %q, want none", got)
	}
}
