package rpc

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fsrep/fsrep/fs/chunkstore"
	"github.com/fsrep/fsrep/meta"
)

// TestHostileRequests sends malformed or oversized requests with a valid
// token. Each must get a 4xx JSON error whose code the client maps to the
// right sentinel, and the server must keep serving.
func TestHostileRequests(t *testing.T) {
	h := newHarness(t)
	tok := Token(testSecret)
	id := chunkstore.ID{Vol: 3, Ino: 7, Index: 0}
	if err := h.client.PutChunk(t.Context(), "n1", id, 1, []byte("0123456789")); err != nil {
		t.Fatal(err)
	}
	ok := "id=" + id.String()
	maxI64 := strconv.FormatInt(1<<63-1, 10)

	for _, tc := range []struct {
		name, method, url string
		body              []byte
		want              error
	}{
		{"bad chunk id", "GET", pathStat + "?id=bogus", nil, meta.ErrInvalid},
		{"no chunk id", "GET", pathStat, nil, meta.ErrInvalid},
		{"non-canonical chunk id", "GET", pathStat + "?id=v03-i7-c0", nil, meta.ErrInvalid},
		{"path in chunk id", "DELETE", pathChunk + "?id=../../etc/passwd", nil, meta.ErrInvalid},
		{"negative version", "GET", pathChunk + "?" + ok + "&version=-1&off=0&len=1", nil, meta.ErrInvalid},
		{"non-numeric offset", "GET", pathChunk + "?" + ok + "&version=1&off=abc&len=1", nil, meta.ErrInvalid},
		{"missing length", "GET", pathChunk + "?" + ok + "&version=1&off=0", nil, meta.ErrInvalid},
		{"version overflows", "GET", pathChunk + "?" + ok + "&version=18446744073709551616&off=0&len=1", nil, meta.ErrInvalid},
		{"read above the server limit", "GET", pathChunk + "?" + ok + "&version=1&off=0&len=" + strconv.Itoa(maxChunk+1), nil, meta.ErrInvalid},
		{"read of max int64 bytes", "GET", pathChunk + "?" + ok + "&version=1&off=0&len=" + maxI64, nil, meta.ErrInvalid},
		{"read above the store limit", "GET", pathChunk + "?" + ok + "&version=1&off=0&len=" + strconv.Itoa(testMaxChunk+1), nil, chunkstore.ErrTooLarge},
		{"read at max int64", "GET", pathChunk + "?" + ok + "&version=1&off=" + maxI64 + "&len=1", nil, chunkstore.ErrTooLarge},
		{"negative base length", "PUT", pathChunk + "?" + ok + "&base=1&version=2&baselen=-5&off=0", []byte("x"), meta.ErrInvalid},
		{"write version 0", "PUT", pathChunk + "?" + ok + "&base=0&version=0&baselen=0&off=0", []byte("x"), meta.ErrInvalid},
		{"write at max int64", "PUT", pathChunk + "?" + ok + "&base=1&version=2&baselen=10&off=" + maxI64, []byte("x"), chunkstore.ErrTooLarge},
		{"put version 0", "POST", pathChunk + "?" + ok + "&version=0", []byte("x"), meta.ErrInvalid},
		{"put above the store limit", "POST", pathChunk + "?" + ok + "&version=2", make([]byte, testMaxChunk+1), chunkstore.ErrTooLarge},
		{"join not JSON", "POST", pathJoin, []byte("{not json"), meta.ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader
			if tc.body != nil {
				body = bytes.NewReader(tc.body)
			}
			r := h.raw(t, tc.method, tc.url, tok, body)
			if r.status < 400 || r.status > 499 {
				t.Errorf("status %d, want 4xx (body %q)", r.status, r.body)
			}
			we := r.wire(t)
			if err := fromWire(we, r.status); !errors.Is(err, tc.want) {
				t.Errorf("error %+v reads back as %v, want %v", we, err, tc.want)
			}
			h.alive(t)
		})
	}

	// Nothing hostile changed the chunk.
	if v, n, err := h.store.Stat(id); err != nil || v != 1 || n != 10 {
		t.Errorf("chunk after hostile requests: version %d, length %d, %v", v, n, err)
	}
	if got := h.join.joined(); len(got) != 0 {
		t.Errorf("a malformed join reached the joiner: %+v", got)
	}
}

// TestOversizedBodies checks both body limits: a declared Content-Length
// above the limit is refused before anything is read, and a chunked body
// that runs past the limit is cut off.
func TestOversizedBodies(t *testing.T) {
	h := newHarness(t)
	id := chunkstore.ID{Vol: 3, Ino: 8, Index: 0}
	chunkPut := pathChunk + "?id=" + id.String() + "&version=1"
	chunkWrite := pathChunk + "?id=" + id.String() + "&base=0&version=1&baselen=0&off=0"

	for _, tc := range []struct {
		name, method, path string
		length             int64
	}{
		{"chunk write", "PUT", chunkWrite, maxChunk + 1},
		{"chunk put", "POST", chunkPut, maxChunk + 1},
		{"chunk put, 1 TiB", "POST", chunkPut, 1 << 40},
		{"apply", "POST", pathApply, maxEntry + 1},
		{"join", "POST", pathJoin, 64<<10 + 1},
	} {
		t.Run("declared "+tc.name, func(t *testing.T) {
			status, ctype, body := declareBody(t, h.addr, tc.method, tc.path, tc.length)
			if status < 400 || status > 499 {
				t.Errorf("status %d, want 4xx (body %q)", status, body)
			}
			r := rawReply{status: status, contentType: ctype, body: body}
			if err := fromWire(r.wire(t), status); !errors.Is(err, meta.ErrInvalid) {
				t.Errorf("error reads back as %v, want ErrInvalid", err)
			}
			h.alive(t)
		})
	}

	// Chunked (no Content-Length): the limit is enforced while reading.
	r := h.raw(t, "POST", pathApply, Token(testSecret), io.LimitReader(zeros{}, maxEntry+1))
	if r.status < 400 || r.status > 499 {
		t.Errorf("chunked apply of %d bytes: status %d, want 4xx", maxEntry+1, r.status)
	}
	if err := fromWire(r.wire(t), r.status); !errors.Is(err, meta.ErrInvalid) {
		t.Errorf("chunked apply: %v, want ErrInvalid", err)
	}
	if got := h.meta.applied(); len(got) != 0 {
		t.Errorf("oversized entries reached the meta service: %d of them", len(got))
	}
	if _, _, err := h.store.Stat(id); !errors.Is(err, chunkstore.ErrNotFound) {
		t.Errorf("an oversized body was stored: %v", err)
	}
	h.alive(t)
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// declareBody sends a request declaring a Content-Length of length and
// returns the reply. Of a large body it sends only a few bytes: the server
// must answer without waiting for the rest. A small body (under the 256 KiB
// net/http drains before replying) is sent whole.
func declareBody(t *testing.T, addr, method, path string, length int64) (int, string, []byte) {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, testIdentity().ClientConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	sent := int64(100)
	if length < 256<<10 {
		sent = length
	}
	req := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: %s\r\n%s: %s\r\nContent-Length: %d\r\n\r\n%s",
		method, path, addr, authHeader, Token(testSecret), length, strings.Repeat("x", int(sent)))
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%s %s with Content-Length %d: no reply: %v", method, path, length, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), b
}
