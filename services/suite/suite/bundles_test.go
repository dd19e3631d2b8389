package suite_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// RequireServersEnv makes the acceptance tests fail, instead of skip, when
// nginx, Apache, openssl or keytool is missing (CI sets it).
const RequireServersEnv = "CERTFLOW_REQUIRE_SERVERS"

// tool finds a program on PATH or in the sbin folders Debian puts servers
// in; missing, it skips the test unless RequireServersEnv is set.
func tool(t *testing.T, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		if p := filepath.Join(dir, name); isExecutable(p) {
			return p
		}
	}
	if os.Getenv(RequireServersEnv) != "" {
		t.Fatalf("%s is not installed and %s is set (apt-get install nginx-light apache2 openssl default-jdk-headless)", name, RequireServersEnv)
	}
	t.Skipf("%s is not installed; set %s to make this a failure", name, RequireServersEnv)
	return ""
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// export asks the gateway for a bundle and writes its files into dir.
func (e *env) export(t *testing.T, cert, serverType string, body obj, dir string) obj {
	t.Helper()
	if body == nil {
		body = obj{}
	}
	body["server_type"] = serverType
	var out obj
	if code := e.call(t, e.s.APIKey, "POST", "/v1/"+cert+":export", body, &out); code != http.StatusOK {
		t.Fatalf("export %s %s = %d %v", cert, serverType, code, out)
	}
	for _, f := range asList(out["files"]) {
		f := f.(obj)
		b, err := base64.StdEncoding.DecodeString(f["content"].(string))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f["file_name"].(string)), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// serve starts a server process and stops it (SIGTERM, then SIGKILL) when
// the test ends; its output goes to the test log on failure.
func serve(t *testing.T, dir string, bin string, args ...string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			logs, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Logf("%s output:\n%s\nerror.log:\n%s", filepath.Base(bin), out.String(), logs)
		}
	})
}

// handshake connects to 127.0.0.1:port asking for name, trusting only
// roots (the intermediate must come from the server), and GETs /.
func handshake(port int, name string, roots *x509.CertPool) (int, error) {
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: name},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, fmt.Sprintf("127.0.0.1:%d", port))
		},
	}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(fmt.Sprintf("https://%s:%d/", name, port))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// waitListening waits until the server accepts TCP connections on port.
func waitListening(t *testing.T, port int) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			_ = c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on 127.0.0.1:%d: %v", port, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkServed: a client that trusts only the suite's root connects for
// the certificate's name, and fails verification for another name.
func checkServed(t *testing.T, port int, name, other string, roots *x509.CertPool) {
	t.Helper()
	waitListening(t, port)
	if code, err := handshake(port, name, roots); err != nil || code != http.StatusOK {
		t.Fatalf("GET https://%s:%d/ = %d, %v; want 200 over a verified connection", name, port, code, err)
	}
	checkRefused(t, port, other, roots)
}

// checkRefused: a client asking for other fails verification.
func checkRefused(t *testing.T, port int, other string, roots *x509.CertPool) {
	t.Helper()
	_, err := handshake(port, other, roots)
	var hostErr x509.HostnameError
	if !errors.As(err, &hostErr) {
		t.Fatalf("GET https://%s:%d/ = %v; want a certificate verification error for the name", other, port, err)
	}
}

// bundleEnv issues a DV certificate for www.bundle.test through the
// gateway and returns it with a pool holding only the suite's root.
func bundleEnv(t *testing.T) (*env, string, *x509.CertPool) {
	t.Helper()
	e := start(t)
	inst := e.buy(t, e.s.APIKey, "products/dv-single-1y", 1)
	cert := e.issueDV(t, inst[0], "www.bundle.test")
	var ca obj
	if code := e.call(t, e.s.APIKey, "GET", "/v1/caCertificates", nil, &ca); code != 200 {
		t.Fatalf("GET /v1/caCertificates = %d %v", code, ca)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM([]byte(str(ca, "root_pem"))) {
		t.Fatalf("no root in %v", ca)
	}
	return e, cert["name"].(string), roots
}

// TestBundlesOnRealServers: the exported bundles work in the software
// they are for. nginx serves the Nginx bundle and Apache httpd the Apache
// one (a Go client trusting only the suite's root verifies
// www.bundle.test and refuses another name); openssl reads the IIS PFX,
// modern and legacy, with the password and refuses a wrong one; keytool
// lists the Tomcat JKS and PKCS#12 keystores' key entry.
func TestBundlesOnRealServers(t *testing.T) {
	nginx, apache := tool(t, "nginx"), tool(t, "apache2")
	openssl, keytool := tool(t, "openssl"), tool(t, "keytool")
	e, cert, roots := bundleEnv(t)
	const name, other = "www.bundle.test", "other.bundle.test"

	t.Run("nginx", func(t *testing.T) {
		dir := t.TempDir()
		e.export(t, cert, "SERVER_TYPE_NGINX", nil, dir)
		port := freePort(t)
		conf := filepath.Join(dir, "nginx.conf")
		writeFile(t, conf, fmt.Sprintf(`daemon off;
master_process off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
events { worker_connections 64; }
http {
  access_log %[1]s/access.log;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  server {
    listen 127.0.0.1:%[2]d ssl;
    server_name %[3]s;
    ssl_certificate %[1]s/fullchain.pem;
    ssl_certificate_key %[1]s/privkey.pem;
    location / { return 200 "nginx\n"; }
  }
}
`, dir, port, name))
		if out, err := exec.Command(nginx, "-t", "-c", conf, "-p", dir, "-e", filepath.Join(dir, "error.log")).CombinedOutput(); err != nil {
			t.Fatalf("nginx -t: %v\n%s", err, out)
		}
		serve(t, dir, nginx, "-c", conf, "-p", dir, "-e", filepath.Join(dir, "error.log"))
		checkServed(t, port, name, other, roots)
	})

	t.Run("apache", func(t *testing.T) {
		dir := t.TempDir()
		e.export(t, cert, "SERVER_TYPE_APACHE", nil, dir)
		port := freePort(t)
		modules := "/usr/lib/apache2/modules"
		// As root, httpd must hand its workers to another user; the
		// certificate files are read by the parent before that.
		runAs := ""
		if os.Geteuid() == 0 {
			group := "nogroup"
			if _, err := user.LookupGroup(group); err != nil {
				group = "nobody"
			}
			runAs = "User nobody\nGroup " + group + "\n"
		}
		conf := filepath.Join(dir, "httpd.conf")
		writeFile(t, conf, fmt.Sprintf(`ServerRoot %[1]s
DefaultRuntimeDir %[1]s
PidFile %[1]s/httpd.pid
ErrorLog %[1]s/error.log
LogLevel info
LoadModule mpm_event_module %[4]s/mod_mpm_event.so
LoadModule authz_core_module %[4]s/mod_authz_core.so
LoadModule socache_shmcb_module %[4]s/mod_socache_shmcb.so
LoadModule ssl_module %[4]s/mod_ssl.so
%[5]sServerName %[3]s
Listen 127.0.0.1:%[2]d
<VirtualHost 127.0.0.1:%[2]d>
  ServerName %[3]s
  SSLEngine on
  SSLCertificateFile %[1]s/cert.pem
  SSLCertificateChainFile %[1]s/chain.pem
  SSLCertificateKeyFile %[1]s/privkey.pem
</VirtualHost>
`, dir, port, name, modules, runAs))
		if out, err := exec.Command(apache, "-t", "-f", conf).CombinedOutput(); err != nil {
			t.Fatalf("apache2 -t: %v\n%s", err, out)
		}
		serve(t, dir, apache, "-f", conf, "-DFOREGROUND")
		// The answer is httpd's own (404: no document root; its workers
		// may not read the test's folders): what counts is the verified
		// connection.
		waitListening(t, port)
		if code, err := handshake(port, name, roots); err != nil || code == 0 {
			t.Fatalf("GET https://%s:%d/ = %d, %v; want an answer over a verified connection", name, port, code, err)
		}
		checkRefused(t, port, other, roots)
	})

	t.Run("iis-openssl", func(t *testing.T) {
		for _, legacy := range []bool{false, true} {
			dir := t.TempDir()
			ans := e.export(t, cert, "SERVER_TYPE_IIS", obj{"legacy_pkcs12": legacy}, dir)
			pass := str(ans, "password")
			pfx := filepath.Join(dir, "certificate.pfx")
			// The legacy file uses 3DES, which OpenSSL 3 reads with and
			// without its legacy provider.
			variants := [][]string{{}}
			if legacy {
				variants = append(variants, []string{"-legacy"})
			}
			for _, extra := range variants {
				args := append([]string{"pkcs12", "-in", pfx, "-passin", "pass:" + pass, "-nokeys"}, extra...)
				out, err := exec.Command(openssl, args...).CombinedOutput()
				if err != nil || strings.Count(string(out), "BEGIN CERTIFICATE") != 2 {
					t.Fatalf("openssl %s (legacy %v): %v\n%s\nwant the leaf and the intermediate", strings.Join(args, " "), legacy, err, out)
				}
				args = append([]string{"pkcs12", "-in", pfx, "-passin", "pass:" + pass, "-nocerts", "-nodes"}, extra...)
				if out, err := exec.Command(openssl, args...).CombinedOutput(); err != nil || !strings.Contains(string(out), "PRIVATE KEY") {
					t.Fatalf("openssl %s (legacy %v): %v\n%s\nwant the key", strings.Join(args, " "), legacy, err, out)
				}
			}
			if out, err := exec.Command(openssl, "pkcs12", "-in", pfx, "-passin", "pass:wrong-password", "-nokeys").CombinedOutput(); err == nil {
				t.Fatalf("openssl read the PFX (legacy %v) with a wrong password:\n%s", legacy, out)
			}
		}
	})

	t.Run("tomcat-keytool", func(t *testing.T) {
		dir := t.TempDir()
		const pass = "Tomcat-keystore-1"
		e.export(t, cert, "SERVER_TYPE_TOMCAT", obj{"password": pass}, dir)
		for _, ks := range []struct{ file, storetype string }{{"keystore.jks", "JKS"}, {"keystore.p12", "PKCS12"}} {
			p := filepath.Join(dir, ks.file)
			out, err := exec.Command(keytool, "-list", "-keystore", p, "-storetype", ks.storetype, "-storepass", pass).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "PrivateKeyEntry") || !strings.Contains(string(out), "1 entry") {
				t.Fatalf("keytool -list %s: %v\n%s\nwant one PrivateKeyEntry", ks.file, err, out)
			}
			if ks.storetype == "JKS" && !strings.Contains(string(out), "tomcat,") {
				t.Fatalf("keytool -list %s:\n%s\nwant the alias tomcat", ks.file, out)
			}
			if out, err := exec.Command(keytool, "-list", "-keystore", p, "-storetype", ks.storetype, "-storepass", "wrong-password").CombinedOutput(); err == nil {
				t.Fatalf("keytool listed %s with a wrong password:\n%s", ks.file, out)
			}
		}
	})
}

func writeFile(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestExportThroughGateway: the JSON API's refusals. A bad password is 400
// INVALID_PASSWORD, another account's certificate 404, a keystore for a
// certificate of the customer's own CSR 400 NO_PRIVATE_KEY with the
// openssl command (its PEM files still come); each key export is one
// certflow.certificate.key_exported event on the stream.
func TestExportThroughGateway(t *testing.T) {
	e := start(t)
	key := e.s.APIKey
	inst := e.buy(t, key, "products/dv-single-1y", 2)
	held := e.issueDV(t, inst[0], "held.bundle.test")["name"].(string)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	app := e.apply(t, obj{"instance": inst[1], "domains": []string{"own.bundle.test"}, "applicant": applicant(), "csr_mode": "CSR_MODE_MANUAL", "csr": makeCSR(t, p256, "own.bundle.test")})
	e.prove(t, e.submit(t, app))
	own := e.waitState(t, key, app, "ISSUED")["certificate"].(string)

	for _, tt := range []struct {
		name    string
		key     string
		cert    string
		body    obj
		code    int
		reason  string
		message string
	}{
		{"short password", key, held, obj{"server_type": "SERVER_TYPE_IIS", "password": "short"}, 400, "INVALID_PASSWORD", "8 to 128"},
		{"password with spaces", key, held, obj{"server_type": "SERVER_TYPE_TOMCAT", "password": "a password with spaces"}, 400, "INVALID_PASSWORD", "printable ASCII"},
		{"no server type", key, held, obj{}, 400, "INVALID_SERVER_TYPE", "server_type"},
		{"another account", otherKey, held, obj{"server_type": "SERVER_TYPE_NGINX"}, 404, "NOT_FOUND", "your account"},
		{"own CSR as PFX", key, own, obj{"server_type": "SERVER_TYPE_IIS"}, 400, "NO_PRIVATE_KEY", "openssl pkcs12 -export"},
		{"own CSR as JKS", key, own, obj{"server_type": "SERVER_TYPE_TOMCAT"}, 400, "NO_PRIVATE_KEY", "openssl pkcs12 -export"},
	} {
		var out obj
		code := e.call(t, tt.key, "POST", "/v1/"+tt.cert+":export", tt.body, &out)
		if code != tt.code || reasonOf(out) != tt.reason || !strings.Contains(fmt.Sprint(out["message"]), tt.message) {
			t.Errorf("%s: export = %d %v; want %d %s mentioning %q", tt.name, code, out, tt.code, tt.reason, tt.message)
		}
	}
	dir := t.TempDir()
	ans := e.export(t, own, "SERVER_TYPE_NGINX", nil, dir)
	if files := asList(ans["files"]); len(files) != 1 || files[0].(obj)["file_name"] != "fullchain.pem" {
		t.Fatalf("export of a CSR certificate for nginx = %v; want fullchain.pem alone", ans)
	}
	ans = e.export(t, held, "SERVER_TYPE_NGINX", obj{"zip": true}, dir)
	if str(ans, "archive", "media_type") != "application/zip" {
		t.Fatalf("export with zip = %v; want an archive", ans)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		e.mu.Lock()
		n := e.events["certflow.certificate.key_exported"]
		e.mu.Unlock()
		if n == 1 {
			break
		}
		if n > 1 || time.Now().After(deadline) {
			t.Fatalf("%d certflow.certificate.key_exported events; want 1 (the one export that carried the key)", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
