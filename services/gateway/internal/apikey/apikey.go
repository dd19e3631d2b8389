// Package apikey authenticates API keys. Keys are kept only as SHA-256
// hashes, so a memory dump or a log line never shows a usable key.
package apikey

import (
	"bufio"
	"crypto/sha256"
	"fmt"
	"io"
	"strings"

	"github.com/certflow/certflow/pkg/auth"
)

// Keys maps key hashes to principals.
type Keys struct {
	byHash map[[32]byte]auth.Principal
}

// Parse reads keys, one per line: `<key> <account> [customer|reviewer]`.
// Blank lines and lines starting with # are skipped.
func Parse(r io.Reader) (*Keys, error) {
	k := &Keys{byHash: map[[32]byte]auth.Principal{}}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 || len(f) > 3 {
			return nil, fmt.Errorf("line %d: want `<key> <account> [role]`", n)
		}
		role := auth.Customer
		if len(f) == 3 {
			role = auth.Role(f[2])
			if role != auth.Customer && role != auth.Reviewer {
				return nil, fmt.Errorf("line %d: role %q is not customer or reviewer", n, f[2])
			}
		}
		if len(f[0]) < 16 {
			return nil, fmt.Errorf("line %d: key is shorter than 16 characters", n)
		}
		h := sha256.Sum256([]byte(f[0]))
		if _, dup := k.byHash[h]; dup {
			return nil, fmt.Errorf("line %d: duplicate key", n)
		}
		k.byHash[h] = auth.Principal{Account: f[1], Role: role}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(k.byHash) == 0 {
		return nil, fmt.Errorf("no API keys configured")
	}
	return k, nil
}

// Lookup returns the principal of a key. The map lookup is on a hash of
// the key, so its timing says nothing about stored keys.
func (k *Keys) Lookup(key string) (auth.Principal, bool) {
	p, ok := k.byHash[sha256.Sum256([]byte(key))]
	return p, ok
}
