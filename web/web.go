// Package web serves tienda's storefront, the single page in dist/ that
// shoppers use in a browser. The page is built from web/src with Node
// (`task web-build`) and dist/ is committed, so the Go build embeds it and
// `go run .` serves it without Node installed.
//
// The gateway mounts [Handler] at "/". Its Connect routes are longer
// patterns, so they win, and the page calls them on its own origin.
package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"
)

//go:embed dist
var dist embed.FS

// Content types by extension. They are fixed here instead of taken from
// the mime package alone, which reads the system's tables: a browser
// refuses a script served as text/plain.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".json": "application/json",
	".svg":  "image/svg+xml",
	".png":  "image/png",
	".ico":  "image/x-icon",
}

// contentSecurityPolicy lets the page load only its own script and
// stylesheet. It may call any http(s) origin, because ?api= can point it
// at a gateway elsewhere, which then decides by CORS whether to answer.
const contentSecurityPolicy = "default-src 'self'; connect-src 'self' http: https:; " +
	"img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// asset is one file of dist/, read and compressed once.
type asset struct {
	body        []byte
	gzipped     []byte // nil when compressing does not pay
	contentType string
	etag        string
}

// assets are the files of dist/ by URL path, such as "/app.js".
var assets = sync.OnceValues(func() (map[string]*asset, error) {
	return load(dist)
})

// Handler returns the handler that serves the storefront: index.html at
// "/", the files of dist/ by name, and 404 Not Found for every other path.
// The page routes by the URL's fragment (#/cart), so it needs no other
// paths. Only GET and HEAD are allowed.
//
// Every response carries an ETag and "Cache-Control: no-cache": browsers
// keep the files but check with the server (a cheap 304) before using
// them, so a new release is picked up on the next load. Files are sent
// gzipped to clients that accept it. The handler is safe for concurrent
// use.
func Handler() http.Handler {
	files, err := assets()
	if err != nil {
		// dist/ is embedded at compile time; it can only be unreadable if
		// the binary itself is broken.
		panic(fmt.Sprintf("web: load embedded storefront: %v", err))
	}
	return &handler{files: files}
}

type handler struct {
	files map[string]*asset
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name := r.URL.Path
	if name == "/" {
		name = "/index.html"
	}
	a, ok := h.files[name]
	if !ok {
		http.NotFound(w, r)
		return
	}

	hdr := w.Header()
	hdr.Set("Content-Type", a.contentType)
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Vary", "Accept-Encoding")
	if strings.HasPrefix(a.contentType, "text/html") {
		hdr.Set("Content-Security-Policy", contentSecurityPolicy)
		hdr.Set("Referrer-Policy", "same-origin")
	}

	// A range of the compressed bytes would confuse a client, so ranges
	// are served from the plain file.
	body, etag := a.body, a.etag
	if a.gzipped != nil && r.Header.Get("Range") == "" && acceptsGzip(r) {
		body, etag = a.gzipped, a.etag[:len(a.etag)-1]+`-gz"`
		hdr.Set("Content-Encoding", "gzip")
	}
	hdr.Set("ETag", etag)
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(body))
}

// acceptsGzip reports whether r's Accept-Encoding lists gzip without
// refusing it with q=0.
func acceptsGzip(r *http.Request) bool {
	for part := range strings.SplitSeq(r.Header.Get("Accept-Encoding"), ",") {
		coding, params, _ := strings.Cut(part, ";")
		if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			continue
		}
		q, ok := strings.CutPrefix(strings.TrimSpace(params), "q=")
		if !ok {
			return true
		}
		weight, err := strconv.ParseFloat(q, 64)
		return err == nil && weight > 0
	}
	return false
}

// load reads every file under dist/ of fsys.
func load(fsys fs.FS) (map[string]*asset, error) {
	root, err := fs.Sub(fsys, "dist")
	if err != nil {
		return nil, err
	}
	files := make(map[string]*asset)
	err = fs.WalkDir(root, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(root, name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		a := &asset{
			body:        body,
			contentType: contentType(name, body),
			etag:        `"` + base64.RawURLEncoding.EncodeToString(sum[:16]) + `"`,
		}
		if a.gzipped, err = compress(body); err != nil {
			return fmt.Errorf("compress %s: %w", name, err)
		}
		files["/"+name] = a
		return nil
	})
	if err != nil {
		return nil, err
	}
	if files["/index.html"] == nil {
		return nil, fmt.Errorf("no index.html in dist")
	}
	return files, nil
}

func contentType(name string, body []byte) string {
	ext := path.Ext(name)
	if ct, ok := contentTypes[ext]; ok {
		return ct
	}
	if ct := mime.TypeByExtension(ext); ct != "" {
		return ct
	}
	return http.DetectContentType(body)
}

// compress returns body gzipped, or nil if that saves less than a tenth.
func compress(body []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(body); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	if buf.Len() > len(body)*9/10 {
		return nil, nil
	}
	return buf.Bytes(), nil
}
