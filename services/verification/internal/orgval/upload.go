package orgval

import (
	"bytes"
	"image"
	"image/jpeg"
	"image/png"
	"net/http"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/certflow/certflow/pkg/apierr"
)

// MaxUploadBytes is the largest qualification image accepted. The seeds say
// "its size does not exceed 500 KB"; certflow reads KB as 1,024 bytes, the
// more lenient reading and the one file managers use, so a file the
// customer's computer shows as 500 KB is accepted: 512,000 bytes.
const MaxUploadBytes = 500 * 1024

// MaxPixels bounds width*height. A PNG or JPEG of 500 KB can declare a huge
// canvas (a flat image compresses to almost nothing); a viewer that decodes
// it would need gigabytes. 50 megapixels is more than a phone camera or a
// 600 dpi A4 scan produces.
const MaxPixels = 50_000_000

// MaxDisplayNameLength is the longest display name, in characters.
const MaxDisplayNameLength = 255

// Content types of accepted images.
const (
	PNG  = "image/png"
	JPEG = "image/jpeg"
)

var (
	pngSignature = []byte("\x89PNG\r\n\x1a\n")
	jpegSOI      = []byte{0xff, 0xd8, 0xff}
)

// CheckImage accepts a PNG or JPEG image of at most MaxUploadBytes and
// MaxPixels, recognised by its content (its signature and a readable image
// header), never by its file name. It reads the header only, so its cost is
// bounded by the size limit whatever the image declares.
func CheckImage(content []byte) (contentType string, w, h int, err error) {
	switch {
	case len(content) == 0:
		return "", 0, 0, apierr.Invalid("document.content", "EMPTY_FILE", "the file is empty; upload a PNG or JPEG image of at most 500 KB")
	case len(content) > MaxUploadBytes:
		return "", 0, 0, apierr.Invalid("document.content", "FILE_TOO_LARGE",
			"the file is %d bytes and the limit is 500 KB (%d bytes); compress or scale down the image and upload it again",
			len(content), MaxUploadBytes).
			WithMeta("size_bytes", strconv.Itoa(len(content))).
			WithMeta("max_size_bytes", strconv.Itoa(MaxUploadBytes))
	}
	var cfg image.Config
	var format string
	switch {
	case bytes.HasPrefix(content, pngSignature):
		contentType, format = PNG, "PNG"
		cfg, err = png.DecodeConfig(bytes.NewReader(content))
	case bytes.HasPrefix(content, jpegSOI):
		contentType, format = JPEG, "JPEG"
		cfg, err = jpeg.DecodeConfig(bytes.NewReader(content))
	default:
		return "", 0, 0, apierr.Invalid("document.content", "UNSUPPORTED_FILE_TYPE",
			"only PNG or JPEG images are accepted; got %s; export or scan the document as PNG or JPEG", detect(content)).
			WithMeta("detected_type", detect(content))
	}
	if err != nil {
		return "", 0, 0, apierr.Invalid("document.content", "CORRUPT_IMAGE",
			"the file starts like a %s image but its header cannot be read (%v); export the image again and upload it", format, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || int64(cfg.Width)*int64(cfg.Height) > MaxPixels {
		return "", 0, 0, apierr.Invalid("document.content", "IMAGE_TOO_LARGE",
			"the image is %d x %d pixels and the limit is %d megapixels; scale it down and upload it again",
			cfg.Width, cfg.Height, MaxPixels/1_000_000)
	}
	return contentType, cfg.Width, cfg.Height, nil
}

// detect names what the content looks like, for the refusal message.
func detect(content []byte) string {
	t := http.DetectContentType(content)
	if i := strings.IndexByte(t, ';'); i >= 0 {
		t = t[:i]
	}
	return t
}

// DisplayName checks a document's display name, or makes one from the
// content type when it is empty. It is a label, not a path: separators,
// control and formatting characters (such as the right-to-left override
// that makes "gnp.exe" read "exe.png") are refused.
func DisplayName(name, contentType string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		if contentType == JPEG {
			return "document.jpg", nil
		}
		return "document.png", nil
	}
	bad := func(format string, args ...any) (string, error) {
		return "", apierr.Invalid("document.display_name", "INVALID_DISPLAY_NAME", format, args...)
	}
	switch {
	case !utf8.ValidString(name):
		return bad("display_name is not valid UTF-8")
	case utf8.RuneCountInString(name) > MaxDisplayNameLength:
		return bad("display_name is %d characters; use at most %d", utf8.RuneCountInString(name), MaxDisplayNameLength)
	case name == "." || name == "..":
		return bad("display_name %q is not a file name; name the document, for example business-license.png", name)
	}
	for _, r := range name {
		switch {
		case r == '/' || r == '\\':
			return bad("display_name must not contain / or \\; give the file name only, for example business-license.png")
		case unicode.IsControl(r) || unicode.Is(unicode.Cf, r):
			return bad("display_name contains the control or formatting character %U; remove it", r)
		}
	}
	return name, nil
}
