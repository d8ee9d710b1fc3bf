package admin

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fsrep/fsrep/meta"
)

func TestClient(t *testing.T) {
	b, srv := newTestServer(t, threeAZs...)
	ctx := t.Context()
	// Both "host:port" and a URL work.
	c := NewClient(strings.TrimPrefix(srv.URL, "http://"), testToken, 5*time.Second)
	if c.Addr() != srv.URL {
		t.Fatalf("Addr %q, want %q", c.Addr(), srv.URL)
	}

	if err := c.Ready(ctx); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	v, err := c.CreateVolume(ctx, CreateVolumeRequest{Name: "vol1", Replicas: 3})
	if err != nil || v.Name != "vol1" || v.WriteQuorum != 2 {
		t.Fatalf("CreateVolume: %+v %v", v, err)
	}
	_, err = c.CreateVolume(ctx, CreateVolumeRequest{Name: "vol1"})
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusConflict || ae.Code != CodeExists || !IsCode(err, CodeExists) {
		t.Fatalf("duplicate CreateVolume: %#v", err)
	}
	vols, err := c.Volumes(ctx)
	if err != nil || len(vols) != 1 {
		t.Fatalf("Volumes: %+v %v", vols, err)
	}
	if v, err := c.Volume(ctx, "vol1"); err != nil || v.ID != vols[0].ID {
		t.Fatalf("Volume: %+v %v", v, err)
	}
	if _, err := c.Volume(ctx, "nope"); !IsCode(err, CodeNotFound) {
		t.Fatalf("Volume(nope): %v", err)
	}
	nodes, err := c.Nodes(ctx)
	if err != nil || len(nodes) != 3 {
		t.Fatalf("Nodes: %+v %v", nodes, err)
	}
	st, err := c.Status(ctx)
	if err != nil || st.Health != HealthOK || len(st.Volumes) != 1 {
		t.Fatalf("Status: %+v %v", st, err)
	}
	if v, err := c.DeleteVolume(ctx, "vol1"); err != nil || v.Name != "vol1" {
		t.Fatalf("DeleteVolume: %+v %v", v, err)
	}

	b.SetReady(errors.New("not registered yet"))
	err = c.Ready(ctx)
	if !errors.As(err, &ae) || ae.Code != CodeNotReady || !strings.Contains(ae.Message, "not registered yet") {
		t.Fatalf("Ready when not ready: %#v", err)
	}

	// Ready needs no token; everything else does.
	anon := NewClient(srv.URL, "", time.Second)
	if err := anon.Ready(ctx); !IsCode(err, CodeNotReady) {
		t.Fatalf("anonymous Ready: %v", err)
	}
	if _, err := anon.Status(ctx); !IsCode(err, CodeUnauthorized) {
		t.Fatalf("anonymous Status: %v", err)
	}
}

func TestClientExport(t *testing.T) {
	_, srv := newTestServer(t, threeAZs...)
	ctx := t.Context()
	c := NewClient(srv.URL, testToken, 5*time.Second)
	ro := meta.Export{ReadOnly: true, Squash: meta.SquashAll, AnonUID: 7, AnonGID: 8}
	v, err := c.CreateVolume(ctx, CreateVolumeRequest{Name: "ro", Export: &ro})
	if err != nil || !reflect.DeepEqual(v.Export, ro) {
		t.Fatalf("CreateVolume with export: %+v %v", v, err)
	}
	if _, err := c.CreateVolume(ctx, CreateVolumeRequest{Name: "rw"}); err != nil {
		t.Fatal(err)
	}

	e, err := c.Export(ctx, "rw")
	if err != nil || !reflect.DeepEqual(*e, meta.DefaultExport()) {
		t.Fatalf("Export: %+v %v", e, err)
	}
	e.Clients = []string{"10.0.0.0/8"}
	got, err := c.SetExport(ctx, "rw", *e)
	if err != nil || !reflect.DeepEqual(got, e) {
		t.Fatalf("SetExport: %+v %v", got, err)
	}
	if e2, err := c.Export(ctx, "rw"); err != nil || !reflect.DeepEqual(e2, e) {
		t.Fatalf("Export after SetExport: %+v %v", e2, err)
	}
	if e2, err := c.Export(ctx, "ro"); err != nil || !reflect.DeepEqual(*e2, ro) {
		t.Fatalf("Export(ro): %+v %v", e2, err)
	}

	if _, err := c.Export(ctx, "nope"); !IsCode(err, CodeNotFound) {
		t.Fatalf("Export(nope): %v", err)
	}
	if _, err := c.SetExport(ctx, "nope", meta.DefaultExport()); !IsCode(err, CodeNotFound) {
		t.Fatalf("SetExport(nope): %v", err)
	}
	if _, err := c.SetExport(ctx, "rw", meta.Export{Squash: "bogus"}); !IsCode(err, CodeInvalid) {
		t.Fatalf("SetExport with a bad squash: %v", err)
	}
}

func TestClientUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c := NewClient(addr, "t", 2*time.Second)
	if err := c.Ready(t.Context()); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("Ready on a closed port: %v", err)
	}
	if _, err := c.Volumes(t.Context()); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("Volumes on a closed port: %v", err)
	}
}

func TestClientForeignServer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "bad gateway", http.StatusBadGateway)
	}))
	defer srv.Close()
	c := NewClient(srv.URL, "t", time.Second)
	_, err := c.Nodes(t.Context())
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusBadGateway || ae.Code != CodeInternal || !strings.Contains(ae.Message, "bad gateway") {
		t.Fatalf("non-JSON error: %#v", err)
	}
	if err := c.Ready(t.Context()); !IsCode(err, CodeInternal) {
		t.Fatalf("Ready on a foreign server: %v", err)
	}
}

func TestFileModeJSON(t *testing.T) {
	m := FileMode(0o755)
	b, err := m.MarshalJSON()
	if err != nil || string(b) != `"0755"` {
		t.Fatalf("marshal: %s %v", b, err)
	}
	for in, want := range map[string]FileMode{`"0755"`: 0o755, `"755"`: 0o755, `"0o1777"`: 0o1777, `493`: 0o755, `0`: 0} {
		var got FileMode
		if err := got.UnmarshalJSON([]byte(in)); err != nil || got != want {
			t.Errorf("unmarshal %s = %o, %v; want %o", in, got, err, want)
		}
	}
	for _, in := range []string{`"9"`, `"rwx"`, `-1`, `4096`, `"10000"`, `true`} {
		var got FileMode
		if err := got.UnmarshalJSON([]byte(in)); err == nil {
			t.Errorf("unmarshal %s = %o, want an error", in, got)
		}
	}
}
