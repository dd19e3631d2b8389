// Package webhook delivers events to customers' endpoints: an HTTP client
// that signs each request and connects only where the address policy
// allows, and a queue that runs each delivery when it is due.
package webhook

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/certflow/certflow/services/notification/webhooksig"
)

// Timeout bounds one delivery attempt, connecting included.
const Timeout = 10 * time.Second

// MaxResponseBody is how much of an answer is read (and ignored) so the
// connection can be reused.
const MaxResponseBody = 64 << 10

// Request headers besides the signature.
const (
	HeaderEventID   = "Certflow-Event-Id"
	HeaderEventType = "Certflow-Event-Type"
)

// Request is one delivery attempt.
type Request struct {
	URL       string
	Secret    string
	EventID   string
	EventType string
	Body      []byte
}

// Client POSTs signed deliveries.
type Client struct {
	http *http.Client
	now  func() time.Time
}

// NewClient returns a client that connects only to addresses policy
// allows, follows no redirects and uses no proxy (a proxy would connect
// for us, unchecked). now is the clock of the signature timestamps.
func NewClient(policy AddressPolicy, now func() time.Time) *Client {
	dialer := &net.Dialer{Timeout: Timeout, Control: policy.Control}
	return &Client{
		now: now,
		http: &http.Client{
			Timeout: Timeout,
			Transport: &http.Transport{
				Proxy:                 nil,
				DialContext:           dialer.DialContext,
				ForceAttemptHTTP2:     true,
				TLSHandshakeTimeout:   Timeout,
				ResponseHeaderTimeout: Timeout,
				MaxIdleConns:          100,
				MaxIdleConnsPerHost:   2,
				IdleConnTimeout:       90 * time.Second,
			},
			// A redirect is an answer like any other non-2xx one: the
			// endpoint registered is the one that must accept.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
}

// Post sends r and returns the answer's status code; err is set when no
// answer came.
func (c *Client) Post(ctx context.Context, r Request) (status int, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.URL, bytes.NewReader(r.Body))
	if err != nil {
		return 0, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "certflow-webhooks/1")
	req.Header.Set(HeaderEventID, r.EventID)
	req.Header.Set(HeaderEventType, r.EventType)
	req.Header.Set(webhooksig.Header, webhooksig.Sign(r.Secret, r.Body, c.now()))
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, MaxResponseBody))
	return resp.StatusCode, nil
}
