package orgval

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"strings"
	"testing"

	"github.com/certflow/certflow/pkg/apierr"
)

func testImage(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for x := 0; x < w; x++ {
		img.Set(x, x%h, color.RGBA{R: 200, A: 255})
	}
	return img
}

func pngOf(t testing.TB, w, h int) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, testImage(w, h)); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func jpegOf(t testing.TB, w, h int) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, testImage(w, h), nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func gifOf(t testing.TB) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := gif.Encode(&b, testImage(2, 2), nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// pngHeader is a PNG signature and a valid IHDR declaring w x h pixels,
// and nothing else: a header is all DecodeConfig reads.
func pngHeader(w, h uint32) []byte {
	ihdr := make([]byte, 0, 17)
	ihdr = append(ihdr, "IHDR"...)
	ihdr = binary.BigEndian.AppendUint32(ihdr, w)
	ihdr = binary.BigEndian.AppendUint32(ihdr, h)
	ihdr = append(ihdr, 8, 2, 0, 0, 0) // 8-bit RGB
	out := append([]byte(nil), pngSignature...)
	out = binary.BigEndian.AppendUint32(out, 13)
	out = append(out, ihdr...)
	return binary.BigEndian.AppendUint32(out, crc32.ChecksumIEEE(ihdr))
}

// jpegDeclaring is a small JPEG whose frame header claims w x h pixels.
func jpegDeclaring(t testing.TB, w, h uint16) []byte {
	t.Helper()
	b := jpegOf(t, 8, 8)
	i := bytes.Index(b, []byte{0xff, 0xc0})
	if i < 0 {
		t.Fatal("no SOF0 marker in the encoded JPEG")
	}
	binary.BigEndian.PutUint16(b[i+5:], h)
	binary.BigEndian.PutUint16(b[i+7:], w)
	return b
}

func TestCheckImage(t *testing.T) {
	tooBig := append(pngOf(t, 4, 4), make([]byte, 600*1024)...)
	atLimit := append(pngOf(t, 4, 4), make([]byte, MaxUploadBytes)...)[:MaxUploadBytes]
	tests := []struct {
		name       string
		content    []byte
		wantType   string
		wantW      int
		wantH      int
		wantReason string
	}{
		{"png", pngOf(t, 3, 2), PNG, 3, 2, ""},
		{"jpeg", jpegOf(t, 5, 4), JPEG, 5, 4, ""},
		{"png at the size limit", atLimit, PNG, 4, 4, ""},
		{"png one byte over", tooBig[:MaxUploadBytes+1], "", 0, 0, "FILE_TOO_LARGE"},
		{"600 KB", tooBig[:600*1024], "", 0, 0, "FILE_TOO_LARGE"},
		{"empty", nil, "", 0, 0, "EMPTY_FILE"},
		{"gif", gifOf(t), "", 0, 0, "UNSUPPORTED_FILE_TYPE"},
		{"text", []byte("PNG image, honest"), "", 0, 0, "UNSUPPORTED_FILE_TYPE"},
		{"pdf", []byte("%PDF-1.7\n"), "", 0, 0, "UNSUPPORTED_FILE_TYPE"},
		{"html", []byte("<html><script>alert(1)</script>"), "", 0, 0, "UNSUPPORTED_FILE_TYPE"},
		{"png signature only", pngSignature, "", 0, 0, "CORRUPT_IMAGE"},
		{"truncated png", pngOf(t, 3, 2)[:20], "", 0, 0, "CORRUPT_IMAGE"},
		{"jpeg SOI only", jpegSOI, "", 0, 0, "CORRUPT_IMAGE"},
		{"png bad IHDR checksum", append(pngHeader(10, 10)[:29], 0, 0, 0, 0), "", 0, 0, "CORRUPT_IMAGE"},
		{"png 7000 x 7000", pngHeader(7000, 7000), PNG, 7000, 7000, ""},
		{"png bomb 100000 x 100000", pngHeader(100000, 100000), "", 0, 0, "IMAGE_TOO_LARGE"},
		{"png 2^31-1 x 2^31-1", pngHeader(1<<31-1, 1<<31-1), "", 0, 0, "CORRUPT_IMAGE"}, // image/png: dimension overflow
		{"jpeg bomb 65535 x 65535", jpegDeclaring(t, 65535, 65535), "", 0, 0, "IMAGE_TOO_LARGE"},
		{"jpeg 8000 x 6000", jpegDeclaring(t, 8000, 6000), JPEG, 8000, 6000, ""},
	}
	for _, tt := range tests {
		ct, w, h, err := CheckImage(tt.content)
		if got := apierr.ReasonOf(err); got != tt.wantReason {
			t.Errorf("CheckImage(%s) reason = %q (%v); want %q", tt.name, got, err, tt.wantReason)
			continue
		}
		if err != nil {
			if !errors.Is(err, apierr.ErrInvalidArgument) {
				t.Errorf("CheckImage(%s) = %v; want InvalidArgument", tt.name, err)
			}
			continue
		}
		if ct != tt.wantType || w != tt.wantW || h != tt.wantH {
			t.Errorf("CheckImage(%s) = %s %dx%d; want %s %dx%d", tt.name, ct, w, h, tt.wantType, tt.wantW, tt.wantH)
		}
	}
}

func TestCheckImageSaysWhatItGot(t *testing.T) {
	_, _, _, err := CheckImage(gifOf(t))
	var e *apierr.Error
	if !errors.As(err, &e) || e.Metadata["detected_type"] != "image/gif" {
		t.Fatalf("CheckImage(gif) metadata = %v; want detected_type image/gif", err)
	}
	_, _, _, err = CheckImage(make([]byte, 600*1024))
	if !errors.As(err, &e) || e.Metadata["size_bytes"] != "614400" || e.Metadata["max_size_bytes"] != "512000" {
		t.Fatalf("CheckImage(600 KB) metadata = %v; want size_bytes 614400 and max_size_bytes 512000", err)
	}
}

func TestDisplayName(t *testing.T) {
	tests := []struct {
		name, contentType string
		want              string
		wantErr           bool
	}{
		{"", PNG, "document.png", false},
		{"  ", JPEG, "document.jpg", false},
		{"business-license.png", PNG, "business-license.png", false},
		{"营业执照.jpg", JPEG, "营业执照.jpg", false},
		{" padded.png ", PNG, "padded.png", false},
		{"license.gif", PNG, "license.gif", false}, // the name is a label; the content decides the type
		{strings.Repeat("a", 255), PNG, strings.Repeat("a", 255), false},
		{strings.Repeat("é", 255), PNG, strings.Repeat("é", 255), false},
		{strings.Repeat("a", 256), PNG, "", true},
		{"../etc/passwd", PNG, "", true},
		{"dir/file.png", PNG, "", true},
		{`C:\docs\file.png`, PNG, "", true},
		{"..", PNG, "", true},
		{"line\nbreak.png", PNG, "", true},
		{"nul\x00.png", PNG, "", true},
		{"evil\u202egnp.exe", PNG, "", true},
		{"bad\xffutf8.png", PNG, "", true},
	}
	for _, tt := range tests {
		got, err := DisplayName(tt.name, tt.contentType)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("DisplayName(%q, %s) = %q, %v; want %q (error %v)", tt.name, tt.contentType, got, err, tt.want, tt.wantErr)
		}
		if err != nil && apierr.ReasonOf(err) != "INVALID_DISPLAY_NAME" {
			t.Errorf("DisplayName(%q) reason = %q; want INVALID_DISPLAY_NAME", tt.name, apierr.ReasonOf(err))
		}
	}
}

func TestNewDocument(t *testing.T) {
	content := pngOf(t, 3, 2)
	d, err := NewDocument("applications/a1", "", content, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if d.ContentType != PNG || d.DisplayName != "document.png" || d.Size != int64(len(content)) || len(d.SHA256) != 64 || d.Width != 3 || d.Height != 2 {
		t.Fatalf("NewDocument(png) = %+v; want a 3x2 PNG named document.png with its size and digest", d.Meta())
	}
	if m := d.Meta(); m.Content != nil || d.Content == nil {
		t.Fatalf("Meta() kept the content or cleared the original")
	}
}

func TestDocumentList(t *testing.T) {
	l := DocumentList{Application: "applications/a1"}
	for i := range MaxDocuments {
		d := Document{SHA256: strings.Repeat("0", 63) + string(rune('a'+i%26)), Content: []byte{1}}
		if added, err := l.Add("d"+string(rune('a'+i)), d); !added || err != nil {
			t.Fatalf("Add #%d = %v, %v; want added", i, added, err)
		}
	}
	if added, err := l.Add("da", Document{}); added || err != nil {
		t.Fatalf("Add(listed id) = %v, %v; want a no-op", added, err)
	}
	if _, err := l.Add("new", Document{}); apierr.ReasonOf(err) != "TOO_MANY_DOCUMENTS" {
		t.Fatalf("Add past %d = %v; want TOO_MANY_DOCUMENTS", MaxDocuments, err)
	}
	if l.Documents[0].Document.Content != nil {
		t.Fatalf("a listed document keeps its content")
	}
	if _, ok := l.Find(strings.Repeat("0", 63) + "b"); !ok {
		t.Fatalf("Find(listed digest) = false; want true")
	}
}
