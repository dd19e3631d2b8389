package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte("api_url: http://file:1\napi_key: file-key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	for _, tt := range []struct {
		name             string
		env              map[string]string
		flag             string
		wantURL, wantKey string
	}{
		{"file", nil, "", "http://file:1", "file-key"},
		{"env over file", map[string]string{"CERTFLOW_API_URL": "http://env:2", "CERTFLOW_API_KEY": "env-key"}, "", "http://env:2", "env-key"},
		{"flag over env", map[string]string{"CERTFLOW_API_URL": "http://env:2"}, "http://flag:3", "http://flag:3", "file-key"},
	} {
		env = tt.env
		c, err := loadConfig(path, true, tt.flag, getenv)
		if err != nil || c.APIURL != tt.wantURL || c.APIKey != tt.wantKey {
			t.Errorf("%s: %+v, %v; want %s %s", tt.name, c, err, tt.wantURL, tt.wantKey)
		}
	}
	env = nil
	if c, err := loadConfig(filepath.Join(dir, "missing.yaml"), false, "", getenv); err != nil || c.APIURL != DefaultAPIURL {
		t.Errorf("missing default config = %+v, %v; want the default URL", c, err)
	}
	if _, err := loadConfig(filepath.Join(dir, "missing.yaml"), true, "", getenv); err == nil {
		t.Error("a --config file that does not exist was accepted")
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := loadConfig(path, true, "", getenv); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("world-readable config with a key = %v; want refused with chmod 600", err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	_ = os.WriteFile(bad, []byte("api_url: x\napi_kee: typo\n"), 0o600)
	if _, err := loadConfig(bad, true, "", getenv); err == nil {
		t.Error("a config with an unknown key was accepted")
	}
}

func TestChoicesAndNames(t *testing.T) {
	if v, err := choose("server", "NGINX", serverTypes); err != nil || v != "SERVER_TYPE_NGINX" {
		t.Errorf("choose nginx = %q, %v", v, err)
	}
	if _, err := choose("server", "lighttpd", serverTypes); err == nil || !strings.Contains(err.Error(), "apache, iis, nginx, other, tomcat") {
		t.Errorf("choose lighttpd = %v; want the list of choices", err)
	}
	for _, bad := range []string{"orders/x", "applications/", "applications/a/b", "applications/a?x", "x"} {
		if _, err := name(bad, "applications"); err == nil {
			t.Errorf("name(%q) accepted", bad)
		}
	}
	if fileMode("privkey.pem", "application/x-pem-file") != 0o600 || fileMode("keystore.jks", "") != 0o600 || fileMode("certificate.pfx", "") != 0o600 || fileMode("fullchain.pem", "application/x-pem-file") != 0o644 {
		t.Error("file modes: keys and keystores must be 0600, certificates 0644")
	}
}
