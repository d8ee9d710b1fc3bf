package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fsrep/fsrep/internal/admin"
	"github.com/fsrep/fsrep/internal/admin/admintest"
	"github.com/fsrep/fsrep/meta"
)

const testToken = "tok-123"

var threeAZs = []meta.NodeInfo{
	{ID: "n1", AZ: "az1", Region: "r1", NFSAddr: "10.0.0.1:2049", AdminAddr: "10.0.0.1:9090"},
	{ID: "n2", AZ: "az2", Region: "r1", NFSAddr: "10.0.0.2:2049", AdminAddr: "10.0.0.2:9090"},
	{ID: "n3", AZ: "az3", Region: "r1", NFSAddr: "10.0.0.3:2049", AdminAddr: "10.0.0.3:9090"},
}

// cluster is a real admin handler over a real FSM, served on loopback.
type cluster struct {
	b    *admintest.Backend
	addr string // host:port
}

func newCluster(t *testing.T, nodes ...meta.NodeInfo) *cluster {
	t.Helper()
	b := admintest.New(t, nodes...)
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv := httptest.NewServer(admin.NewServer(b, testToken, log))
	t.Cleanup(srv.Close)
	return &cluster{b: b, addr: strings.TrimPrefix(srv.URL, "http://")}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// invocation configures one fsrepctl run.
type invocation struct {
	env      map[string]string
	stdin    string
	terminal bool
}

type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout\n%s--- stderr\n%s", r.code, r.stdout, r.stderr)
}

// fsrepctl runs the CLI in-process with no access to the real environment.
func fsrepctl(t *testing.T, inv invocation, args ...string) result {
	t.Helper()
	return fsrepctlCtx(t.Context(), inv, args...)
}

// fsrepctlCtx is fsrepctl under ctx, whose end stands for Ctrl-C. It is
// safe to call from another goroutine.
func fsrepctlCtx(ctx context.Context, inv invocation, args ...string) result {
	var out, errOut bytes.Buffer
	c := &cli{
		stdin: strings.NewReader(inv.stdin), stdout: &out, stderr: &errOut,
		getenv:          func(k string) string { return inv.env[k] },
		stdinIsTerminal: func() bool { return inv.terminal },
	}
	code := c.run(ctx, args)
	return result{code: code, stdout: out.String(), stderr: errOut.String()}
}

// ctl runs fsrepctl against cl with the token.
func (cl *cluster) ctl(t *testing.T, args ...string) result {
	t.Helper()
	return fsrepctl(t, invocation{}, append([]string{"--admin", cl.addr, "--token", testToken}, args...)...)
}

// ctlCtx is ctl under ctx.
func (cl *cluster) ctlCtx(ctx context.Context, args ...string) result {
	return fsrepctlCtx(ctx, invocation{}, append([]string{"--admin", cl.addr, "--token", testToken}, args...)...)
}

// plainBackend hides everything but admin.Backend, like a node built
// without a healer or scrubber.
type plainBackend struct{ admin.Backend }

// newPlainCluster is newCluster without the healer and scrubber.
func newPlainCluster(t *testing.T, nodes ...meta.NodeInfo) *cluster {
	t.Helper()
	b := admintest.New(t, nodes...)
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv := httptest.NewServer(admin.NewServer(plainBackend{b}, testToken, log))
	t.Cleanup(srv.Close)
	return &cluster{b: b, addr: strings.TrimPrefix(srv.URL, "http://")}
}

func wantExit(t *testing.T, r result, code int) {
	t.Helper()
	if r.code != code {
		t.Fatalf("want exit %d, got %s", code, r)
	}
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestUsageAndHelp(t *testing.T) {
	r := fsrepctl(t, invocation{}, "--help")
	wantExit(t, r, exitOK)
	for _, want := range []string{"Exit codes:", "5  unreachable", "volume create NAME", "export show VOLUME", "export set VOLUME", "--token-file", "FSREP_ADMIN",
		"replica status [VOLUME]", "repair status", "scrub status", "node drain NODE", "node remove NODE",
		"volume set NAME", "file locate VOLUME PATH", "leader transfer [NODE]", "snapshot-meta save FILE"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("usage lacks %q:\n%s", want, r.stdout)
		}
	}
	wantExit(t, fsrepctl(t, invocation{}), exitUsage)
	wantExit(t, fsrepctl(t, invocation{}, "help"), exitOK)

	for _, cmd := range commands() {
		args := append(strings.Fields(cmd.name), "--help")
		r := fsrepctl(t, invocation{}, args...)
		wantExit(t, r, exitOK)
		if !strings.Contains(r.stdout, "Usage: fsrepctl "+cmd.name) || !strings.Contains(r.stdout, "Example:") {
			t.Errorf("%s --help:\n%s", cmd.name, r.stdout)
		}
		r = fsrepctl(t, invocation{}, append([]string{"help"}, strings.Fields(cmd.name)...)...)
		wantExit(t, r, exitOK)
	}
	r = fsrepctl(t, invocation{}, "volume", "delete", "-h")
	if r.code != exitOK || !strings.Contains(r.stdout, "-yes") || strings.Contains(r.stdout, "-token-file") {
		t.Errorf("verb help should list its own flags only:\n%s", r)
	}

	for _, args := range [][]string{
		{"bogus"},
		{"volume"},
		{"volume", "bogus"},
		{"node"},
		{"export"},
		{"export", "bogus"},
		{"--nope", "status"},
		{"status", "--nope"},
		{"status", "extra"},
		{"volume", "info"},
		{"volume", "create", "a", "b"},
		{"-o", "yaml", "volume", "list"},
		{"help", "bogus"},
		{"replica"},
		{"replica", "status", "a", "b"},
		{"repair"},
		{"repair", "status", "x"},
		{"repair", "status", "--interval", "0"},
		{"repair", "pause", "x"},
		{"scrub"},
		{"scrub", "status", "x"},
		{"scrub", "start", "--bogus"},
		{"node", "drain"},
		{"node", "drain", "n1", "--interval", "-1s"},
		{"node", "undrain", "a", "b"},
		{"node", "remove"},
	} {
		r := fsrepctl(t, invocation{env: map[string]string{"FSREP_TOKEN": "x"}}, args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, "--help") {
			t.Errorf("%q: want exit 2 with a hint, got %s", args, r)
		}
	}
}

func TestGlobalFlagsAnywhere(t *testing.T) {
	cl := newCluster(t, threeAZs...)
	for _, args := range [][]string{
		{"--admin", cl.addr, "--token", testToken, "-o", "json", "volume", "list"},
		{"volume", "list", "--admin", cl.addr, "--token", testToken, "-o", "json"},
		{"--admin", cl.addr, "volume", "list", "-o", "json", "--token=" + testToken},
		{"-o=json", "volume", "list", "--admin=" + cl.addr, "--token", testToken},
	} {
		r := fsrepctl(t, invocation{}, args...)
		if r.code != exitOK || strings.TrimSpace(r.stdout) != "[]" {
			t.Errorf("%q: %s", args, r)
		}
	}
	// "--" ends the flags.
	r := fsrepctl(t, invocation{}, "--admin", cl.addr, "--token", testToken, "volume", "info", "--", "-x")
	wantExit(t, r, exitError) // reached the server, which refuses the name
	if !strings.Contains(r.stderr, "-x") {
		t.Errorf("-- did not pass -x as the name: %s", r)
	}
}

func TestTokenSources(t *testing.T) {
	cl := newCluster(t, threeAZs...)
	dir := t.TempDir()
	good := filepath.Join(dir, "admin.token")
	if err := os.WriteFile(good, []byte(testToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.token")
	if err := os.WriteFile(bad, []byte("wrong\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.token")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.token")

	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		code int
	}{
		{"flag", nil, []string{"--token", testToken}, exitOK},
		{"env", map[string]string{"FSREP_TOKEN": testToken}, nil, exitOK},
		{"flag beats env", map[string]string{"FSREP_TOKEN": "wrong"}, []string{"--token", testToken}, exitOK},
		{"file flag", nil, []string{"--token-file", good}, exitOK},
		{"file env", map[string]string{"FSREP_TOKEN_FILE": good}, nil, exitOK},
		{"env token beats file", map[string]string{"FSREP_TOKEN": testToken}, []string{"--token-file", bad}, exitOK},
		{"wrong token", nil, []string{"--token-file", bad}, exitError},
		{"empty file", nil, []string{"--token-file", empty}, exitUsage},
		{"missing named file", nil, []string{"--token-file", missing}, exitError},
		{"missing default file", nil, nil, exitUsage},
		{"empty admin address", map[string]string{"FSREP_TOKEN": testToken}, []string{"--admin", ""}, exitUsage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{"FSREP_ADMIN": cl.addr}
			for k, v := range tc.env {
				env[k] = v
			}
			r := fsrepctl(t, invocation{env: env}, append([]string{"volume", "list"}, tc.args...)...)
			wantExit(t, r, tc.code)
		})
	}
}

func TestUnreachable(t *testing.T) {
	addr := closedAddr(t)
	for _, args := range [][]string{
		{"status"}, {"health"}, {"node", "list"}, {"volume", "list"}, {"volume", "info", "v"},
		{"volume", "create", "v"}, {"volume", "delete", "v", "--yes"},
		{"export", "show", "v"}, {"export", "set", "v", "--ro"},
		{"replica", "status"}, {"repair", "status"}, {"repair", "pause"}, {"repair", "resume"},
		{"scrub", "status"}, {"scrub", "status", "--all"}, {"scrub", "start"}, {"scrub", "pause", "--all"},
		{"node", "drain", "n2"}, {"node", "undrain", "n2"}, {"node", "remove", "n2", "--yes"},
	} {
		r := fsrepctl(t, invocation{}, append(args, "--admin", addr, "--token", "t")...)
		if r.code != exitUnreachable || !strings.Contains(r.stderr, "unreachable") {
			t.Errorf("%q: want exit 5, got %s", args, r)
		}
	}
}

func TestExitCode(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code int
	}{
		{nil, exitOK},
		{usageErrorf("x"), exitUsage},
		{fmt.Errorf("%w: nothing", errNoToken), exitUsage},
		{errUnhealthy, exitUnhealthy},
		{fmt.Errorf("%w: refused", admin.ErrUnreachable), exitUnreachable},
		{&admin.APIError{Status: 404, Code: admin.CodeNotFound}, exitNotFound},
		{&admin.APIError{Status: 409, Code: admin.CodeExists}, exitError},
		{&admin.APIError{Status: 401, Code: admin.CodeUnauthorized}, exitError},
		{errors.New("boom"), exitError},
	} {
		if got := exitCode(tc.err); got != tc.code {
			t.Errorf("exitCode(%v) = %d, want %d", tc.err, got, tc.code)
		}
	}
}

func TestSizes(t *testing.T) {
	for in, want := range map[string]int64{
		"4MiB": 4 << 20, "4mib": 4 << 20, "4M": 4 << 20, "4Mi": 4 << 20, "4MB": 4e6, "64KiB": 64 << 10,
		"64k": 64 << 10, "1048576": 1 << 20, "512B": 512, " 1 GiB ": 1 << 30, "0": 0,
	} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "1.5MiB", "-1", "4XB", "four", "99999999999TiB"} {
		if got, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) = %d, want an error", in, got)
		}
	}
	for n, want := range map[int64]string{0: "0B", 1023: "1023B", 1024: "1KiB", 4 << 20: "4MiB",
		3<<30 + 1<<29: "3.5GiB", 1<<20 + 1: "1.0MiB"} {
		if got := formatSize(n); got != want {
			t.Errorf("formatSize(%d) = %q, want %q", n, got, want)
		}
	}
}
