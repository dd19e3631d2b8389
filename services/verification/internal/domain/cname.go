package domain

import (
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"strings"
)

// CNAMELabel is the DNS label a DNS_CNAME target starts with: the token's
// 32 bytes in lower-case base32 without padding (52 characters, within the
// 63 a label may have, and only letters and digits). A token that is not
// base64url of 1 to 39 bytes (none we make) is hashed first, so the label is always valid.
func CNAMELabel(token string) string {
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(b) == 0 || len(b) > 39 { // 39 bytes is the most that fits 63 characters
		h := sha256.Sum256([]byte(token))
		b = h[:]
	}
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}
