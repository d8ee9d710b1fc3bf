package admin

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// Failed-authentication rate limit. A 256-bit token cannot be guessed, but
// a client that sends wrong tokens in a loop still costs hashing, log
// lines and sockets: after authBurst failures a client address may fail
// once per authRefill, and is answered 429 without a token check until
// then, so guesses are limited to one a second per address. Only an
// address that sends wrong tokens is slowed (and everyone behind it: a
// NAT shared with a guesser waits as long as the guessing lasts).
const (
	authBurst  = 10
	authRefill = time.Second
	// authTrack bounds the addresses remembered; past it, the entries
	// whose buckets are full again are dropped first.
	authTrack = 4096
)

// authLimiter is a token bucket of failures per client address.
type authLimiter struct {
	now func() time.Time
	mu  sync.Mutex
	by  map[string]*authBucket
}

type authBucket struct {
	tokens float64
	at     time.Time
}

func newAuthLimiter(now func() time.Time) *authLimiter {
	return &authLimiter{now: now, by: map[string]*authBucket{}}
}

// refill brings b up to now; it returns the tokens b holds.
func (l *authLimiter) refill(b *authBucket, now time.Time) float64 {
	b.tokens += float64(now.Sub(b.at)) / float64(authRefill)
	if b.tokens > authBurst {
		b.tokens = authBurst
	}
	b.at = now
	return b.tokens
}

// blocked returns how long client must wait before its token is checked
// again (0: not blocked).
func (l *authLimiter) blocked(client string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.by[client]
	if b == nil {
		return 0
	}
	if t := l.refill(b, l.now()); t < 1 {
		return time.Duration((1 - t) * float64(authRefill))
	}
	return 0
}

// failed records a failed authentication from client.
func (l *authLimiter) failed(client string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b := l.by[client]
	if b == nil {
		if len(l.by) >= authTrack {
			l.evict(now)
		}
		b = &authBucket{tokens: authBurst, at: now}
		l.by[client] = b
	}
	l.refill(b, now)
	if b.tokens >= 1 {
		b.tokens--
	} else {
		b.tokens = 0
	}
}

// evict drops the addresses whose buckets are full again, or, when none
// is, all of them (a flood from many addresses: fairness matters less
// than memory).
func (l *authLimiter) evict(now time.Time) {
	for k, b := range l.by {
		if l.refill(b, now) >= authBurst {
			delete(l.by, k)
		}
	}
	if len(l.by) >= authTrack {
		clear(l.by)
	}
}

// clientIP is the address a request came from, without the port.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
