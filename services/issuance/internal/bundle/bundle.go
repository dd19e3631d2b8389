// Package bundle makes the files each kind of server installs a certificate
// from: PEM files, a PKCS#12 (PFX) file and a Java keystore, optionally in
// one zip. The encoders are the libraries' (go-pkcs12, keystore-go); this
// package only chooses files, names and parameters.
package bundle

import (
	"archive/zip"
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"time"

	keystore "github.com/pavlo-v-chernykh/keystore-go/v4"
	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

// ServerType is the server software a bundle is for.
type ServerType string

// Server types.
const (
	Nginx  ServerType = "NGINX"
	Apache ServerType = "APACHE"
	Tomcat ServerType = "TOMCAT"
	IIS    ServerType = "IIS"
	Other  ServerType = "OTHER"
)

// Media types of the files.
const (
	MediaPEM      = "application/x-pem-file"
	MediaPKCS12   = "application/x-pkcs12"
	MediaKeystore = "application/x-java-keystore"
	MediaZip      = "application/zip"
)

// JKSAlias is the alias of the key entry in keystore.jks (Tomcat's
// certificateKeyAlias).
const JKSAlias = "tomcat"

// file is one file a server type gets; a nil make means the file is left
// out (a PEM key the service does not hold).
type file struct {
	name, media string
	// key: the file holds the private key (and needs one).
	key  bool
	make func(m *material) ([]byte, error)
}

// layouts are the files per server type, in the order they are returned.
// Keystores need the key; the PEM types give the certificate files alone
// when the customer holds the key.
var layouts = map[ServerType][]file{
	Nginx:  {{"fullchain.pem", MediaPEM, false, fullChainPEM}, {"privkey.pem", MediaPEM, true, keyPEM}},
	Apache: {{"cert.pem", MediaPEM, false, certPEM}, {"chain.pem", MediaPEM, false, chainPEM}, {"privkey.pem", MediaPEM, true, keyPEM}},
	Tomcat: {{"keystore.jks", MediaKeystore, true, jks}, {"keystore.p12", MediaPKCS12, true, pfx}},
	IIS:    {{"certificate.pfx", MediaPKCS12, true, pfx}},
	Other: {{"cert.pem", MediaPEM, false, certPEM}, {"chain.pem", MediaPEM, false, chainPEM},
		{"fullchain.pem", MediaPEM, false, fullChainPEM}, {"privkey.pem", MediaPEM, true, keyPEM}},
}

// Valid reports whether t is a server type with a layout.
func Valid(t ServerType) bool { _, ok := layouts[t]; return ok }

// NeedsKey reports whether t's files cannot be made without the private
// key (the keystores).
func NeedsKey(t ServerType) bool {
	for _, f := range layouts[t] {
		if !f.key {
			return false
		}
	}
	return len(layouts[t]) > 0
}

// NeedsPassword reports whether t's files are protected by a password.
func NeedsPassword(t ServerType) bool { return NeedsKey(t) }

// Request is what to put in a bundle.
type Request struct {
	Type ServerType
	// Leaf, then the chain up to (not including) the root.
	Leaf  *x509.Certificate
	Chain []*x509.Certificate
	// Key is nil when the customer made it.
	Key crypto.Signer
	// Password protects the keystores (NeedsPassword).
	Password string
	// Legacy makes PKCS#12 with 3DES and a SHA-1 MAC (go-pkcs12 LegacyDES)
	// for Windows Server 2016 and older instead of AES-256 with PBKDF2 and
	// a SHA-256 MAC (Modern2023).
	Legacy bool
	// Created is the keystore entry's creation time.
	Created time.Time
}

// File is one file of a bundle.
type File struct {
	Name, MediaType string
	Content         []byte
	// Key: the file carries the private key.
	Key bool
}

// ErrNoKey: the server type needs the private key and the request has none.
var ErrNoKey = errors.New("bundle: the server type needs the private key")

type material struct {
	Request
	keyDER []byte
}

// Make returns the files of r.Type. PEM types leave the key file out when
// r.Key is nil; keystore types return ErrNoKey.
func Make(r Request) ([]File, error) {
	layout, ok := layouts[r.Type]
	if !ok {
		return nil, fmt.Errorf("bundle: unknown server type %q", r.Type)
	}
	m := &material{Request: r}
	if r.Key != nil {
		der, err := x509.MarshalPKCS8PrivateKey(r.Key)
		if err != nil {
			return nil, fmt.Errorf("bundle: encode key: %w", err)
		}
		m.keyDER = der
	} else if NeedsKey(r.Type) {
		return nil, ErrNoKey
	}
	var out []File
	for _, f := range layout {
		if f.key && r.Key == nil {
			continue
		}
		b, err := f.make(m)
		if err != nil {
			return nil, fmt.Errorf("bundle: %s: %w", f.name, err)
		}
		out = append(out, File{Name: f.name, MediaType: f.media, Content: b, Key: f.key})
	}
	return out, nil
}

func pemOf(certs ...*x509.Certificate) []byte {
	var b bytes.Buffer
	for _, c := range certs {
		_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	return b.Bytes()
}

func certPEM(m *material) ([]byte, error)  { return pemOf(m.Leaf), nil }
func chainPEM(m *material) ([]byte, error) { return pemOf(m.Chain...), nil }
func fullChainPEM(m *material) ([]byte, error) {
	return pemOf(append([]*x509.Certificate{m.Leaf}, m.Chain...)...), nil
}

func keyPEM(m *material) ([]byte, error) {
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: m.keyDER}), nil
}

func pfx(m *material) ([]byte, error) {
	enc := pkcs12.Modern2023
	if m.Legacy {
		// LegacyDES rather than LegacyRC2: go-pkcs12 recommends it, every
		// Windows version reads it, and OpenSSL 3 reads it without
		// -legacy.
		enc = pkcs12.LegacyDES
	}
	return enc.Encode(m.Key, m.Leaf, m.Chain, m.Password)
}

func jks(m *material) ([]byte, error) {
	ks := keystore.New()
	entry := keystore.PrivateKeyEntry{CreationTime: m.Created, PrivateKey: m.keyDER}
	for _, c := range append([]*x509.Certificate{m.Leaf}, m.Chain...) {
		entry.CertificateChain = append(entry.CertificateChain, keystore.Certificate{Type: "X509", Content: c.Raw})
	}
	pw := []byte(m.Password)
	if err := ks.SetPrivateKeyEntry(JKSAlias, entry, pw); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := ks.Store(&b, pw); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Zip puts files into one archive, named name. Files with a key get mode
// 0600, the others 0644, so unzip keeps the key private.
func Zip(name string, files []File, modified time.Time) (File, error) {
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	for _, f := range files {
		h := &zip.FileHeader{Name: f.Name, Method: zip.Deflate, Modified: modified}
		mode := fs.FileMode(0o644)
		if f.Key {
			mode = 0o600
		}
		h.SetMode(mode)
		fw, err := w.CreateHeader(h)
		if err != nil {
			return File{}, err
		}
		if _, err := fw.Write(f.Content); err != nil {
			return File{}, err
		}
	}
	if err := w.Close(); err != nil {
		return File{}, err
	}
	key := false
	for _, f := range files {
		key = key || f.Key
	}
	return File{Name: name, MediaType: MediaZip, Content: b.Bytes(), Key: key}, nil
}

// Password limits. Keystores hold the password as 16-bit characters and
// keystore-go (like many tools) takes it byte by byte, so only printable
// ASCII is safe everywhere; spaces are refused because they are lost so
// easily on command lines.
const (
	MinPassword = 8
	MaxPassword = 128
)

// CheckPassword says what is wrong with a customer's password, or nil.
func CheckPassword(p string) error {
	if len(p) < MinPassword || len(p) > MaxPassword {
		return fmt.Errorf("the password must have %d to %d characters; it has %d", MinPassword, MaxPassword, len(p))
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c < 0x21 || c > 0x7e {
			return fmt.Errorf("the password may hold only printable ASCII characters without spaces (character %d is not one)", i+1)
		}
	}
	return nil
}

const passwordAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// GeneratedLength is the length of a generated password: 20 of 62
// characters, about 119 bits.
const GeneratedLength = 20

// NewPassword returns a random password from crypto/rand.
func NewPassword() (string, error) {
	out := make([]byte, GeneratedLength)
	n := big.NewInt(int64(len(passwordAlphabet)))
	for i := range out {
		v, err := rand.Int(rand.Reader, n)
		if err != nil {
			return "", err
		}
		out[i] = passwordAlphabet[v.Int64()]
	}
	return string(out), nil
}
