package admin

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/fsrep/fsrep/fs/chunkstore"
	"github.com/fsrep/fsrep/internal/admin/admintest"
	"github.com/fsrep/fsrep/meta"
	"github.com/fsrep/fsrep/replication"
)

var (
	_ Locator          = (*admintest.Backend)(nil)
	_ LeaderTransferer = (*admintest.Backend)(nil)
)

func ptr[T any](v T) *T { return &v }

// patch sends a raw body to PATCH path with the test token.
func patch(t *testing.T, srv *httptest.Server, path, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPatch, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, buf.Bytes()
}

func TestCreateVolumeWithQuota(t *testing.T) {
	_, srv := newTestServer(t, threeAZs...)
	status, data := call(t, srv, http.MethodPost, PathVolumes, testToken, CreateVolumeRequest{Name: "q", QuotaBytes: 1 << 30, QuotaFiles: 1000})
	if v := decode[meta.Volume](t, data); status != http.StatusCreated || v.QuotaBytes != 1<<30 || v.QuotaFiles != 1000 {
		t.Fatalf("create with quota: %d %s", status, data)
	}
	status, data = call(t, srv, http.MethodPost, PathVolumes, testToken, CreateVolumeRequest{Name: "neg", QuotaBytes: -1})
	wantError(t, status, data, http.StatusBadRequest, CodeInvalid)
	// Without a quota the fields are there, as 0.
	status, data = call(t, srv, http.MethodPost, PathVolumes, testToken, CreateVolumeRequest{Name: "free"})
	if status != http.StatusCreated || !strings.Contains(string(data), `"quota_bytes": 0`) {
		t.Fatalf("create without quota: %d %s", status, data)
	}
}

func TestSetVolume(t *testing.T) {
	b, srv := newTestServer(t, threeAZs...)
	if status, data := call(t, srv, http.MethodPost, PathVolumes, testToken, CreateVolumeRequest{Name: "v"}); status != http.StatusCreated {
		t.Fatalf("create: %d %s", status, data)
	}
	path := PathVolumes + "/v"

	status, data := patch(t, srv, path, `{"quota_bytes": 1073741824, "quota_files": 50}`)
	if v := decode[meta.Volume](t, data); status != http.StatusOK || v.QuotaBytes != 1<<30 || v.QuotaFiles != 50 || v.Replicas != 3 {
		t.Fatalf("set quotas: %d %s", status, data)
	}
	// Replicas alone: the quorum becomes a majority of the new count.
	status, data = patch(t, srv, path, `{"replicas": 5}`)
	if v := decode[meta.Volume](t, data); status != http.StatusOK || v.Replicas != 5 || v.WriteQuorum != 3 || v.QuotaBytes != 1<<30 {
		t.Fatalf("set replicas: %d %s", status, data)
	}
	status, data = patch(t, srv, path, `{"replicas": 3, "write_quorum": 2}`)
	if v := decode[meta.Volume](t, data); status != http.StatusOK || v.Replicas != 3 || v.WriteQuorum != 2 {
		t.Fatalf("set replicas and quorum: %d %s", status, data)
	}
	// Quorum alone, against the current count.
	status, data = patch(t, srv, path, `{"write_quorum": 6}`)
	wantError(t, status, data, http.StatusBadRequest, CodeInvalid)
	// The export, whole; 0 removes a quota.
	status, data = patch(t, srv, path, `{"quota_bytes": 0, "export": {"read_only": true, "squash": "all_squash", "anon_uid": 9, "anon_gid": 9}}`)
	if v := decode[meta.Volume](t, data); status != http.StatusOK || v.QuotaBytes != 0 || v.QuotaFiles != 50 || !v.Export.ReadOnly || v.Export.Squash != meta.SquashAll {
		t.Fatalf("set export: %d %s", status, data)
	}

	// Refusals leave the volume as it was.
	before, _ := b.FSM().Volume("v")
	for _, c := range []struct {
		body   string
		status int
		code   string
	}{
		{`{}`, http.StatusBadRequest, CodeInvalid},
		{``, http.StatusBadRequest, CodeInvalid},
		{`{"replica": 3}`, http.StatusBadRequest, CodeInvalid},
		{`{"quota_bytes": -1}`, http.StatusBadRequest, CodeInvalid},
		{`{"quota_files": -1}`, http.StatusBadRequest, CodeInvalid},
		{`{"replicas": 0}`, http.StatusBadRequest, CodeInvalid},
		{`{"export": {"squash": "maybe"}}`, http.StatusBadRequest, CodeInvalid},
		{`{"export": {"squash": "root_squash", "bogus": 1}}`, http.StatusBadRequest, CodeInvalid},
	} {
		status, data := patch(t, srv, path, c.body)
		wantError(t, status, data, c.status, c.code)
	}
	status, data = patch(t, srv, PathVolumes+"/nope", `{"replicas": 3}`)
	wantError(t, status, data, http.StatusNotFound, CodeNotFound)
	status, data = patch(t, srv, PathVolumes+"/bad%20name", `{"replicas": 3}`)
	wantError(t, status, data, http.StatusBadRequest, CodeInvalid)
	if after, _ := b.FSM().Volume("v"); !reflect.DeepEqual(after, before) {
		t.Fatalf("a refused change changed the volume: %+v -> %+v", before, after)
	}
}

func TestSetVolumeUnsafePlacement(t *testing.T) {
	_, srv := newTestServer(t, meta.NodeInfo{ID: "n1", AZ: "az1"}, meta.NodeInfo{ID: "n2", AZ: "az2"})
	if status, data := call(t, srv, http.MethodPost, PathVolumes, testToken,
		CreateVolumeRequest{Name: "v", Replicas: 2, WriteQuorum: 1}); status != http.StatusCreated {
		t.Fatalf("create: %d %s", status, data)
	}
	// 3 replicas with a quorum of 2 over 2 AZs stop writing when one goes.
	status, data := patch(t, srv, PathVolumes+"/v", `{"replicas": 3}`)
	wantError(t, status, data, http.StatusConflict, CodeUnsafePlacement)
	status, data = patch(t, srv, PathVolumes+"/v", `{"write_quorum": 2}`)
	wantError(t, status, data, http.StatusConflict, CodeUnsafePlacement)
	status, data = patch(t, srv, PathVolumes+"/v", `{"replicas": 3, "allow_unsafe_placement": true}`)
	if v := decode[meta.Volume](t, data); status != http.StatusOK || v.Replicas != 3 || v.WriteQuorum != 2 {
		t.Fatalf("unsafe set allowed: %d %s", status, data)
	}
	// Quotas alone are not a placement question.
	status, data = patch(t, srv, PathVolumes+"/v", `{"quota_files": 10}`)
	if status != http.StatusOK {
		t.Fatalf("quota on an unsafe volume: %d %s", status, data)
	}
}

// locateFixture is a volume with one directory and a file of three chunks
// (0, 1 and 3: a hole at 2) on n1..n3.
func locateFixture(t *testing.T, b *admintest.Backend) (vol uint32, file *meta.Inode) {
	t.Helper()
	ctx := t.Context()
	propose := func(cmd meta.Command) *meta.Result {
		t.Helper()
		res, err := b.Propose(ctx, cmd)
		if err == nil {
			err = res.Err()
		}
		if err != nil {
			t.Fatalf("%s: %v", cmd.Type(), err)
		}
		return res
	}
	v := propose(&meta.CreateVolume{Name: "data", Replicas: 3, WriteQuorum: 2, ChunkSize: meta.MinChunkSize, RootMode: 0o755}).Volume
	d := propose(&meta.Create{Vol: v.ID, Parent: meta.RootIno, Name: "dir", Kind: meta.TypeDir, Mode: 0o755}).Inode
	f := propose(&meta.Create{Vol: v.ID, Parent: d.Ino, Name: "file", Kind: meta.TypeFile, Mode: 0o644}).Inode
	cs := uint64(meta.MinChunkSize)
	for _, idx := range []uint64{0, 1, 3} {
		propose(&meta.CommitWrite{Vol: v.ID, Ino: f.Ino, Size: idx*cs + 100, Chunks: []meta.ChunkWrite{
			{Index: idx, Version: 5, Length: 100, Replicas: []string{"n1", "n2", "n3"}}}})
	}
	f, err := b.FSM().Inode(v.ID, f.Ino)
	if err != nil {
		t.Fatal(err)
	}
	return v.ID, f
}

func locate(t *testing.T, srv *httptest.Server, query string) LocateResponse {
	t.Helper()
	status, data := call(t, srv, http.MethodGet, PathVolumes+"/data/locate?"+query, testToken, nil)
	if status != http.StatusOK {
		t.Fatalf("locate %s: %d %s", query, status, data)
	}
	return decode[LocateResponse](t, data)
}

func TestLocate(t *testing.T) {
	b, srv := newTestServer(t, threeAZs...)
	vol, f := locateFixture(t, b)
	id := func(idx uint64) chunkstore.ID { return replication.ChunkID(vol, f.Ino, idx) }
	b.SetReplicaAnswer("n2", id(0), chunkstore.Info{Version: 4, Length: 90}, nil)
	b.SetReplicaAnswer("n3", id(0), chunkstore.Info{}, errors.New("rpc: n3: connection refused"))
	b.SetReplicaAnswer("n1", id(1), chunkstore.Info{}, chunkstore.ErrCorrupt)
	b.SetReplicaAnswer("n2", id(1), chunkstore.Info{}, chunkstore.ErrNotFound)
	b.SetReplicaAnswer("n3", id(1), chunkstore.Info{Version: 6, Length: 100}, nil)

	loc := locate(t, srv, "path=/dir/file")
	if loc.Volume != "data" || loc.Path != "/dir/file" || loc.Type != "file" || loc.Inode.Ino != f.Ino ||
		loc.Inode.Size != f.Size || loc.Replicas != 3 || !loc.Checked || loc.Verified || loc.Next != nil {
		t.Fatalf("locate: %+v", loc)
	}
	if len(loc.Chunks) != 3 || loc.Chunks[2].Index != 3 || loc.Chunks[2].Offset != 3*meta.MinChunkSize {
		t.Fatalf("chunks %+v", loc.Chunks)
	}
	states := func(ch ChunkLocation) string {
		var s []string
		for _, r := range ch.Replicas {
			s = append(s, r.Node+"@"+r.AZ+"="+r.State)
		}
		return strings.Join(s, " ")
	}
	for i, want := range []string{
		"n1@az1=ok n2@az2=stale n3@az3=error",
		"n1@az1=corrupt n2@az2=missing n3@az3=ahead",
		"n1@az1=ok n2@az2=ok n3@az3=ok",
	} {
		if got := states(loc.Chunks[i]); got != want {
			t.Errorf("chunk %d: %s, want %s", loc.Chunks[i].Index, got, want)
		}
	}
	if ok := []int{loc.Chunks[0].OK, loc.Chunks[1].OK, loc.Chunks[2].OK}; ok[0] != 1 || ok[1] != 0 || ok[2] != 3 {
		t.Errorf("ok counts %v", ok)
	}
	if r := loc.Chunks[0].Replicas[1]; r.Version != 4 || r.Length != 90 {
		t.Errorf("stale replica %+v", r)
	}
	if r := loc.Chunks[0].Replicas[2]; !strings.Contains(r.Error, "connection refused") {
		t.Errorf("unreachable replica %+v", r)
	}

	// Paths resolve like an NFS client's; pages; no check; verify.
	loc = locate(t, srv, "path=dir/./../dir//file&check=0&from=1&limit=1")
	if loc.Path != "/dir/../dir/file" || loc.Checked || len(loc.Chunks) != 1 || loc.Chunks[0].Index != 1 ||
		loc.Next == nil || *loc.Next != 3 || loc.Chunks[0].Replicas[0].State != ReplicaUnchecked {
		t.Fatalf("paged, unchecked: %+v", loc)
	}
	loc = locate(t, srv, "path=/dir/file&verify=1&from=3")
	if !loc.Verified || !loc.Checked || len(loc.Chunks) != 1 || loc.Chunks[0].OK != 3 || b.Verifies() != 3 {
		t.Fatalf("verify: %+v (verifies %d)", loc, b.Verifies())
	}
	loc = locate(t, srv, "path=/dir")
	if loc.Type != "dir" || len(loc.Chunks) != 0 {
		t.Fatalf("a directory: %+v", loc)
	}
	loc = locate(t, srv, "path=")
	if loc.Inode.Ino != meta.RootIno || loc.Path != "/" {
		t.Fatalf("the root: %+v", loc)
	}

	for _, c := range []struct {
		path   string
		status int
		code   string
	}{
		{"/data/locate?path=/nope", http.StatusNotFound, CodeNotFound},
		{"/data/locate?path=/dir/file/below", http.StatusNotFound, CodeNotFound},
		{"/nope/locate?path=/", http.StatusNotFound, CodeNotFound},
		{"/data/locate?path=/&check=maybe", http.StatusBadRequest, CodeInvalid},
		{"/data/locate?path=/&limit=0", http.StatusBadRequest, CodeInvalid},
		{"/data/locate?path=/&limit=100000", http.StatusBadRequest, CodeInvalid},
		{"/data/locate?path=/&from=-1", http.StatusBadRequest, CodeInvalid},
	} {
		status, data := call(t, srv, http.MethodGet, PathVolumes+c.path, testToken, nil)
		wantError(t, status, data, c.status, c.code)
	}

	// A node without replica checks still locates, unchecked.
	plain := httptest.NewServer(NewServer(plainBackend{b}, testToken, testLogger(t)))
	defer plain.Close()
	loc = locate(t, plain, "path=/dir/file&check=0")
	if len(loc.Chunks) != 3 || loc.Checked {
		t.Fatalf("plain, unchecked: %+v", loc)
	}
	status, data := call(t, plain, http.MethodGet, PathVolumes+"/data/locate?path=/dir/file", testToken, nil)
	wantError(t, status, data, http.StatusNotImplemented, CodeNotImplemented)
}

func TestLeaderTransfer(t *testing.T) {
	bs, srvs := newPeers(t, 3)
	// Through a follower: forwarded to the leader, which hands over.
	status, data := call(t, srvs[1], http.MethodPost, PathLeaderTransfer, testToken, TransferRequest{Node: "n3"})
	if tr := decode[TransferResponse](t, data); status != http.StatusOK || tr.Previous != "n1" || tr.Leader != "n3" || tr.Term != 2 {
		t.Fatalf("transfer through a follower: %d %s", status, data)
	}
	if got := bs[0].Transfers(); len(got) != 1 || got[0] != "n3" || len(bs[1].Transfers()) != 0 {
		t.Fatalf("transfers: leader %v, follower %v", got, bs[1].Transfers())
	}

	b, srv := newTestServer(t, threeAZs...)
	b.Register(t, meta.NodeInfo{ID: "n4", AZ: "az1"}, false)
	st := b.Status()
	st.NonVoters = []string{"n4"}
	b.SetStatus(st)
	// To itself: nothing to do.
	status, data = call(t, srv, http.MethodPost, PathLeaderTransfer, testToken, TransferRequest{Node: "n1"})
	if tr := decode[TransferResponse](t, data); status != http.StatusOK || tr.Leader != "n1" || len(b.Transfers()) != 0 {
		t.Fatalf("transfer to the leader: %d %s", status, data)
	}
	status, data = call(t, srv, http.MethodPost, PathLeaderTransfer, testToken, TransferRequest{Node: "n9"})
	wantError(t, status, data, http.StatusNotFound, CodeNotFound)
	status, data = call(t, srv, http.MethodPost, PathLeaderTransfer, testToken, TransferRequest{Node: "n4"})
	wantError(t, status, data, http.StatusBadRequest, CodeInvalid)
	status, data = call(t, srv, http.MethodPost, PathLeaderTransfer, testToken, map[string]string{"nodes": "n2"})
	wantError(t, status, data, http.StatusBadRequest, CodeInvalid)
	if len(b.Transfers()) != 0 {
		t.Fatalf("refused transfers happened: %v", b.Transfers())
	}
	// No body: any voter.
	status, data = call(t, srv, http.MethodPost, PathLeaderTransfer, testToken, nil)
	if tr := decode[TransferResponse](t, data); status != http.StatusOK || tr.Previous != "n1" || tr.Leader != "n2" {
		t.Fatalf("transfer to any voter: %d %s", status, data)
	}

	// A build that cannot transfer: 501 before anything is forwarded.
	plain := httptest.NewServer(NewServer(plainBackend{b}, testToken, testLogger(t)))
	defer plain.Close()
	status, data = call(t, plain, http.MethodPost, PathLeaderTransfer, testToken, TransferRequest{})
	wantError(t, status, data, http.StatusNotImplemented, CodeNotImplemented)
}

func TestSnapshot(t *testing.T) {
	b, srv := newTestServer(t, threeAZs...)
	for _, name := range []string{"alpha", "beta"} {
		if status, data := call(t, srv, http.MethodPost, PathVolumes, testToken, CreateVolumeRequest{Name: name}); status != http.StatusCreated {
			t.Fatalf("create: %d %s", status, data)
		}
	}
	cl := NewClient(srv.URL, testToken, 5*time.Second)
	var buf bytes.Buffer
	info, err := cl.Snapshot(t.Context(), &buf)
	if err != nil {
		t.Fatal(err)
	}
	if info.Node != "n1" || info.AppliedIndex != b.FSM().AppliedIndex() || info.Size != int64(buf.Len()) || info.Size == 0 {
		t.Fatalf("snapshot info %+v (%d bytes, applied %d)", info, buf.Len(), b.FSM().AppliedIndex())
	}
	// The body is a bbolt file holding the volumes.
	path := filepath.Join(t.TempDir(), "meta.db")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var names []string
	err = db.View(func(tx *bolt.Tx) error {
		vb := tx.Bucket([]byte("volumes"))
		if vb == nil {
			return errors.New("no volumes bucket")
		}
		return vb.ForEach(func(k, _ []byte) error { names = append(names, string(k)); return nil })
	})
	if err != nil || strings.Join(names, ",") != "alpha,beta" {
		t.Fatalf("volumes in the snapshot: %v %v", names, err)
	}

	// The token is required.
	_, err = NewClient(srv.URL, "wrong", time.Second).Snapshot(t.Context(), &buf)
	if !IsCode(err, CodeUnauthorized) {
		t.Fatalf("snapshot with a wrong token: %v", err)
	}
}
