package orgval

import (
	"bytes"
	"image"
	"testing"

	"github.com/certflow/certflow/pkg/apierr"
)

// FuzzCheckImage checks that CheckImage never panics, refuses with an
// InvalidArgument of a known reason, and that whatever it accepts is within
// the limits and has a header image.DecodeConfig reads the same way. Seeds
// live in testdata/fuzz/FuzzCheckImage (a tiny PNG and JPEG, a truncated
// PNG, a GIF, text).
func FuzzCheckImage(f *testing.F) {
	f.Add(pngOf(f, 2, 2))
	f.Add(jpegOf(f, 2, 2))
	f.Add(pngHeader(100000, 100000))
	known := map[string]bool{
		"EMPTY_FILE": true, "FILE_TOO_LARGE": true, "UNSUPPORTED_FILE_TYPE": true, "CORRUPT_IMAGE": true, "IMAGE_TOO_LARGE": true,
	}
	f.Fuzz(func(t *testing.T, content []byte) {
		ct, w, h, err := CheckImage(content)
		if err != nil {
			if apierr.KindOf(err) != apierr.InvalidArgument || !known[apierr.ReasonOf(err)] {
				t.Fatalf("CheckImage refused with %v (kind %v, reason %q); want InvalidArgument with a known reason",
					err, apierr.KindOf(err), apierr.ReasonOf(err))
			}
			return
		}
		if len(content) == 0 || len(content) > MaxUploadBytes || w <= 0 || h <= 0 || int64(w)*int64(h) > MaxPixels {
			t.Fatalf("CheckImage accepted %d bytes of %dx%d; outside the limits", len(content), w, h)
		}
		cfg, format, err := image.DecodeConfig(bytes.NewReader(content))
		if err != nil {
			t.Fatalf("CheckImage accepted %s %dx%d but image.DecodeConfig = %v", ct, w, h, err)
		}
		if "image/"+format != ct || cfg.Width != w || cfg.Height != h {
			t.Fatalf("CheckImage = %s %dx%d; image.DecodeConfig = %s %dx%d", ct, w, h, format, cfg.Width, cfg.Height)
		}
	})
}
