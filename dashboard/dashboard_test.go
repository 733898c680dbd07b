package dashboard

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"testing/fstest"
)

func newHandler(t *testing.T, fsys fs.FS) http.Handler {
	t.Helper()
	h, err := Handler(fsys)
	if err != nil {
		t.Fatalf("Handler: %v", err)
	}
	return h
}

func do(h http.Handler, method, target string, header http.Header) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestHandler(t *testing.T) {
	h := newHandler(t, FS)

	t.Run("index at root", func(t *testing.T) {
		rec := do(h, http.MethodGet, "/", nil)
		if got, want := rec.Code, http.StatusOK; got != want {
			t.Fatalf("status = %d, want %d", got, want)
		}
		if got, want := rec.Header().Get("Content-Type"), "text/html; charset=utf-8"; got != want {
			t.Errorf("Content-Type = %q, want %q", got, want)
		}
		if got, want := rec.Body.String(), "<title>Fleetwatch</title>"; !strings.Contains(got, want) {
			t.Errorf("body does not contain %q", want)
		}
	})

	t.Run("javascript module", func(t *testing.T) {
		rec := do(h, http.MethodGet, "/js/app.js", nil)
		if got, want := rec.Code, http.StatusOK; got != want {
			t.Fatalf("status = %d, want %d", got, want)
		}
		if got, want := rec.Header().Get("Content-Type"), "text/javascript; charset=utf-8"; got != want {
			t.Errorf("Content-Type = %q, want %q", got, want)
		}
	})

	t.Run("stylesheet", func(t *testing.T) {
		rec := do(h, http.MethodGet, "/css/app.css", nil)
		if got, want := rec.Header().Get("Content-Type"), "text/css; charset=utf-8"; got != want {
			t.Errorf("Content-Type = %q, want %q", got, want)
		}
	})

	t.Run("etag and 304", func(t *testing.T) {
		rec := do(h, http.MethodGet, "/js/app.js", nil)
		etag := rec.Header().Get("ETag")
		if len(etag) < 3 || etag[0] != '"' || etag[len(etag)-1] != '"' {
			t.Fatalf("ETag = %q, want a strong quoted tag", etag)
		}
		if got, want := rec.Header().Get("Cache-Control"), "no-cache"; got != want {
			t.Errorf("Cache-Control = %q, want %q", got, want)
		}
		rec = do(h, http.MethodGet, "/js/app.js", http.Header{"If-None-Match": {etag}})
		if got, want := rec.Code, http.StatusNotModified; got != want {
			t.Fatalf("status = %d, want %d", got, want)
		}
		if got, want := rec.Header().Get("ETag"), etag; got != want {
			t.Errorf("304 ETag = %q, want %q", got, want)
		}
		if got := rec.Body.Len(); got != 0 {
			t.Errorf("304 body has %d bytes, want 0", got)
		}
		rec = do(h, http.MethodGet, "/js/app.js", http.Header{"If-None-Match": {`"other"`}})
		if got, want := rec.Code, http.StatusOK; got != want {
			t.Errorf("mismatched If-None-Match: status = %d, want %d", got, want)
		}
	})

	t.Run("etags differ per file", func(t *testing.T) {
		a := do(h, http.MethodGet, "/js/app.js", nil).Header().Get("ETag")
		b := do(h, http.MethodGet, "/js/live.js", nil).Header().Get("ETag")
		if a == b {
			t.Errorf("app.js and live.js share ETag %q", a)
		}
	})

	t.Run("unknown path", func(t *testing.T) {
		for _, target := range []string{"/nope.js", "/js/", "/js", "/../dashboard.go", "/api/v1/fleet"} {
			rec := do(h, http.MethodGet, target, nil)
			if got, want := rec.Code, http.StatusNotFound; got != want {
				t.Errorf("GET %s: status = %d, want %d", target, got, want)
			}
		}
	})

	t.Run("post not allowed", func(t *testing.T) {
		rec := do(h, http.MethodPost, "/", nil)
		if got, want := rec.Code, http.StatusMethodNotAllowed; got != want {
			t.Fatalf("status = %d, want %d", got, want)
		}
		if got, want := rec.Header().Get("Allow"), "GET, HEAD"; got != want {
			t.Errorf("Allow = %q, want %q", got, want)
		}
	})

	t.Run("head", func(t *testing.T) {
		rec := do(h, http.MethodHead, "/", nil)
		if got, want := rec.Code, http.StatusOK; got != want {
			t.Fatalf("status = %d, want %d", got, want)
		}
		if got := rec.Body.Len(); got != 0 {
			t.Errorf("HEAD body has %d bytes, want 0", got)
		}
	})

	t.Run("security headers", func(t *testing.T) {
		for _, rec := range []*httptest.ResponseRecorder{
			do(h, http.MethodGet, "/", nil),
			do(h, http.MethodGet, "/missing", nil),
			do(h, http.MethodPut, "/", nil),
		} {
			for name, want := range map[string]string{
				"X-Content-Type-Options":  "nosniff",
				"Referrer-Policy":         "no-referrer",
				"Content-Security-Policy": ContentSecurityPolicy,
			} {
				if got := rec.Header().Get(name); got != want {
					t.Errorf("status %d: %s = %q, want %q", rec.Code, name, got, want)
				}
			}
		}
	})
}

func TestHandlerCustomFS(t *testing.T) {
	fsys := fstest.MapFS{
		"index.html": {Data: []byte("<!doctype html><p>hi</p>")},
		"a/b/data":   {Data: []byte{0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'}},
	}
	h := newHandler(t, fsys)

	rec := do(h, http.MethodGet, "/index.html", nil)
	body, _ := io.ReadAll(rec.Body)
	if got, want := string(body), "<!doctype html><p>hi</p>"; got != want {
		t.Errorf("body = %q, want %q", got, want)
	}
	// Files without a known extension fall back to sniffing the content.
	rec = do(h, http.MethodGet, "/a/b/data", nil)
	if got, want := rec.Header().Get("Content-Type"), "image/png"; got != want {
		t.Errorf("Content-Type = %q, want %q", got, want)
	}
}

func TestHandlerNoIndex(t *testing.T) {
	_, err := Handler(fstest.MapFS{"app.js": {Data: []byte("export {}")}})
	if err == nil {
		t.Fatal("Handler without index.html: err = nil, want error")
	}
}

// The tests for the JavaScript live outside static/ so they are not shipped.
func TestEmbeddedFilesAreStatic(t *testing.T) {
	err := fs.WalkDir(FS, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.Contains(name, "test") {
			t.Errorf("embedded file %q looks like a test", name)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"index.html", "css/app.css", "js/app.js", "js/live.js", "js/format.js", "js/view.js"} {
		if _, err := fs.Stat(FS, name); err != nil {
			t.Errorf("missing %s: %v", name, err)
		}
	}
}

// TestEmbeddedVendor: the charting library comes from npm at build time
// (make assets), never from the repository. make test requires it
// (FLEETWATCH_REQUIRE_ASSETS=1); a bare go test of a fresh clone skips.
func TestEmbeddedVendor(t *testing.T) {
	for _, name := range []string{"vendor/uPlot.esm.js", "vendor/uPlot.min.css"} {
		info, err := fs.Stat(FS, name)
		if err != nil {
			if os.Getenv("FLEETWATCH_REQUIRE_ASSETS") != "" {
				t.Fatalf("%s is not embedded: run make assets (npm ci + copy) before building: %v", name, err)
			}
			t.Skipf("%s not built: run make assets", name)
		}
		if info.Size() < 1000 {
			t.Errorf("%s is %d bytes, want the library", name, info.Size())
		}
	}
	h := newHandler(t, FS)
	rec := do(h, http.MethodGet, "/vendor/uPlot.esm.js", nil)
	if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/javascript") {
		t.Errorf("GET /vendor/uPlot.esm.js = %d %q, want 200 text/javascript", rec.Code, rec.Header().Get("Content-Type"))
	}
}
