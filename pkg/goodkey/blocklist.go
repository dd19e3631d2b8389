package goodkey

import (
	"bufio"
	"context"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // Debian's weak-key lists are truncated SHA-1s; nothing is signed with it
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
)

// Set is an in-memory Blocklist that can grow while in use: it is what the
// blocked-keys file loads into, and a compromised key found at run time
// can be added to it.
type Set struct {
	mu sync.RWMutex
	m  map[Hash]struct{}
}

// NewSet returns a Set of hs.
func NewSet(hs ...Hash) *Set {
	s := &Set{m: make(map[Hash]struct{}, len(hs))}
	for _, h := range hs {
		s.m[h] = struct{}{}
	}
	return s
}

// Add blocks h.
func (s *Set) Add(h Hash) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[Hash]struct{}{}
	}
	s.m[h] = struct{}{}
}

// Contains reports whether h is blocked; it never fails.
func (s *Set) Contains(_ context.Context, h Hash) (bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ok := s.m[h]
	return ok, nil
}

// Len is the number of blocked keys.
func (s *Set) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.m)
}

// LoadSet reads a blocked-keys file: one key per line as the 64 hex digits
// of the SHA-256 of its DER SubjectPublicKeyInfo (what `openssl pkey -pubin
// -outform DER | sha256sum` prints), blank lines and text after # ignored.
func LoadSet(path string) (*Set, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("goodkey: blocked keys: %w", err)
	}
	defer f.Close()
	s, err := ReadSet(f)
	if err != nil {
		return nil, fmt.Errorf("goodkey: blocked keys in %s: %w", path, err)
	}
	return s, nil
}

// ReadSet reads the format of LoadSet.
func ReadSet(r io.Reader) (*Set, error) {
	s := NewSet()
	err := eachLine(r, func(line string) error {
		// sha256sum prints "<hash>  -"; take the first field.
		h, err := ParseHash(strings.Fields(line)[0])
		if err != nil {
			return err
		}
		s.m[h] = struct{}{}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// debianFingerprint is the part of a SHA-1 that Debian's openssl-blacklist
// files keep: the last 10 bytes (the last 20 of its 40 hex digits).
type debianFingerprint [10]byte

// DebianWeakKeys is a list of the RSA keys made by Debian's broken OpenSSL
// (CVE-2008-0166), in the format of Debian's openssl-blacklist package
// (/usr/share/openssl-blacklist/blacklist.RSA-2048 and its siblings): one
// key per line as the last 20 hex digits of the SHA-1 of
// "Modulus=<modulus in upper-case hex>\n", which is what `openssl rsa
// -noout -modulus` prints. Full 40-digit SHA-1s are accepted too.
type DebianWeakKeys struct {
	m map[debianFingerprint]struct{}
}

// DebianLine is the line of a Debian blacklist file for modulus n: a
// fixture can be made from a public key alone.
func DebianLine(k *rsa.PublicKey) string {
	fp := debianFingerprintOf(k)
	return hex.EncodeToString(fp[:])
}

func debianFingerprintOf(k *rsa.PublicKey) debianFingerprint {
	sum := sha1.Sum([]byte(fmt.Sprintf("Modulus=%X\n", k.N.Bytes()))) //nolint:gosec // see the import
	var fp debianFingerprint
	copy(fp[:], sum[len(sum)-len(fp):])
	return fp
}

// Contains reports whether k is on the list.
func (d *DebianWeakKeys) Contains(k *rsa.PublicKey) bool {
	_, ok := d.m[debianFingerprintOf(k)]
	return ok
}

// Len is the number of keys on the list.
func (d *DebianWeakKeys) Len() int { return len(d.m) }

// LoadDebianWeakKeys reads one or more Debian blacklist files, concatenated
// or given as several paths.
func LoadDebianWeakKeys(paths ...string) (*DebianWeakKeys, error) {
	d := &DebianWeakKeys{m: map[debianFingerprint]struct{}{}}
	for _, path := range paths {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("goodkey: Debian weak keys: %w", err)
		}
		err = d.read(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("goodkey: Debian weak keys in %s: %w", path, err)
		}
	}
	return d, nil
}

// ReadDebianWeakKeys reads the format of DebianWeakKeys.
func ReadDebianWeakKeys(r io.Reader) (*DebianWeakKeys, error) {
	d := &DebianWeakKeys{m: map[debianFingerprint]struct{}{}}
	if err := d.read(r); err != nil {
		return nil, err
	}
	return d, nil
}

func (d *DebianWeakKeys) read(r io.Reader) error {
	return eachLine(r, func(line string) error {
		b, err := hex.DecodeString(line)
		if err != nil {
			return fmt.Errorf("%q is not hex", line)
		}
		var fp debianFingerprint
		switch len(b) {
		case len(fp), sha1.Size:
			copy(fp[:], b[len(b)-len(fp):])
		default:
			return fmt.Errorf("%q has %d hex digits; want 20 (a truncated SHA-1, as Debian's lists) or 40", line, 2*len(b))
		}
		d.m[fp] = struct{}{}
		return nil
	})
}

// eachLine calls f with each line of r that is not blank, without text
// after #, trimmed; an error names the line.
func eachLine(r io.Reader, f func(string) error) error {
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if err := f(line); err != nil {
			return fmt.Errorf("line %d: %w", n, err)
		}
	}
	return sc.Err()
}

// Files are the lists a service loads at start; an empty path skips that
// list.
type Files struct {
	// DebianWeakKeys is a file in Debian's openssl-blacklist format (see
	// DebianWeakKeys).
	DebianWeakKeys string
	// BlockedKeys is a file of SPKI SHA-256 hashes (see LoadSet) of keys
	// that must never be certified, for example keys known to be
	// compromised before the CA could revoke anything for them.
	BlockedKeys string
}

// Load returns Default with the lists of f, and the Set the blocked-keys
// file went into (empty if there is none), which is also the policy's
// first Compromised blocklist: keys found compromised at run time can be
// added to it, and other blocklists appended after it.
func (f Files) Load() (*Policy, *Set, error) {
	p := Default()
	if f.DebianWeakKeys != "" {
		d, err := LoadDebianWeakKeys(f.DebianWeakKeys)
		if err != nil {
			return nil, nil, err
		}
		p.DebianWeak = d
	}
	blocked := NewSet()
	if f.BlockedKeys != "" {
		s, err := LoadSet(f.BlockedKeys)
		if err != nil {
			return nil, nil, err
		}
		blocked = s
	}
	p.Compromised = []Blocklist{blocked}
	return p, blocked, nil
}
