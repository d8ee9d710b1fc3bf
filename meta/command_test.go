package meta

import (
	"bytes"
	"errors"
	"fmt"
	iofs "io/fs"
	"reflect"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// sampleCommands has one filled-in value of every command type.
func sampleCommands() []Command {
	h := Header{RequestID: "rid-1", Time: testTime}
	return []Command{
		&RegisterNode{Header: h, Node: NodeInfo{ID: "n1", AZ: "az1", Region: "r", RaftAddr: "a:1", RPCAddr: "a:2",
			NFSAddr: "a:3", AdminAddr: "a:4", Voter: true, Joined: 5}},
		&CreateVolume{Header: h, Name: "v", Replicas: 3, WriteQuorum: 2, ChunkSize: cs, RootMode: 0o755, RootUID: 1, RootGID: 2},
		&DeleteVolume{Header: h, Name: "v"},
		&Create{Header: h, Vol: 1, Parent: 1, Name: "n", Kind: TypeSymlink, Mode: 0o777, UID: 3, GID: 4, Target: "t"},
		&Remove{Header: h, Vol: 1, Parent: 1, Name: "n", Dir: true},
		&Rename{Header: h, Vol: 1, SrcParent: 1, SrcName: "a", DstParent: 2, DstName: "b"},
		&Link{Header: h, Vol: 1, Ino: 3, Parent: 1, Name: "l"},
		&SetAttr{Header: h, Vol: 1, Ino: 3, Mode: ptr[uint32](0o600), UID: ptr[uint32](0), GID: ptr[uint32](9),
			Size: ptr[uint64](1 << 40), Atime: ptr[int64](-1), Mtime: ptr[int64](7)},
		&CommitWrite{Header: h, Vol: 1, Ino: 3, Size: 99, Chunks: []ChunkWrite{
			{Index: 0, BaseVersion: 1, Version: 2, Length: 99, Replicas: []string{"n1", "n2"}}}},
		&GCDone{Header: h, Keys: []GarbageKey{{Vol: 1, Ino: 2, Index: 3, Version: 4}}},
		&SetExport{Header: h, Name: "v", Export: Export{ReadOnly: true, Clients: []string{"10.0.0.0/8"}, Squash: SquashAll, AnonUID: 99, AnonGID: 98}},
		&SetReplicas{Header: h, Vol: 3, Ino: 9, Index: 2, Version: 5, Replicas: []string{"n1", "n4"}, From: []string{"n1", "n2"}},
		&SetNodeState{Header: h, ID: "n2", Draining: true},
		&RemoveNode{Header: h, ID: "n2"},
		&SetVolume{Header: h, Name: "v", Replicas: ptr(5), WriteQuorum: ptr(3), QuotaBytes: ptr[int64](1 << 30),
			QuotaFiles: ptr[int64](0), Export: &Export{ReadOnly: true, Squash: SquashNone}},
		&RotateToken{Header: h, Gen: 2, Grace: int64(time.Hour)},
		&RotateHandleKey{Header: h, Gen: 3, Grace: int64(24 * time.Hour)},
		&WriteInline{Header: h, Vol: 1, Ino: 5, Off: 10, Data: []byte("small file")},
	}
}

// TestCommandTypesAreStable pins the numbers written into every log entry:
// they are part of the on-disk format and may never change.
func TestCommandTypesAreStable(t *testing.T) {
	want := map[CommandType]Command{
		1: &RegisterNode{}, 2: &CreateVolume{}, 3: &DeleteVolume{}, 4: &Create{}, 5: &Remove{},
		6: &Rename{}, 7: &Link{}, 8: &SetAttr{}, 9: &CommitWrite{}, 10: &GCDone{}, 11: &SetExport{},
		12: &SetReplicas{}, 13: &SetNodeState{}, 14: &RemoveNode{}, 15: &SetVolume{}, 16: &RotateToken{},
		17: &WriteInline{}, 18: &RotateHandleKey{},
	}
	for num, c := range want {
		if c.Type() != num {
			t.Errorf("%T has type %d, want %d", c, c.Type(), num)
		}
		if got := newCommand(num); reflect.TypeOf(got) != reflect.TypeOf(c) {
			t.Errorf("newCommand(%d) = %T, want %T", num, got, c)
		}
	}
	if len(sampleCommands()) != len(want) {
		t.Errorf("sampleCommands does not cover every command type")
	}
	for _, num := range []CommandType{0, 19, 255} {
		if newCommand(num) != nil {
			t.Errorf("newCommand(%d) is not nil", num)
		}
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	for _, c := range sampleCommands() {
		b, err := EncodeCommand(c)
		if err != nil {
			t.Fatalf("encode %s: %v", c.Type(), err)
		}
		if b[0] != byte(c.Type()) || b[1] != 1 {
			t.Fatalf("%s entry starts %x, want type %d and format 1", c.Type(), b[:2], c.Type())
		}
		got, err := DecodeCommand(b)
		if err != nil {
			t.Fatalf("decode %s: %v", c.Type(), err)
		}
		if !reflect.DeepEqual(got, c) {
			t.Errorf("%s round trip: got %+v, want %+v", c.Type(), got, c)
		}
	}
}

func TestDecodeCommandErrors(t *testing.T) {
	valid, err := EncodeCommand(&Create{Vol: 1, Parent: 1, Name: "x", Kind: TypeFile})
	if err != nil {
		t.Fatal(err)
	}
	unknown := []struct {
		name  string
		entry []byte
	}{
		{"type 0", append([]byte{0, 1}, valid[2:]...)},
		{"type 19", append([]byte{19, 1}, valid[2:]...)},
		{"type 255", []byte{255, 1, '{', '}'}},
		{"format 0", append([]byte{byte(CmdCreate), 0}, valid[2:]...)},
		{"newer format", append([]byte{byte(CmdCreate), commandFormat + 1}, valid[2:]...)},
	}
	for _, c := range unknown {
		if _, err := DecodeCommand(c.entry); !errors.Is(err, ErrUnknownCommand) {
			t.Errorf("%s: err = %v, want ErrUnknownCommand", c.name, err)
		}
	}
	broken := []struct {
		name  string
		entry []byte
	}{
		{"nil", nil},
		{"type only", []byte{byte(CmdCreate)}},
		{"no payload", []byte{byte(CmdCreate), 1}},
		{"truncated", valid[:len(valid)-3]},
		{"garbage", []byte{byte(CmdCreate), 1, 0xff, 0x00, 0x13}},
		{"wrong shape", []byte(string([]byte{byte(CmdCreate), 1}) + `{"name": 5}`)},
		{"trailing data", append(append([]byte{}, valid...), '}')},
	}
	for _, c := range broken {
		cmd, err := DecodeCommand(c.entry)
		if err == nil {
			t.Errorf("%s: decoded %+v, want an error", c.name, cmd)
		}
		if errors.Is(err, ErrUnknownCommand) {
			t.Errorf("%s: %v is not about an unknown command", c.name, err)
		}
	}
}

// TestApplyPanicsOnUnreadableEntry: an entry this build cannot decode must
// stop the node (a panic in the FSM goroutine) rather than be skipped, and
// must leave meta.db as it was, including the rest of its batch.
func TestApplyPanicsOnUnreadableEntry(t *testing.T) {
	h := newHarness(t)
	v := h.volume("v")
	for _, c := range []struct {
		name  string
		entry []byte
	}{
		{"unknown type", []byte{200, 1, '{', '}'}},
		{"newer format", []byte{byte(CmdCreate), commandFormat + 1, '{', '}'}},
		{"format 0", []byte{byte(CmdCreate), 0, '{', '}'}},
		{"truncated", []byte{byte(CmdCreate)}},
		{"garbage", []byte{byte(CmdCreate), 1, 'x'}},
	} {
		t.Run(c.name, func(t *testing.T) {
			h.t = t
			before := dumpDB(t, h.fsm)
			idx := h.fsm.AppliedIndex()
			next := idx + 1
			good := encode(t, next, &Create{Header: Header{Time: testTime}, Vol: v, Parent: RootIno, Name: "x", Kind: TypeFile})
			bad := &raft.Log{Index: next + 1, Term: 1, Type: raft.LogCommand, Data: c.entry}

			if msg := panics(func() { h.fsm.Apply(&raft.Log{Index: next, Term: 1, Type: raft.LogCommand, Data: c.entry}) }); msg == "" {
				t.Fatal("Apply of an unreadable entry did not panic")
			} else {
				t.Logf("panic: %s", msg)
			}
			if msg := panics(func() { h.fsm.ApplyBatch([]*raft.Log{good, bad}) }); msg == "" {
				t.Fatal("ApplyBatch with an unreadable entry did not panic")
			}
			if diff := diffDumps(before, dumpDB(t, h.fsm), nil); diff != "" {
				t.Fatalf("panicking apply changed meta.db:\n%s", diff)
			}
			if got := h.fsm.AppliedIndex(); got != idx {
				t.Fatalf("AppliedIndex moved to %d", got)
			}
			// The FSM is still usable (a restarted node would carry on here
			// once upgraded).
			h.next = next
			h.create(v, RootIno, "after-"+c.name, TypeFile)
		})
	}
}

// panics runs fn and returns its panic value as text ("" if it returned).
func panics(fn func()) (msg string) {
	defer func() {
		if r := recover(); r != nil {
			msg = fmt.Sprint(r)
			if msg == "" {
				msg = "(empty panic)"
			}
		}
	}()
	fn()
	return ""
}

func TestErrorCodes(t *testing.T) {
	all := []*CodedError{ErrNotExist, ErrExist, ErrNotEmpty, ErrNotDir, ErrIsDir, ErrInvalid,
		ErrNameTooLong, ErrConflict, ErrNoVolume, ErrVolumeExist, ErrNoLeader, ErrLoop}
	seen := map[Code]bool{}
	for _, e := range all {
		if seen[e.Code] || e.Code == CodeOK || e.Code == CodeInternal {
			t.Errorf("%v has a reused or reserved code %d", e, e.Code)
		}
		seen[e.Code] = true
		wrapped := fmt.Errorf("context: %w", e)
		if CodeOf(wrapped) != e.Code {
			t.Errorf("CodeOf(wrapped %v) = %d", e, CodeOf(wrapped))
		}
		for _, back := range []error{ErrorFor(e.Code, ""), ErrorFor(e.Code, e.Error()), ErrorFor(e.Code, "detail")} {
			if !errors.Is(back, e) || CodeOf(back) != e.Code {
				t.Errorf("ErrorFor(%d) = %v does not match %v", e.Code, back, e)
			}
		}
	}
	for _, c := range []struct {
		err    error
		target error
		want   bool
	}{
		{ErrNotExist, iofs.ErrNotExist, true},
		{ErrNoVolume, iofs.ErrNotExist, true},
		{ErrExist, iofs.ErrExist, true},
		{ErrVolumeExist, iofs.ErrExist, true},
		{ErrInvalid, iofs.ErrInvalid, true},
		{ErrLoop, iofs.ErrInvalid, true},
		{ErrNotEmpty, iofs.ErrExist, false},
		{ErrNoVolume, ErrNotExist, false},
		{ErrExist, iofs.ErrNotExist, false},
		{ErrorFor(CodeNotExist, "gone"), iofs.ErrNotExist, true},
	} {
		if got := errors.Is(c.err, c.target); got != c.want {
			t.Errorf("errors.Is(%v, %v) = %v, want %v", c.err, c.target, got, c.want)
		}
	}
	if CodeOf(nil) != CodeOK || ErrorFor(CodeOK, "x") != nil {
		t.Error("CodeOK does not round-trip to nil")
	}
	if CodeOf(errors.New("boom")) != CodeInternal {
		t.Error("a foreign error is not CodeInternal")
	}
	if err := ErrorFor(Code(999), "strange"); err == nil || err.Error() != "strange" {
		t.Errorf("ErrorFor(unknown code) = %v", err)
	}
	var r *Result
	if r.Err() != nil {
		t.Error("nil Result has an error")
	}
}

// FuzzDecodeCommand: DecodeCommand never panics, and whatever it accepts
// re-encodes to an entry that decodes to the same command.
func FuzzDecodeCommand(f *testing.F) {
	for _, c := range sampleCommands() {
		b, err := EncodeCommand(c)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{byte(CmdCreate)})
	f.Add([]byte{byte(CmdCreate), 1, '{', '}'})
	f.Add([]byte{byte(CmdSetAttr), 1, 'n', 'u', 'l', 'l'})
	f.Add([]byte{200, 1, '{', '}'})
	f.Fuzz(func(t *testing.T, entry []byte) {
		c, err := DecodeCommand(entry)
		if err != nil {
			if c != nil {
				t.Fatalf("DecodeCommand returned %+v with error %v", c, err)
			}
			return
		}
		if len(entry) < 2 || c.Type() != CommandType(entry[0]) || HeaderOf(c) == nil {
			t.Fatalf("decoded %T from an entry of type %d", c, entry[0])
		}
		again, err := EncodeCommand(c)
		if err != nil {
			t.Fatalf("re-encode %+v: %v", c, err)
		}
		c2, err := DecodeCommand(again)
		if err != nil {
			t.Fatalf("decode re-encoded %q: %v", again, err)
		}
		// The encoding is a fixed point after one round: what a node
		// re-encodes decodes to the same entry. (Decoding may turn an empty
		// list into nil; every command treats both alike.)
		again2, err := EncodeCommand(c2)
		if err != nil || !bytes.Equal(again, again2) {
			t.Fatalf("re-encoding changed the command: %+v -> %+v (%q -> %q, %v)", c, c2, again, again2, err)
		}
	})
}
