package admin

import (
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/fsrep/fsrep/meta"
)

func exportPath(name string) string { return PathVolumes + "/" + name + exportSuffix }

// put sends a raw body with the test token.
func put(t *testing.T, srv *httptest.Server, path, body string, header ...string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPut, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, data
}

func TestExportGetAndSet(t *testing.T) {
	b, srv := newTestServer(t, threeAZs...)
	if status, data := call(t, srv, http.MethodPost, PathVolumes, testToken, CreateVolumeRequest{Name: "data"}); status != http.StatusCreated {
		t.Fatalf("create: %d %s", status, data)
	}

	// A new volume has the default export, also inside the volume object.
	status, data := call(t, srv, http.MethodGet, exportPath("data"), testToken, nil)
	if status != http.StatusOK || !reflect.DeepEqual(decode[meta.Export](t, data), meta.DefaultExport()) {
		t.Fatalf("default export: %d %s", status, data)
	}
	_, data = call(t, srv, http.MethodGet, PathVolumes+"/data", testToken, nil)
	if v := decode[meta.Volume](t, data); !reflect.DeepEqual(v.Export, meta.DefaultExport()) {
		t.Fatalf("volume object export: %+v", v.Export)
	}

	want := meta.Export{ReadOnly: true, Clients: []string{"10.0.0.0/8", "192.168.1.0/24"}, Squash: meta.SquashAll, AnonUID: 1000, AnonGID: 100}
	status, data = call(t, srv, http.MethodPut, exportPath("data"), testToken, want)
	if status != http.StatusOK || !reflect.DeepEqual(decode[meta.Export](t, data), want) {
		t.Fatalf("set export: %d %s", status, data)
	}
	// Stored in the FSM, and read back through the API.
	if v, err := b.FSM().Volume("data"); err != nil || !reflect.DeepEqual(v.Export, want) {
		t.Fatalf("FSM export after set: %+v %v", v, err)
	}
	status, data = call(t, srv, http.MethodGet, exportPath("data"), testToken, nil)
	if status != http.StatusOK || !reflect.DeepEqual(decode[meta.Export](t, data), want) {
		t.Fatalf("export after set: %d %s", status, data)
	}

	// The body is the whole export: what is left out becomes its zero value.
	status, data = put(t, srv, exportPath("data"), `{"squash":"no_root_squash"}`)
	got := decode[meta.Export](t, data)
	if status != http.StatusOK || !reflect.DeepEqual(got, meta.Export{Squash: meta.SquashNone}) {
		t.Fatalf("partial body: %d %s", status, data)
	}

	// An X-Request-ID makes a retry answer as the first call did, not apply again.
	first := meta.Export{Squash: meta.SquashRoot, AnonUID: 1, AnonGID: 1}
	body := `{"squash":"root_squash","anon_uid":1,"anon_gid":1}`
	s1, d1 := put(t, srv, exportPath("data"), body, RequestIDHeader, "exp-1")
	if _, err := b.Propose(t.Context(), &meta.SetExport{Name: "data", Export: meta.DefaultExport()}); err != nil {
		t.Fatal(err)
	}
	s2, d2 := put(t, srv, exportPath("data"), body, RequestIDHeader, "exp-1")
	if s1 != http.StatusOK || s2 != http.StatusOK || string(d1) != string(d2) || !reflect.DeepEqual(decode[meta.Export](t, d2), first) {
		t.Fatalf("retried set: %d %s / %d %s", s1, d1, s2, d2)
	}
	if v, _ := b.FSM().Volume("data"); !reflect.DeepEqual(v.Export, meta.DefaultExport()) {
		t.Fatalf("a retry was applied again: %+v", v.Export)
	}
}

func TestExportErrors(t *testing.T) {
	b, srv := newTestServer(t, threeAZs...)
	if status, data := call(t, srv, http.MethodPost, PathVolumes, testToken, CreateVolumeRequest{Name: "data"}); status != http.StatusCreated {
		t.Fatalf("create: %d %s", status, data)
	}
	ok := meta.DefaultExport()

	status, data := call(t, srv, http.MethodGet, exportPath("nope"), testToken, nil)
	wantError(t, status, data, http.StatusNotFound, CodeNotFound)
	status, data = call(t, srv, http.MethodPut, exportPath("nope"), testToken, ok)
	wantError(t, status, data, http.StatusNotFound, CodeNotFound)
	status, data = call(t, srv, http.MethodGet, exportPath(".bad"), testToken, nil)
	wantError(t, status, data, http.StatusBadRequest, CodeInvalid)
	status, data = call(t, srv, http.MethodPut, exportPath("a%20b"), testToken, ok)
	wantError(t, status, data, http.StatusBadRequest, CodeInvalid)

	for _, e := range []meta.Export{
		{},
		{Squash: "squash_everything"},
		{Squash: meta.SquashRoot, Clients: []string{"10.0.0.1"}},
		{Squash: meta.SquashRoot, Clients: []string{"*"}},
		{Squash: meta.SquashRoot, Clients: make([]string, 65)},
	} {
		status, data := call(t, srv, http.MethodPut, exportPath("data"), testToken, e)
		wantError(t, status, data, http.StatusBadRequest, CodeInvalid)
	}
	for _, body := range []string{
		`{`, `[]`, `{"squash":"root_squash","readonly":true}`, `{"squash":"root_squash","anon_uid":-1}`,
		`{"squash":"root_squash","anon_uid":4294967296}`, `{"squash":"root_squash","clients":"10.0.0.0/8"}`,
		`{"squash":"root_squash","clients":["` + strings.Repeat("1", maxBody) + `"]}`,
	} {
		status, data := put(t, srv, exportPath("data"), body)
		wantError(t, status, data, http.StatusBadRequest, CodeInvalid)
	}
	// Nothing refused reached the FSM.
	if v, err := b.FSM().Volume("data"); err != nil || !reflect.DeepEqual(v.Export, ok) {
		t.Fatalf("export after refused sets: %+v %v", v, err)
	}

	b.SetNoLeader(true)
	status, data = call(t, srv, http.MethodPut, exportPath("data"), testToken, ok)
	wantError(t, status, data, http.StatusServiceUnavailable, CodeNoLeader)
	// Reads are local and still work.
	if status, data := call(t, srv, http.MethodGet, exportPath("data"), testToken, nil); status != http.StatusOK {
		t.Fatalf("read without a leader: %d %s", status, data)
	}
}

func TestExportAuth(t *testing.T) {
	b, srv := newTestServer(t, threeAZs...)
	if status, data := call(t, srv, http.MethodPost, PathVolumes, testToken, CreateVolumeRequest{Name: "data"}); status != http.StatusCreated {
		t.Fatalf("create: %d %s", status, data)
	}
	for _, tok := range []string{"-", "", "wrong"} {
		status, data := call(t, srv, http.MethodGet, exportPath("data"), tok, nil)
		wantError(t, status, data, http.StatusUnauthorized, CodeUnauthorized)
		status, data = call(t, srv, http.MethodPut, exportPath("data"), tok, meta.Export{ReadOnly: true, Squash: meta.SquashAll})
		wantError(t, status, data, http.StatusUnauthorized, CodeUnauthorized)
	}
	if v, _ := b.FSM().Volume("data"); !reflect.DeepEqual(v.Export, meta.DefaultExport()) {
		t.Fatalf("unauthenticated set reached the FSM: %+v", v.Export)
	}
}

func TestCreateVolumeWithExport(t *testing.T) {
	b, srv := newTestServer(t, threeAZs...)
	e := meta.Export{ReadOnly: true, Clients: []string{"10.1.0.0/16"}, Squash: meta.SquashNone}
	status, data := call(t, srv, http.MethodPost, PathVolumes, testToken, CreateVolumeRequest{Name: "ro", Export: &e})
	if status != http.StatusCreated || !reflect.DeepEqual(decode[meta.Volume](t, data).Export, e) {
		t.Fatalf("create with export: %d %s", status, data)
	}
	if v, err := b.FSM().Volume("ro"); err != nil || !reflect.DeepEqual(v.Export, e) {
		t.Fatalf("FSM export: %+v %v", v, err)
	}

	for _, body := range []string{
		`{"name":"bad","export":{"squash":"nope"}}`,
		`{"name":"bad","export":{"squash":"root_squash","clients":["everyone"]}}`,
		`{"name":"bad","export":{"squash":"root_squash","ro":true}}`,
		`{"name":"bad","export":{}}`,
		`{"name":"bad","export":true}`,
	} {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+PathVolumes, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		wantError(t, resp.StatusCode, data, http.StatusBadRequest, CodeInvalid)
	}
	if _, err := b.FSM().Volume("bad"); err == nil {
		t.Fatal("a volume with a refused export was created")
	}
}
