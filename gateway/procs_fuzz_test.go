package gateway

import (
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/fsrep/fsrep/fs/vfs"
	"github.com/fsrep/fsrep/internal/admin/admintest"
	"github.com/fsrep/fsrep/meta"
)

// fuzzMeta is a real FSM behind the metadata interface (no Raft: Propose
// applies directly), with failures returned as errors as meta.Node does.
type fuzzMeta struct{ b *admintest.Backend }

func (m fuzzMeta) Propose(ctx context.Context, cmd meta.Command) (*meta.Result, error) {
	res, err := m.b.Propose(ctx, cmd)
	if err != nil {
		return nil, err
	}
	return res, res.Err()
}
func (m fuzzMeta) CatchUp(context.Context) error { return nil }
func (m fuzzMeta) FSM() *meta.FSM                { return m.b.FSM() }

// sizeOnlyData records sizes and chunk versions but no bytes (reads are
// zeros): enough for the front and go-nfs to run every procedure.
type sizeOnlyData struct{ m fuzzMeta }

func (d sizeOnlyData) WriteAt(ctx context.Context, vol *meta.Volume, ino uint64, off int64, data []byte) (*meta.Inode, error) {
	if off < 0 || off > 1<<40 {
		return nil, meta.ErrInvalid
	}
	idx := uint64(off / vol.ChunkSize)
	w := meta.ChunkWrite{Index: idx, Version: 1, Replicas: []string{"n1"}, Length: min(vol.ChunkSize, off%vol.ChunkSize+int64(len(data)))}
	if ch, ok, _ := d.m.FSM().Chunk(vol.ID, ino, idx); ok {
		w.BaseVersion, w.Version, w.Length = ch.Version, ch.Version+1, max(ch.Length, w.Length)
	}
	res, err := d.m.Propose(ctx, &meta.CommitWrite{Vol: vol.ID, Ino: ino, Size: uint64(off) + uint64(len(data)), Chunks: []meta.ChunkWrite{w}})
	if err != nil {
		return nil, err
	}
	return res.Inode, nil
}

func (d sizeOnlyData) ReadAt(_ context.Context, _ *meta.Volume, _ uint64, size uint64, off int64, buf []byte) (int, error) {
	if off < 0 || uint64(off) >= size {
		return 0, nil
	}
	n := min(uint64(len(buf)), size-uint64(off))
	clear(buf[:n])
	return int(n), nil
}

func (d sizeOnlyData) Truncate(ctx context.Context, vol *meta.Volume, ino uint64, size uint64) (*meta.Inode, error) {
	res, err := d.m.Propose(ctx, &meta.SetAttr{Vol: vol.ID, Ino: ino, Size: &size})
	if err != nil {
		return nil, err
	}
	return res.Inode, nil
}

type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

// newFuzzServer serves volume "v" (root 01777, one file "f") on loopback.
func newFuzzServer(t testing.TB) (addr string, root, file []byte) {
	return newTestServer(t, DefaultFrontConfig())
}

// newTestServer is newFuzzServer with a front configuration.
func newTestServer(t testing.TB, cfg FrontConfig) (addr string, root, file []byte) {
	s, root, file := newTestServerWith(t, cfg, func(m fuzzMeta) vfs.Data { return sizeOnlyData{m} })
	return s.Addr().String(), root, file
}

// newTestServerWith is newTestServer with the data paths data makes.
func newTestServerWith(t testing.TB, cfg FrontConfig, data func(fuzzMeta) vfs.Data) (s *Server, root, file []byte) {
	b := admintest.New(t)
	m := fuzzMeta{b}
	res, err := m.Propose(context.Background(), &meta.CreateVolume{Name: "v", Replicas: 1, WriteQuorum: 1,
		ChunkSize: meta.MinChunkSize, RootMode: 0o1777})
	if err != nil {
		t.Fatal(err)
	}
	vol := res.Volume
	f, err := m.Propose(context.Background(), &meta.Create{Vol: vol.ID, Parent: meta.RootIno, Name: "f", Kind: meta.TypeFile, Mode: 0o666})
	if err != nil {
		t.Fatal(err)
	}
	codec := NewHandleCodec([]byte("fuzz-secret-0123456789"))
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	h := NewHandler(Config{DataDir: t.TempDir(), OpTimeout: 2 * time.Second, StaleCheckTimeout: 100 * time.Millisecond},
		m, data(m), codec, wallClock{}, log)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s = Serve(l, h, cfg, [8]byte{1})
	t.Cleanup(func() { s.Close() })
	rootIno, _ := m.FSM().Inode(vol.ID, meta.RootIno)
	return s,
		codec.Encode(FileID{Vol: vol.ID, Ino: meta.RootIno, Gen: rootIno.Gen}),
		codec.Encode(FileID{Vol: vol.ID, Ino: f.Inode.Ino, Gen: f.Inode.Gen})
}

// FuzzProcedures sends every NFSv3 and MOUNTv3 procedure with fuzzed
// arguments (after a valid handle, or raw) to a real front and go-nfs over
// a socket. go-nfs recovers from no panic, so any panic in an argument
// decoder or a handler kills this test; every call must be answered or the
// connection closed, and the server must go on answering NULL.
func FuzzProcedures(f *testing.F) {
	addr, root, file := newFuzzServer(f)
	f.Add(uint8(1), uint8(1), []byte{})
	f.Add(uint8(3), uint8(1), []byte{0, 0, 0, 1, 'f', 0, 0, 0})
	f.Add(uint8(7), uint8(2), []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 2, 0, 0, 0, 4, 'a', 'b', 'c', 'd'})
	f.Add(uint8(8), uint8(1), []byte{0, 0, 0, 1, 'n', 0, 0, 0, 0, 0, 0, 2, 1, 2, 3, 4, 5, 6, 7, 8})
	f.Add(uint8(15), uint8(2), []byte{})
	f.Add(uint8(17), uint8(1), []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x20, 0, 0, 0, 0x20, 0})
	f.Add(uint8(101), uint8(0), []byte("/v"))
	f.Fuzz(func(t *testing.T, proc, handle uint8, args []byte) {
		prog, vers := uint32(100003), uint32(3)
		p := uint32(proc % 22)
		if proc >= 100 { // MOUNT
			prog, p = 100005, uint32(proc%6)
		}
		var body []byte
		switch handle % 3 {
		case 1:
			body = binary.BigEndian.AppendUint32(body, uint32(len(root)))
			body = append(body, root...)
		case 2:
			body = binary.BigEndian.AppendUint32(body, uint32(len(file)))
			body = append(body, file...)
		}
		body = append(body, args...)
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		call := &replyWriter{}
		for _, v := range []uint32{0xf00d, rpcCall, 2, prog, vers, p, authNone, 0, authNone, 0} {
			call.u32(v)
		}
		call.b = append(call.b, body...)
		if _, err := conn.Write(frame(call.b)); err != nil {
			return // the server closed the connection: allowed
		}
		var hdr [4]byte
		if _, err := io.ReadFull(conn, hdr[:]); err == nil {
			n := binary.BigEndian.Uint32(hdr[:]) &^ (1 << 31)
			if n > maxReply {
				t.Fatalf("reply of %d bytes", n)
			}
			if _, err := io.ReadFull(conn, make([]byte, n)); err != nil {
				t.Fatalf("truncated reply: %v", err)
			}
		} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("procedure %d.%d got no reply and no close", prog, p)
		}
		// The server still answers.
		c2, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("server gone: %v", err)
		}
		defer c2.Close()
		c2.SetDeadline(time.Now().Add(10 * time.Second))
		null := &replyWriter{}
		for _, v := range []uint32{0xbeef, rpcCall, 2, 100003, 3, 0, authNone, 0, authNone, 0} {
			null.u32(v)
		}
		if _, err := c2.Write(frame(null.b)); err != nil {
			t.Fatal(err)
		}
		if _, err := readRecord(c2, maxReply); err != nil {
			t.Fatalf("NULL after the fuzzed call: %v", err)
		}
	})
}
