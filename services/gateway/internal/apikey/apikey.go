// Package apikey authenticates API keys. Keys are kept only as SHA-256
// hashes, in the keys file as in memory, so neither the file, a memory dump
// nor a log line shows a usable key.
package apikey

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strings"

	"github.com/certflow/certflow/pkg/auth"
)

// HashPrefix starts every key hash in the keys file.
const HashPrefix = "sha256:"

// MinKeyLength is the shortest key Hash accepts: keys are random strings
// (the embedded default makes 128-bit ones), too long to guess, so an
// unsalted SHA-256 is enough to keep them.
const MinKeyLength = 16

// Hash returns the line form of a key: "sha256:" and the hex SHA-256 of it.
func Hash(key string) string {
	h := sha256.Sum256([]byte(key))
	return HashPrefix + hex.EncodeToString(h[:])
}

// ID is a key's id in audit records and logs: "sha256:" and the first 16
// hex digits of its hash, the start of its line in the keys file. It names
// the key without being usable as one.
func ID(hash [32]byte) string { return HashPrefix + hex.EncodeToString(hash[:8]) }

// Keys maps key hashes to principals.
type Keys struct {
	byHash map[[32]byte]auth.Principal
}

// Parse reads keys, one per line: `sha256:<hex> <account> [customer|reviewer]`,
// where hex is the SHA-256 of the key (Hash; in a shell, `printf %s "$KEY" |
// sha256sum`). Blank lines and lines starting with # are skipped. A line
// that holds a key rather than a hash is refused, without quoting it.
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
			return nil, fmt.Errorf("line %d: want `sha256:<hex> <account> [role]`", n)
		}
		var h [32]byte
		digest, ok := strings.CutPrefix(f[0], HashPrefix)
		if b, err := hex.DecodeString(digest); !ok || err != nil || len(b) != len(h) {
			return nil, fmt.Errorf("line %d: the first field is not a key hash; the keys file holds only hashes: `sha256:` and the hex SHA-256 of the key (printf %%s \"$KEY\" | sha256sum)", n)
		} else {
			copy(h[:], b)
		}
		role := auth.Customer
		if len(f) == 3 {
			role = auth.Role(f[2])
			if role != auth.Customer && role != auth.Reviewer {
				return nil, fmt.Errorf("line %d: role %q is not customer or reviewer", n, f[2])
			}
		}
		if _, dup := k.byHash[h]; dup {
			return nil, fmt.Errorf("line %d: duplicate key", n)
		}
		k.byHash[h] = auth.Principal{Account: f[1], Role: role, Actor: ID(h)}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(k.byHash) == 0 {
		return nil, fmt.Errorf("no API keys configured")
	}
	return k, nil
}

// Lookup returns the principal of a key. The only comparison is the map's,
// of the SHA-256 of the presented key with the stored hashes: its timing can
// tell a caller something about hashes of keys the caller chose, never about
// the bytes of a stored key (finding a key from its hash is a preimage
// attack), which is what a constant-time comparison of the keys themselves
// would protect.
func (k *Keys) Lookup(key string) (auth.Principal, bool) {
	if len(key) < MinKeyLength {
		return auth.Principal{}, false
	}
	p, ok := k.byHash[sha256.Sum256([]byte(key))]
	return p, ok
}
