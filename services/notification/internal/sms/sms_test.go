package sms

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
)

func TestOpen(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	tests := []struct {
		driver  string
		wantErr bool
	}{
		{"", false},
		{"dev", false},
		{"twilio", true},
	}
	for _, tt := range tests {
		s, err := Open(tt.driver, log)
		if (err != nil) != tt.wantErr {
			t.Errorf("Open(%q) = %v, %v; want error %v", tt.driver, s, err, tt.wantErr)
		}
		if err != nil && !strings.Contains(err.Error(), `only "dev"`) {
			t.Errorf("Open(%q) error = %q; want it to say only \"dev\" exists", tt.driver, err)
		}
		if err == nil {
			if _, ok := s.(*DevRecorder); !ok {
				t.Errorf("Open(%q) = %T; want *DevRecorder", tt.driver, s)
			}
		}
	}
}

func TestDevRecorder(t *testing.T) {
	d := NewDevRecorder(slog.New(slog.NewTextHandler(io.Discard, nil)))
	for _, m := range []Message{{To: "+491701234567", Text: "one"}, {To: "+861012345678", Text: "two"}} {
		if err := d.Send(context.Background(), m.To, m.Text); err != nil {
			t.Fatalf("Send(%q) = %v; want nil", m.To, err)
		}
	}
	got := d.Messages()
	if len(got) != 2 || got[0].To != "+491701234567" || got[0].Text != "one" || got[1].Text != "two" || got[0].Time.IsZero() {
		t.Fatalf("Messages() = %+v; want both, oldest first", got)
	}
	got[0].Text = "changed"
	if d.Messages()[0].Text != "one" {
		t.Errorf("Messages() shares its slice with the recorder; want a copy")
	}
}

func TestIsPermanent(t *testing.T) {
	base := errors.New("number rejected")
	tests := []struct {
		err  error
		want bool
	}{
		{base, false},
		{Permanent(base), true},
		{errors.Join(errors.New("x"), Permanent(base)), true},
	}
	for _, tt := range tests {
		if got := IsPermanent(tt.err); got != tt.want {
			t.Errorf("IsPermanent(%v) = %v; want %v", tt.err, got, tt.want)
		}
	}
	if !errors.Is(Permanent(base), base) {
		t.Errorf("Permanent(err) does not unwrap to err")
	}
}
