package node

import (
	"bufio"
	"bytes"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
)

// syncBuffer is a bytes.Buffer safe for the node's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestLogLinesCarryNodeAndAZ: every line a node logs, whatever component
// logs it (Raft's bridge included), names the node and its AZ.
func TestLogLinesCarryNodeAndAZ(t *testing.T) {
	var buf syncBuffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg := Config{NodeID: "n1", AZ: "az1", DataDir: filepath.Join(t.TempDir(), "d"), Bootstrap: true,
		RaftAddr: "127.0.0.1:0", RPCAddr: "127.0.0.1:0", NFSAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0",
		ChunkNoSync: true, ScrubRate: -1}
	n, err := Start(cfg, SystemClock{}, log)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "ready", n.Ready)
	n.Close()
	lines := 0
	sc := bufio.NewScanner(bytes.NewReader([]byte(buf.String())))
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("not a JSON line: %q", sc.Text())
		}
		if rec["node"] != "n1" || rec["az"] != "az1" {
			t.Errorf("line without node and AZ: %s", sc.Text())
		}
		lines++
	}
	if lines == 0 {
		t.Fatal("the node logged nothing at debug level")
	}
}
