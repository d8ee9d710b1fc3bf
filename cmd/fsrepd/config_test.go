package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/fsrep/fsrep/internal/node"
)

var update = flag.Bool("update", false, "rewrite the generated table in docs/configuration.md")

// env is a fake environment.
type env map[string]string

func (e env) get(k string) string { return e[k] }

// fsrepd runs the command in-process.
func fsrepd(t *testing.T, e env, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, e.get, &out, &errOut)
	return code, out.String(), errOut.String()
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// printed runs --print-config and decodes the YAML it prints.
func printed(t *testing.T, e env, args ...string) map[string]any {
	t.Helper()
	code, out, errOut := fsrepd(t, e, append(args, "--print-config")...)
	if code != exitOK {
		t.Fatalf("--print-config: exit %d\n%s%s", code, out, errOut)
	}
	var m map[string]any
	if err := yaml.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("--print-config printed no YAML: %v\n%s", err, out)
	}
	return m
}

// TestConfigPrecedence: flag > environment > file > default, for each
// setting on its own.
func TestConfigPrecedence(t *testing.T) {
	file := writeFile(t, "fsrepd.yaml", `# a node
node-id: n1
az: az-file
repair-grace: 90s
log-level: debug
bootstrap: true
scrub-rate: 0
`)
	e := env{"FSREP_AZ": "az-env", "FSREP_REPAIR_GRACE": "2m", "FSREP_DOWN_AFTER": "20s", envConfig: file}
	m := printed(t, e, "--az", "az-flag")
	want := map[string]any{
		"node-id": "n1", "az": "az-flag", "repair-grace": "2m", "down-after": "20s", "log-level": "debug",
		"bootstrap": true, "scrub-rate": "0", "scrub-interval": "24h", "log-format": "text", "repair-rate": "64MiB",
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %#v, want %#v", k, m[k], v)
		}
	}
	if len(m) != len(new(config).settings()) {
		t.Errorf("--print-config printed %d settings, want every one (%d)", len(m), len(new(config).settings()))
	}

	// The sources are noted, and --config beats FSREP_CONFIG.
	var cfg config
	fl := flag.NewFlagSet("t", flag.ContinueOnError)
	cf := fl.String("config", "", "")
	cfg.register(fl)
	other := writeFile(t, "other.yaml", "az: az-other\n")
	path, src, err := cfg.load(fl, cf, []string{"--config", other, "--repair-grace", "5m"}, e.get)
	if err != nil {
		t.Fatal(err)
	}
	if path != other || cfg.AZ != "az-env" || cfg.NodeID != "" || cfg.RepairGrace != "5m" ||
		src["az"] != "env" || src["repair-grace"] != "flag" || src["node-id"] != "default" {
		t.Errorf("load: path %s, cfg %+v, sources %v", path, cfg, src)
	}

	// What the node gets.
	cfg = config{}
	fl = flag.NewFlagSet("t", flag.ContinueOnError)
	cf = fl.String("config", "", "")
	cfg.register(fl)
	if _, _, err := cfg.load(fl, cf, nil, e.get); err != nil {
		t.Fatal(err)
	}
	nc, err := cfg.nodeConfig()
	if err != nil {
		t.Fatal(err)
	}
	if nc.NodeID != "n1" || nc.AZ != "az-env" || nc.RepairGrace != 2*time.Minute || nc.DownAfter != 20*time.Second ||
		!nc.Bootstrap || nc.ScrubRate >= 0 || nc.ScrubInterval != 24*time.Hour || nc.RepairRate != 64<<20 {
		t.Errorf("node config %+v", nc)
	}
}

// TestPrintConfigRoundTrip: what --print-config prints is a config file
// that gives the same configuration; secrets are redacted.
func TestPrintConfigRoundTrip(t *testing.T) {
	e := env{"FSREP_SECRET": "very-secret-cluster-key", "FSREP_ORPHAN_AGE": "15m", "FSREP_LOG_FORMAT": "json"}
	code, out, errOut := fsrepd(t, e, "--node-id", "n2", "--az", "az2", "--join", "h:7001", "--print-config")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if strings.Contains(out, "very-secret") || !strings.Contains(out, "secret: <redacted> # env FSREP_SECRET") {
		t.Errorf("the secret is not redacted:\n%s", out)
	}
	for _, want := range []string{"node-id: n2 # flag", "orphan-age: 15m # env FSREP_ORPHAN_AGE", "gc-interval: 30s # default", "# Self-healing"} {
		if !strings.Contains(out, want) {
			t.Errorf("--print-config lacks %q:\n%s", want, out)
		}
	}
	file := writeFile(t, "printed.yaml", out)
	again := printed(t, env{}, "--config", file)
	first := printed(t, e, "--node-id", "n2", "--az", "az2", "--join", "h:7001")
	for k, v := range first {
		if again[k] != v {
			t.Errorf("round trip: %s = %#v, want %#v", k, again[k], v)
		}
	}
}

// TestConfigFileJSON: the JSON config files of earlier versions still load.
func TestConfigFileJSON(t *testing.T) {
	file := writeFile(t, "old.json", `{"node-id": "n3", "az": "az3", "bootstrap": false, "repair-rate": "128MiB", "gc-interval": "1m"}`)
	m := printed(t, env{}, "--config", file)
	if m["node-id"] != "n3" || m["repair-rate"] != "128MiB" || m["gc-interval"] != "1m" || m["bootstrap"] != false {
		t.Errorf("JSON config: %v", m)
	}
}

func TestConfigErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		file string
		env  env
		args []string
		want string
	}{
		"unknown key":       {file: "node-id: n1\nrepiar-grace: 1m\n", want: `line 2: unknown setting "repiar-grace"`},
		"duplicate key":     {file: "az: a\naz: b\n", want: "az is set twice"},
		"not a value":       {file: "az: [a, b]\n", want: "az takes a single value"},
		"not a mapping":     {file: "- az\n", want: "want a mapping"},
		"bad YAML":          {file: "az: [\n", want: "config"},
		"bad duration":      {file: "repair-grace: soon\n", want: `--repair-grace: "soon" is not a positive duration`},
		"bad bool in file":  {file: "bootstrap: maybe\n", want: "bootstrap"},
		"bad env":           {env: env{"FSREP_BOOTSTRAP": "maybe"}, want: "FSREP_BOOTSTRAP"},
		"bad env duration":  {env: env{"FSREP_DOWN_AFTER": "-1s"}, want: "--down-after"},
		"bad log format":    {args: []string{"--log-format", "xml"}, want: `log-format: "xml" is not text or json`},
		"bad log level":     {env: env{"FSREP_LOG_LEVEL": "loud"}, want: "log-level"},
		"both secrets":      {args: []string{"--secret", "x", "--secret-file", "/x"}, want: "exclude each other"},
		"missing file":      {args: []string{"--config", "/nonexistent/fsrepd.yaml"}, want: "no such file"},
		"unknown flag":      {args: []string{"--nope"}, want: "flag provided but not defined"},
		"stray argument":    {args: []string{"serve"}, want: `unexpected argument "serve"`},
		"bad bytes in file": {file: "scrub-rate: lots\n", want: "--scrub-rate"},
		"inline too large":  {args: []string{"--inline-max", "32KiB"}, want: "--inline-max"},
		"tiny memory limit": {args: []string{"--memory-limit", "1M"}, want: "--memory-limit"},
		"bad memory limit":  {env: env{"FSREP_MEMORY_LIMIT": "lots"}, want: "--memory-limit"},
	} {
		t.Run(name, func(t *testing.T) {
			args := tc.args
			if tc.file != "" {
				args = append(args, "--config", writeFile(t, "c.yaml", tc.file))
			}
			code, _, errOut := fsrepd(t, tc.env, append(args, "--print-config")...)
			if code != exitUsage || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, errOut, exitUsage, tc.want)
			}
		})
	}
	// An empty file and empty values are no settings at all.
	m := printed(t, env{}, "--config", writeFile(t, "empty.yaml", ""))
	if m["gc-interval"] != "30s" {
		t.Errorf("empty file: %v", m)
	}
	m = printed(t, env{}, "--config", writeFile(t, "nulls.yaml", "gc-interval:\nnode-id: null\n"))
	if m["gc-interval"] != "30s" || m["node-id"] != "" {
		t.Errorf("null values: %v", m)
	}
}

func TestHelp(t *testing.T) {
	code, out, _ := fsrepd(t, env{}, "--help")
	if code != exitOK {
		t.Fatalf("--help: exit %d", code)
	}
	for _, s := range new(config).settings() {
		if !strings.Contains(out, "--"+s.name) || !strings.Contains(out, envName(s.name)) {
			t.Errorf("--help lacks %s", s.name)
		}
	}
	for _, want := range []string{"default 1m; env FSREP_REPAIR_GRACE", "--print-config", "fsrepd check"} {
		if !strings.Contains(out, want) {
			t.Errorf("--help lacks %q", want)
		}
	}
}

// TestConfigDefaultsMatchNode: the documented defaults are what the node
// runs with when nothing is set.
func TestConfigDefaultsMatchNode(t *testing.T) {
	var cfg config
	cfg.register(flag.NewFlagSet("t", flag.ContinueOnError))
	withDefaults, err := cfg.nodeConfig()
	if err != nil {
		t.Fatal(err)
	}
	var empty config
	unset, err := empty.nodeConfig()
	if err != nil {
		t.Fatal(err)
	}
	// The node fills unset values itself; the defaults written out must
	// land on the same values.
	tuning := func(c node.Config) [10]any {
		c = c.WithDefaults()
		return [10]any{c.ScrubRate, c.ScrubInterval, c.SweepInterval, c.GCInterval, c.OrphanAge,
			c.HeartbeatInterval, c.SuspectAfter, c.DownAfter, c.RepairGrace, c.RepairRate}
	}
	if a, b := tuning(withDefaults), tuning(unset); a != b {
		t.Errorf("written-out defaults %v\ndiffer from the node's %v", a, b)
	}
}

// TestConfigurationDoc: docs/configuration.md holds the table the code
// generates (go test ./cmd/fsrepd -run TestConfigurationDoc -update
// rewrites it).
func TestConfigurationDoc(t *testing.T) {
	const path = "../../docs/configuration.md"
	const begin, end = "<!-- BEGIN GENERATED: go test ./cmd/fsrepd -run TestConfigurationDoc -update -->\n", "<!-- END GENERATED -->"
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	i, j := strings.Index(doc, begin), strings.Index(doc, end)
	if i < 0 || j < i {
		t.Fatalf("%s has no generated block", path)
	}
	table := new(config).settingsMarkdown()
	if doc[i+len(begin):j] == table {
		return
	}
	if !*update {
		t.Fatalf("%s is out of date: run go test ./cmd/fsrepd -run TestConfigurationDoc -update", path)
	}
	doc = doc[:i+len(begin)] + table + doc[j:]
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestInlineMaxSetting(t *testing.T) {
	for in, want := range map[string]int64{"": 0, "0": -1, "4K": 4096, "16KiB": 16 << 10} {
		c := config{InlineMax: in}
		nc, err := c.nodeConfig()
		if err != nil || nc.InlineMax != want {
			t.Errorf("--inline-max %q: node InlineMax %d, %v; want %d", in, nc.InlineMax, err, want)
		}
	}
}

func TestMemoryLimitSetting(t *testing.T) {
	for in, want := range map[string]int64{"": -1, "2GiB": 2 << 30, "512M": 512 << 20} {
		c := config{MemoryLimit: in}
		if got, err := c.memoryLimit(); err != nil || got != want {
			t.Errorf("--memory-limit %q: %d, %v; want %d", in, got, err, want)
		}
	}
}
