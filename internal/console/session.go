package console

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opentrail/opentrail/internal/auth"
)

// maxSessions bounds the memory sessions take; past it the oldest session ends.
const maxSessions = 10000

// session is one signed-in browser. Its ID lives only in an HttpOnly cookie; the store
// keys sessions by the ID's hash, so the map never holds a usable cookie value.
type session struct {
	id      string // the cookie value; set only on the session start returns
	hash    [32]byte
	key     auth.Key
	csrf    string
	created time.Time
	seen    time.Time
	streams atomic.Int32 // live streams open in this session

	mu         sync.Mutex
	regionName string // the region the session acts in (the region picker's choice)
}

func (s *session) region() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.regionName
}

func (s *session) setRegion(region string) {
	s.mu.Lock()
	s.regionName = region
	s.mu.Unlock()
}

// sessionInfo is what the browser learns about its session.
type sessionInfo struct {
	AccessKeyID string `json:"accessKeyId"`
	Account     string `json:"account"`
	User        string `json:"user"`
	Role        string `json:"role"`
	ARN         string `json:"arn"`
	Region      string `json:"region"`
	CSRF        string `json:"csrf"`
	Expires     string `json:"expires"`
}

type sessions struct {
	mu          sync.Mutex
	m           map[[32]byte]*session
	idle, max   time.Duration
	now         func() time.Time
	lastCleanup time.Time
}

func newSessions(idle, max time.Duration, now func() time.Time) *sessions {
	return &sessions{m: map[[32]byte]*session{}, idle: idle, max: max, now: now}
}

func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// start begins a session for key, acting in region.
func (ss *sessions) start(key auth.Key, region string) *session {
	now := ss.now()
	s := &session{id: randomToken(), key: key, csrf: randomToken(), created: now, seen: now, regionName: region}
	s.hash = sha256.Sum256([]byte(s.id))
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.cleanup(now)
	if len(ss.m) >= maxSessions {
		var oldest *session
		for _, o := range ss.m {
			if oldest == nil || o.created.Before(oldest.created) {
				oldest = o
			}
		}
		delete(ss.m, oldest.hash)
	}
	ss.m[s.hash] = s
	return s
}

// get returns the live session r's cookie names, or nil.
func (ss *sessions) get(r *http.Request) *session {
	ck, err := r.Cookie(cookieName)
	if err != nil || ck.Value == "" {
		return nil
	}
	h := sha256.Sum256([]byte(ck.Value))
	now := ss.now()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s := ss.m[h]
	if s == nil {
		return nil
	}
	if ss.expired(s, now) {
		delete(ss.m, h)
		return nil
	}
	s.seen = now
	return s
}

func (ss *sessions) expired(s *session, now time.Time) bool {
	return now.Sub(s.seen) > ss.idle || now.Sub(s.created) > ss.max
}

// cleanup drops expired sessions, at most once a minute. Called with mu held.
func (ss *sessions) cleanup(now time.Time) {
	if now.Sub(ss.lastCleanup) < time.Minute {
		return
	}
	ss.lastCleanup = now
	for h, s := range ss.m {
		if ss.expired(s, now) {
			delete(ss.m, h)
		}
	}
}

// end signs a session out.
func (ss *sessions) end(s *session) {
	ss.mu.Lock()
	delete(ss.m, s.hash)
	ss.mu.Unlock()
}

func (s *session) checkCSRF(token string) bool {
	return token != "" && subtle.ConstantTimeCompare([]byte(token), []byte(s.csrf)) == 1
}

func (s *session) info() sessionInfo {
	return sessionInfo{AccessKeyID: s.key.AccessKeyID, Account: s.key.Account, User: s.key.User, Role: s.key.Role,
		ARN: s.key.ARN(), Region: s.region(), CSRF: s.csrf}
}

// throttle slows down guessing: after a few failed sign-ins for one access key ID, or from
// one address, further attempts wait, twice as long after each failure, up to maxBlock.
type throttle struct {
	mu  sync.Mutex
	m   map[string]*failures
	now func() time.Time
}

type failures struct {
	n     int
	last  time.Time
	until time.Time
}

const (
	freeFailures = 3                // failures allowed before the first wait
	firstBlock   = 2 * time.Second  // the first wait
	maxBlock     = 5 * time.Minute  // the longest wait
	forgetAfter  = 15 * time.Minute // failures this old are forgotten
	maxTracked   = 100000           // bound on the addresses and keys tracked
)

func newThrottle(now func() time.Time) *throttle {
	return &throttle{m: map[string]*failures{}, now: now}
}

func throttleKeys(keyID, ip string) [2]string { return [2]string{"key:" + keyID, "ip:" + ip} }

// blocked is how long sign-ins for keyID from ip must still wait.
func (t *throttle) blocked(keyID, ip string) time.Duration {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	var wait time.Duration
	for _, k := range throttleKeys(keyID, ip) {
		if f := t.m[k]; f != nil && f.until.After(now) && f.until.Sub(now) > wait {
			wait = f.until.Sub(now)
		}
	}
	return wait
}

func (t *throttle) fail(keyID, ip string) {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.m) >= maxTracked {
		for k, f := range t.m {
			if now.Sub(f.last) > forgetAfter {
				delete(t.m, k)
			}
		}
	}
	for _, k := range throttleKeys(keyID, ip) {
		f := t.m[k]
		if f == nil || now.Sub(f.last) > forgetAfter {
			f = &failures{}
			t.m[k] = f
		}
		f.n++
		f.last = now
		if f.n > freeFailures {
			d := firstBlock << min(f.n-freeFailures-1, 10)
			f.until = now.Add(min(d, maxBlock))
		}
	}
}

// succeed forgets the key's failures (not the address's: one good key must not unlock guessing others).
func (t *throttle) succeed(keyID, ip string) {
	t.mu.Lock()
	delete(t.m, "key:"+keyID)
	t.mu.Unlock()
}
