package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"sigs.k8s.io/yaml"
)

// DefaultAPIURL is the gateway of `make run`.
const DefaultAPIURL = "http://127.0.0.1:8080"

// Config is where the CLI finds the API and the key. Flags win over the
// environment, the environment over the config file.
type Config struct {
	APIURL string `json:"api_url"`
	APIKey string `json:"api_key"`
}

// defaultConfigPath is $XDG_CONFIG_HOME/certflow/config.yaml, or
// ~/.config/certflow/config.yaml.
func defaultConfigPath() string {
	if d := os.Getenv("XDG_CONFIG_HOME"); d != "" {
		return filepath.Join(d, "certflow", "config.yaml")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".config", "certflow", "config.yaml")
}

// loadConfig reads path (the default one may be missing), then applies
// the environment and the --api-url flag. A config file holding a key must
// be readable by its owner alone: a key others can read is refused, as ssh
// refuses such a private key.
func loadConfig(path string, explicit bool, flagURL string, getenv func(string) string) (Config, error) {
	var c Config
	if path != "" {
		data, err := os.ReadFile(path)
		switch {
		case errors.Is(err, fs.ErrNotExist) && !explicit:
		case err != nil:
			return c, fmt.Errorf("config file: %w", err)
		default:
			if err := yaml.UnmarshalStrict(data, &c); err != nil {
				return c, fmt.Errorf("config file %s: %w (keys: api_url, api_key)", path, err)
			}
			if c.APIKey != "" {
				if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 {
					return c, fmt.Errorf("config file %s holds an API key and others may read it (mode %v): run chmod 600 %s", path, st.Mode().Perm(), path)
				}
			}
		}
	}
	if v := getenv("CERTFLOW_API_URL"); v != "" {
		c.APIURL = v
	}
	if v := getenv("CERTFLOW_API_KEY"); v != "" {
		c.APIKey = v
	}
	if flagURL != "" {
		c.APIURL = flagURL
	}
	if c.APIURL == "" {
		c.APIURL = DefaultAPIURL
	}
	return c, nil
}
