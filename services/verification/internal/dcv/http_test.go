package dcv

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/certflow/certflow/pkg/devdns"
	"github.com/miekg/dns"
)

const wk = "/.well-known/pki-validation/"

// httpFixture is a real loopback web server plus a devdns server that points
// every name at 127.0.0.1.
type httpFixture struct {
	dns     *devdns.Server
	port    int
	tlsPort int
	hits    atomic.Int64
	checker HTTPChecker
}

func newHTTPFixture(t *testing.T) *httpFixture {
	t.Helper()
	f := &httpFixture{dns: startDNS(t, devdns.Options{DefaultA: "127.0.0.1"})}

	mux := http.NewServeMux()
	mux.HandleFunc(wk+"ok.txt", func(w http.ResponseWriter, r *http.Request) {
		if ua := r.Header.Get("User-Agent"); ua != "certflow-dcv/1" {
			http.Error(w, "bad user agent "+ua, http.StatusForbidden)
			return
		}
		fmt.Fprint(w, "  token-123\n")
	})
	mux.HandleFunc(wk+"wrong.txt", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "token-999\n")
	})
	mux.HandleFunc(wk+"big.txt", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(strings.Repeat("x", 70<<10)))
	})
	mux.HandleFunc(wk+"exact-limit.txt", func(w http.ResponseWriter, r *http.Request) {
		// A body exactly at the limit, with no Content-Length, is fine.
		w.(http.Flusher).Flush()
		w.Write([]byte("token-123" + strings.Repeat(" ", 64<<10-len("token-123"))))
	})
	mux.HandleFunc(wk+"error.txt", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "boom", http.StatusInternalServerError)
	})
	redirect := func(path string, code int, target func(r *http.Request) string) {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Location", target(r))
			w.WriteHeader(code)
		})
	}
	to := func(s string) func(*http.Request) string { return func(*http.Request) string { return s } }
	redirect(wk+"moved.txt", http.StatusMovedPermanently, to(wk+"ok.txt"))
	redirect(wk+"found.txt", http.StatusFound, to(wk+"ok.txt"))
	redirect(wk+"temp.txt", http.StatusTemporaryRedirect, to(wk+"ok.txt"))
	redirect(wk+"perm.txt", http.StatusPermanentRedirect, to(wk+"ok.txt"))
	redirect(wk+"see-other.txt", http.StatusSeeOther, to(wk+"ok.txt"))
	redirect(wk+"multiple.txt", http.StatusMultipleChoices, to(wk+"ok.txt"))
	redirect(wk+"loop.txt", http.StatusFound, to(wk+"loop.txt"))
	redirect(wk+"to-ftp.txt", http.StatusFound, to("ftp://ok.test/ok.txt"))
	redirect(wk+"to-other-host.txt", http.StatusMovedPermanently, func(r *http.Request) string {
		return fmt.Sprintf("http://other.test:%d%sok.txt", f.port, wk)
	})
	redirect(wk+"to-link-local.txt", http.StatusFound, func(r *http.Request) string {
		return fmt.Sprintf("http://169.254.169.254:%d%sok.txt", f.port, wk)
	})
	redirect(wk+"to-https.txt", http.StatusFound, func(r *http.Request) string {
		return fmt.Sprintf("https://secure.test:%d%sok.txt", f.tlsPort, wk)
	})
	// chain/N redirects N times before serving the token.
	mux.HandleFunc(wk+"chain/", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, wk+"chain/"))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		if n == 0 {
			fmt.Fprint(w, "token-123")
			return
		}
		http.Redirect(w, r, wk+"chain/"+strconv.Itoa(n-1), http.StatusFound)
	})

	counted := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.hits.Add(1)
		mux.ServeHTTP(w, r)
	})
	srv := httptest.NewServer(counted)
	t.Cleanup(srv.Close)
	tlsSrv := httptest.NewTLSServer(counted)
	t.Cleanup(tlsSrv.Close)
	f.port = srv.Listener.Addr().(*net.TCPAddr).Port
	f.tlsPort = tlsSrv.Listener.Addr().(*net.TCPAddr).Port

	f.checker = HTTPChecker{
		Resolver: newResolver(t, ResolverOptions{Servers: []string{f.dns.Addr()}}),
		Policy:   AddressPolicy{AllowPrivate: true},
		Port:     f.port,
		Timeout:  5 * time.Second,
	}
	return f
}

func TestCheckFile(t *testing.T) {
	f := newHTTPFixture(t)
	f.dns.FailWith("broken.test", dns.RcodeServerFailure)

	tests := []struct {
		domain, file, want string
		wantErr            error
	}{
		{"ok.test", "ok.txt", "token-123", nil},
		{"OK.Test.", "ok.txt", "token-123", nil},
		{"127.0.0.1", "ok.txt", "token-123", nil},
		{"ok.test", "missing.txt", "token-123", ErrNotFound},
		{"ok.test", "error.txt", "token-123", ErrNotFound},
		{"ok.test", "wrong.txt", "token-123", ErrMismatch},
		{"ok.test", "ok.txt", "token-12", ErrMismatch},
		{"ok.test", "big.txt", "token-123", ErrMismatch},
		{"ok.test", "exact-limit.txt", "token-123", nil},
		{"ok.test", "moved.txt", "token-123", nil},
		{"ok.test", "found.txt", "token-123", nil},
		{"ok.test", "temp.txt", "token-123", nil},
		{"ok.test", "perm.txt", "token-123", nil},
		{"ok.test", "to-other-host.txt", "token-123", nil},
		{"ok.test", "to-https.txt", "token-123", nil},
		{"ok.test", "chain/3", "token-123", nil},
		{"ok.test", "chain/4", "token-123", ErrBadRedirect},
		{"ok.test", "loop.txt", "token-123", ErrBadRedirect},
		{"ok.test", "see-other.txt", "token-123", ErrBadRedirect},
		{"ok.test", "multiple.txt", "token-123", ErrBadRedirect},
		{"ok.test", "to-ftp.txt", "token-123", ErrBadRedirect},
		{"ok.test", "to-link-local.txt", "token-123", ErrForbiddenAddress},
		{"broken.test", "ok.txt", "token-123", ErrLookupFailed},
	}
	for _, tt := range tests {
		err := f.checker.CheckFile(testContext(t), tt.domain, wk+tt.file, tt.want)
		if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
			t.Errorf("CheckFile(%q, %q, %q) = %v; want %v", tt.domain, tt.file, tt.want, err, tt.wantErr)
		}
	}
}

func TestCheckFileLimits(t *testing.T) {
	f := newHTTPFixture(t)
	c := f.checker
	c.MaxRedirects = 1
	if err := c.CheckFile(testContext(t), "ok.test", wk+"chain/2", "token-123"); !errors.Is(err, ErrBadRedirect) {
		t.Errorf("CheckFile(chain/2, MaxRedirects 1) = %v; want ErrBadRedirect", err)
	}
	c = f.checker
	c.MaxBodyBytes = 8
	err := c.CheckFile(testContext(t), "ok.test", wk+"wrong.txt", "token-999")
	if !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "file too large") {
		t.Errorf("CheckFile(10 bytes, MaxBodyBytes 8) = %v; want ErrMismatch saying file too large", err)
	}
}

// A host resolving to loopback must not be contacted without AllowPrivate.
func TestCheckFileForbiddenAddress(t *testing.T) {
	f := newHTTPFixture(t)
	c := f.checker
	c.Policy = AddressPolicy{}
	f.dns.SetA("v6.test", "::1")
	for _, domain := range []string{"ok.test", "127.0.0.1", "v6.test"} {
		err := c.CheckFile(testContext(t), domain, wk+"ok.txt", "token-123")
		if !errors.Is(err, ErrForbiddenAddress) {
			t.Errorf("CheckFile(%q) = %v; want ErrForbiddenAddress", domain, err)
		}
		if err != nil && !strings.Contains(err.Error(), "loopback") {
			t.Errorf("CheckFile(%q) = %q; want it to say why", domain, err)
		}
	}
	if n := f.hits.Load(); n != 0 {
		t.Errorf("server saw %d requests; want 0", n)
	}
}

// Any forbidden candidate refuses the whole dial, even if another is fine.
func TestCheckFileMixedAddresses(t *testing.T) {
	f := newHTTPFixture(t)
	f.dns.SetA("mixed.test", "127.0.0.1", "169.254.0.1")
	err := f.checker.CheckFile(testContext(t), "mixed.test", wk+"ok.txt", "token-123")
	if !errors.Is(err, ErrForbiddenAddress) {
		t.Errorf("CheckFile(mixed.test) = %v; want ErrForbiddenAddress", err)
	}
	if n := f.hits.Load(); n != 0 {
		t.Errorf("server saw %d requests; want 0", n)
	}
}

func TestCheckFileNoAddress(t *testing.T) {
	f := newHTTPFixture(t)
	plain := startDNS(t, devdns.Options{}) // no DefaultA
	plain.SetTXT("noaddr.test", "x")
	c := f.checker
	c.Resolver = newResolver(t, ResolverOptions{Servers: []string{plain.Addr()}})
	for _, domain := range []string{"noaddr.test", "missing.test"} {
		err := c.CheckFile(testContext(t), domain, wk+"ok.txt", "token-123")
		if !errors.Is(err, ErrNoRecords) {
			t.Errorf("CheckFile(%q) = %v; want ErrNoRecords", domain, err)
		}
	}
}

func TestCheckFileUnreachable(t *testing.T) {
	f := newHTTPFixture(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := f.checker
	c.Port = ln.Addr().(*net.TCPAddr).Port
	ln.Close() // nothing listens there now: connection refused

	err = c.CheckFile(testContext(t), "ok.test", wk+"ok.txt", "token-123")
	if err == nil || errors.Is(err, ErrNotFound) || errors.Is(err, ErrMismatch) || errors.Is(err, ErrForbiddenAddress) {
		t.Errorf("CheckFile(closed port) = %v; want a temporary network error", err)
	}
	if err != nil && !strings.Contains(err.Error(), "temporary") {
		t.Errorf("CheckFile(closed port) = %q; want it to say temporary", err)
	}
}

func TestCheckFileBadInput(t *testing.T) {
	f := newHTTPFixture(t)
	tests := []struct{ domain, path string }{
		{"ok.test", "no-slash"},
		{"", wk + "ok.txt"},
		{"bad host.test", wk + "ok.txt"},
		{"fe80::1%eth0", wk + "ok.txt"},
	}
	for _, tt := range tests {
		if err := f.checker.CheckFile(testContext(t), tt.domain, tt.path, "x"); err == nil {
			t.Errorf("CheckFile(%q, %q) = nil; want error", tt.domain, tt.path)
		}
	}
	if n := f.hits.Load(); n != 0 {
		t.Errorf("server saw %d requests; want 0", n)
	}
}
