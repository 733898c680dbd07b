// Package dashboard holds the hub's web dashboard: static HTML, CSS and
// JavaScript modules embedded in the binary, and the HTTP handler that serves
// them. The page loads GET /api/v1/fleet for its first paint and then follows
// the fleet over the hub's WebSocket at /ws; both are served by the hub, not
// by this package.
//
// The JavaScript is plain ES modules with no build step, so the embedded
// files are exactly what the browser runs and the dashboard works offline.
// The one third-party file, uPlot, is pinned in package-lock.json and copied
// into static/vendor by make assets before the Go build; it is never
// committed.
package dashboard

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed static
var embedded embed.FS

// FS is the dashboard's static files, rooted at static/.
var FS fs.FS = mustSub(embedded, "static")

func mustSub(fsys fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		panic(err) // only possible with an invalid dir literal
	}
	return sub
}

// ContentSecurityPolicy is sent with every response. It allows only the
// hub's own origin: no inline scripts or styles, no third-party hosts, no
// framing. connect-src 'self' covers the same-origin ws:/wss: URL of /ws.
const ContentSecurityPolicy = "default-src 'self'; connect-src 'self'; img-src 'self' data:; " +
	"style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; " +
	"form-action 'none'; frame-ancestors 'none'"

// contentTypes pins the types of the files we ship. mime.TypeByExtension
// consults the host's MIME database, which on some systems maps .js to
// application/javascript or text/plain; module scripts with the wrong type
// are refused under nosniff.
var contentTypes = map[string]string{
	".html":        "text/html; charset=utf-8",
	".css":         "text/css; charset=utf-8",
	".js":          "text/javascript; charset=utf-8",
	".mjs":         "text/javascript; charset=utf-8",
	".json":        "application/json",
	".svg":         "image/svg+xml",
	".png":         "image/png",
	".ico":         "image/x-icon",
	".txt":         "text/plain; charset=utf-8",
	".webmanifest": "application/manifest+json",
}

// file is one served file, read and hashed once at construction.
type file struct {
	data        []byte
	etag        string
	contentType string
}

type handler struct {
	files map[string]*file // keyed by slash path without leading "/"
}

// Handler serves fsys with a strong content-hash ETag per file (computed
// once at construction with fs.WalkDir, sha256 truncated), Cache-Control:
// no-cache, correct Content-Type, 304 on If-None-Match, index.html for "/",
// 404 for unknown paths, only GET/HEAD (405 otherwise). Returns an error if
// fsys has no index.html.
//
// The files are read into memory at construction, so the ETag always matches
// the bytes served even if fsys changes later. no-cache makes browsers
// revalidate every load, which costs a 304 but means a hub upgrade is never
// masked by a stale cached module.
func Handler(fsys fs.FS) (http.Handler, error) {
	h := &handler{files: make(map[string]*file)}
	err := fs.WalkDir(fsys, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil // directories, and symlinks we would not want to follow
		}
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		h.files[name] = &file{
			data: data,
			// 16 bytes of sha256 is far beyond collision risk for a handful of
			// files and keeps the header short.
			etag:        `"` + hex.EncodeToString(sum[:16]) + `"`,
			contentType: contentType(name, data),
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("dashboard: read files: %w", err)
	}
	if _, ok := h.files["index.html"]; !ok {
		return nil, errors.New("dashboard: no index.html in file system")
	}
	return h, nil
}

func contentType(name string, data []byte) string {
	ext := strings.ToLower(path.Ext(name))
	if ct, ok := contentTypes[ext]; ok {
		return ct
	}
	if ct := mime.TypeByExtension(ext); ct != "" {
		return ct
	}
	return http.DetectContentType(data)
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Referrer-Policy", "no-referrer")
	hdr.Set("Content-Security-Policy", ContentSecurityPolicy)

	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hdr.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}

	// path.Clean on a rooted path removes any ".." that would climb above
	// the root, so the lookup can only hit files we indexed.
	name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
	if name == "" {
		name = "index.html"
	}
	f, ok := h.files[name]
	if !ok {
		http.NotFound(w, r)
		return
	}

	hdr.Set("ETag", f.etag)
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("Content-Type", f.contentType)
	// ServeContent handles If-None-Match (304), HEAD and Range against the
	// ETag set above. A zero modtime leaves out Last-Modified: the ETag is
	// the only validator, so there is no clock to disagree about.
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(f.data))
}
