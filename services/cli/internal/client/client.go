// Package client calls certflow's public JSON API (the gateway), as any
// customer's program could: plain HTTP and JSON, nothing internal.
package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Client is an API client for one account's key.
type Client struct {
	BaseURL string
	Key     string
	HTTP    *http.Client
}

// New returns a client of baseURL with key.
func New(baseURL, key string) *Client {
	return &Client{BaseURL: strings.TrimSuffix(baseURL, "/"), Key: key, HTTP: &http.Client{Timeout: 60 * time.Second}}
}

// Error is an answer other than 2xx: the API's google.rpc.Status as JSON.
type Error struct {
	HTTPStatus int
	Message    string
	Reason     string
}

func (e *Error) Error() string {
	if e.Reason != "" {
		return fmt.Sprintf("%s (%s, HTTP %d)", e.Message, e.Reason, e.HTTPStatus)
	}
	return fmt.Sprintf("%s (HTTP %d)", e.Message, e.HTTPStatus)
}

// IsStatus reports whether err is an API answer with that HTTP status.
func IsStatus(err error, status int) bool {
	var e *Error
	return errors.As(err, &e) && e.HTTPStatus == status
}

// NewRequestID returns a random id for a request that must not run twice.
func NewRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "cli-" + hex.EncodeToString(b[:])
}

// Do sends body as JSON (nil: none) and decodes a 2xx answer into out (if
// not nil); it returns the answer's raw JSON too, for --output json.
func (c *Client) Do(ctx context.Context, method, path string, body, out any) (json.RawMessage, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, rd)
	if err != nil {
		return nil, err
	}
	if c.Key != "" {
		req.Header.Set("Authorization", "Bearer "+c.Key)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Request-Id", NewRequestID())
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the certflow API at %s: %w (check --api-url or CERTFLOW_API_URL)", c.BaseURL, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("read the answer of %s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, apiError(resp.StatusCode, data)
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return nil, fmt.Errorf("decode the answer of %s %s: %w", method, path, err)
		}
	}
	return data, nil
}

func apiError(status int, data []byte) error {
	var st struct {
		Message string `json:"message"`
		Details []struct {
			Reason string `json:"reason"`
		} `json:"details"`
	}
	e := &Error{HTTPStatus: status}
	if json.Unmarshal(data, &st) == nil && st.Message != "" {
		e.Message = st.Message
		for _, d := range st.Details {
			if d.Reason != "" {
				e.Reason = d.Reason
				break
			}
		}
	} else {
		e.Message = strings.TrimSpace(string(data))
		if e.Message == "" {
			e.Message = http.StatusText(status)
		}
	}
	return e
}
