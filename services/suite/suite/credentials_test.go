package suite

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	gateway "github.com/certflow/certflow/services/gateway/service"
)

// TestAPIKeysFileHoldsOnlyHashes: the gateway's keys file has no key in it;
// the developer's keys are in dev-credentials, readable only by the user,
// and shown (NewCredentials) only on the start that made them.
func TestAPIKeysFileHoldsOnlyHashes(t *testing.T) {
	dir := t.TempDir()
	secrets := filepath.Join(dir, "secrets")
	first := &Suite{}
	keys, err := first.apiKeys(secrets, dir)
	if err != nil {
		t.Fatal(err)
	}
	if !first.NewCredentials || first.APIKey == "" || first.ReviewerKey == "" {
		t.Fatalf("first start: NewCredentials %v, keys %q %q; want new keys", first.NewCredentials, first.APIKey, first.ReviewerKey)
	}
	onDisk, _ := os.ReadFile(filepath.Join(secrets, "api-keys"))
	for _, text := range []string{keys, string(onDisk)} {
		if strings.Contains(text, first.APIKey) || strings.Contains(text, first.ReviewerKey) {
			t.Fatalf("keys file holds a key:\n%s", text)
		}
		if !strings.Contains(text, gateway.HashAPIKey(first.APIKey)+" dev customer") || !strings.Contains(text, gateway.HashAPIKey(first.ReviewerKey)+" ca-staff reviewer") {
			t.Fatalf("keys file lacks the hashes:\n%s", text)
		}
	}
	for _, p := range []string{first.CredentialsPath, filepath.Join(secrets, "api-keys")} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, mode %v; want 0600", p, err, fi.Mode().Perm())
		}
	}
	again := &Suite{}
	if _, err := again.apiKeys(secrets, dir); err != nil {
		t.Fatal(err)
	}
	if again.NewCredentials || again.APIKey != first.APIKey || again.ReviewerKey != first.ReviewerKey {
		t.Errorf("second start: NewCredentials %v, keys changed %v; want the same keys, not shown again", again.NewCredentials, again.APIKey != first.APIKey)
	}
}

// TestAPIKeysFileMigrated: a keys file of an earlier version, with the keys
// themselves, is rewritten as hashes and its keys kept for the developer.
func TestAPIKeysFileMigrated(t *testing.T) {
	dir := t.TempDir()
	secrets := filepath.Join(dir, "secrets")
	const dev, rev = "cf_dev_00112233445566778899aabbccddeeff", "cf_rev_00112233445566778899aabbccddeeff"
	if err := os.MkdirAll(secrets, 0o700); err != nil {
		t.Fatal(err)
	}
	old := "# <key> <account> [role]; generated for the development run\n" + dev + " dev customer\n" + rev + " ca-staff reviewer\n"
	if err := os.WriteFile(filepath.Join(secrets, "api-keys"), []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &Suite{}
	keys, err := s.apiKeys(secrets, dir)
	if err != nil {
		t.Fatal(err)
	}
	if s.APIKey != dev || s.ReviewerKey != rev || s.NewCredentials {
		t.Errorf("migrated keys = %q, %q (new %v); want the old ones", s.APIKey, s.ReviewerKey, s.NewCredentials)
	}
	onDisk, _ := os.ReadFile(filepath.Join(secrets, "api-keys"))
	if strings.Contains(string(onDisk), dev) || strings.Contains(keys, rev) || !strings.Contains(string(onDisk), gateway.HashAPIKey(dev)) {
		t.Errorf("keys file after migration:\n%s\nwant only hashes", onDisk)
	}
}
