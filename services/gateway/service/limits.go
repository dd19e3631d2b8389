package service

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/certflow/certflow/services/gateway/internal/apikey"
)

// Limits bound what clients may ask of the gateway, so one client cannot
// take the service from the others and a flood degrades into quick,
// retryable refusals instead of queues that grow until memory runs out.
type Limits struct {
	// KeyRate is each API key's sustained rate (requests per second) and
	// KeyBurst how many it may send at once; beyond them 429.
	KeyRate  float64
	KeyBurst int
	// MaxInFlight bounds the requests being served at once; a request that
	// finds no room within QueueWait gets 503.
	MaxInFlight int
	QueueWait   time.Duration
}

// DefaultLimits suit one gateway on a small machine.
var DefaultLimits = Limits{KeyRate: 50, KeyBurst: 100, MaxInFlight: 256, QueueWait: 200 * time.Millisecond}

func (l *Limits) defaults() {
	if l.KeyRate <= 0 {
		l.KeyRate = DefaultLimits.KeyRate
	}
	if l.KeyBurst <= 0 {
		l.KeyBurst = DefaultLimits.KeyBurst
	}
	if l.MaxInFlight <= 0 {
		l.MaxInFlight = DefaultLimits.MaxInFlight
	}
	if l.QueueWait <= 0 {
		l.QueueWait = DefaultLimits.QueueWait
	}
}

// overload admits at most MaxInFlight requests at once; the others wait
// up to QueueWait and are then refused with 503 and Retry-After.
func overload(l Limits, next http.Handler) http.Handler {
	slots := make(chan struct{}, l.MaxInFlight)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case slots <- struct{}{}:
		default:
			t := time.NewTimer(l.QueueWait)
			select {
			case slots <- struct{}{}:
				t.Stop()
			case <-t.C:
				w.Header().Set("Retry-After", "1")
				writeError(w, http.StatusServiceUnavailable, 14, "OVERLOADED", "the gateway is serving as many requests as it can; retry after the number of seconds in Retry-After")
				return
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
		defer func() { <-slots }()
		next.ServeHTTP(&retryAfterWriter{ResponseWriter: w}, r)
	})
}

// retryAfterWriter adds Retry-After to a 503 from a service (Unavailable
// through the gateway): the client is told when to come back.
type retryAfterWriter struct{ http.ResponseWriter }

func (w *retryAfterWriter) WriteHeader(code int) {
	if code == http.StatusServiceUnavailable && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", "1")
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *retryAfterWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// keyLimiter gives each API key its own token bucket. Only keys found in
// the keys file reach it, so the map is bounded by that file.
type keyLimiter struct {
	l  Limits
	mu sync.Mutex
	by map[string]*rate.Limiter
}

func newKeyLimiter(l Limits) *keyLimiter {
	return &keyLimiter{l: l, by: map[string]*rate.Limiter{}}
}

// allow reports whether the key may make a request now, and if not, how
// long until it may.
func (k *keyLimiter) allow(key string, now time.Time) (bool, time.Duration) {
	id := apikey.Hash(key)
	k.mu.Lock()
	lim, ok := k.by[id]
	if !ok {
		lim = rate.NewLimiter(rate.Limit(k.l.KeyRate), k.l.KeyBurst)
		k.by[id] = lim
	}
	k.mu.Unlock()
	res := lim.ReserveN(now, 1)
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return false, d
	}
	return true, 0
}

func rateLimited(w http.ResponseWriter, wait time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(max(wait, time.Second).Seconds()))))
	writeError(w, http.StatusTooManyRequests, 8, "RATE_LIMITED", "this API key sent more requests than its rate allows; retry after the number of seconds in Retry-After")
}

func bearer(r *http.Request) string {
	token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return strings.TrimSpace(token)
}
