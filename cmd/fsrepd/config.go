package main

import (
	"bytes"
	"flag"
	"fmt"
	"github.com/fsrep/fsrep/meta"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/fsrep/fsrep/fs/chunkstore"
	"github.com/fsrep/fsrep/replication"
)

// Configuration (docs/configuration.md): every setting is a flag
// (--repair-grace), an environment variable (FSREP_REPAIR_GRACE) and a key
// of the YAML config file (repair-grace: 90s), with the same name; a flag
// beats the environment, which beats the file, which beats the default.
// The one table below is the whole list: the flags, the help text, the
// file's keys, --print-config and the reference in docs/ all come from it.

// config is fsrepd's configuration, each value as text until it is
// parsed for node.Config (runNode), so that every source goes through the
// same parser.
type config struct {
	NodeID, AZ, Region, DataDir             string
	RaftAddr, RPCAddr, NFSAddr, AdminAddr   string
	Bootstrap                               bool
	Join, SecretFile, Secret                string
	LogFormat, LogLevel                     string
	ProfileContention, SyncMeta             bool
	ScrubRate, ScrubInterval, SweepInterval string
	GCInterval, OrphanAge, InlineMax        string
	MemoryLimit, ChunkReserve               string
	TLSCA, TLSCert, TLSKey, TLSCAKey        string
	AdminTLS                                string
	SnapshotThreshold, SnapshotInterval     string
	TrailingLogs                            string
	HeartbeatInterval, SuspectAfter         string
	DownAfter, RepairGrace, RepairRate      string
}

// setting is one configuration value.
type setting struct {
	name  string // flag, file key; FSREP_<NAME> in the environment
	group string
	usage string
	def   string // default as text ("" none)
	str   *string
	bool  *bool
	// secret values are redacted by --print-config.
	secret bool
}

// Groups of settings, in the order they are documented.
const (
	groupNode      = "Node"
	groupSecurity  = "Security (docs/security.md)"
	groupLog       = "Logging"
	groupIntegrity = "Integrity (docs/integrity.md)"
	groupHealing   = "Self-healing (docs/healing.md)"
	groupRaft      = "Raft"
)

// settings lists every setting of c, in documentation order. Defaults are
// taken from the code that applies them, so they cannot drift.
func (c *config) settings() []setting {
	hc, lc := replication.DefaultHealerConfig("x"), replication.DefaultLivenessConfig()
	sweep := replication.DefaultSweepConfig("x")
	s := func(name, group, def, usage string, p *string) setting {
		return setting{name: name, group: group, def: def, usage: usage, str: p}
	}
	return []setting{
		s("node-id", groupNode, "", "node ID; empty starts the embedded 3-node development cluster", &c.NodeID),
		s("az", groupNode, "", "availability zone of this node (required with node-id)", &c.AZ),
		s("region", groupNode, "", "region of this node", &c.Region),
		s("data-dir", groupNode, "", "data directory (required with node-id; the embedded cluster uses ./fsrep-data)", &c.DataDir),
		s("raft-addr", groupNode, "", "Raft address, host:port (listen and advertise)", &c.RaftAddr),
		s("rpc-addr", groupNode, "", "internode RPC address, host:port", &c.RPCAddr),
		s("nfs-addr", groupNode, "", "NFS and MOUNT address, host:port", &c.NFSAddr),
		s("admin-addr", groupNode, "", "admin HTTP address, host:port", &c.AdminAddr),
		{name: "bootstrap", group: groupNode, def: "false", usage: "form a new cluster from this node (first start only)", bool: &c.Bootstrap},
		s("join", groupNode, "", "RPC address of a member to join through (first start only)", &c.Join),
		s("secret-file", groupNode, "", "file holding the cluster secret (same on every node)", &c.SecretFile),
		{name: "secret", group: groupNode, usage: "the cluster secret itself, instead of secret-file (prefer FSREP_SECRET: flags show in ps)",
			str: &c.Secret, secret: true},
		s("tls-ca", groupSecurity, "", "cluster CA certificate(s), PEM: the only roots internode TLS trusts (default <data-dir>/tls/ca.crt)", &c.TLSCA),
		s("tls-cert", groupSecurity, "", "this node's certificate, PEM, signed by the cluster CA (default <data-dir>/tls/node.crt)", &c.TLSCert),
		s("tls-key", groupSecurity, "", "this node's private key, PEM (default <data-dir>/tls/node.key)", &c.TLSKey),
		s("tls-ca-key", groupSecurity, "", "the cluster CA's private key: a node without a certificate issues its own with it (default <data-dir>/tls/ca.key when present)", &c.TLSCAKey),
		s("admin-tls", groupSecurity, "auto", "admin API over https with the node certificate: auto (unless admin-addr is loopback), on, or off (only with a loopback admin-addr)", &c.AdminTLS),
		s("chunk-reserve", groupNode, formatBytes(chunkstore.DefaultReserve), "free space chunk writes leave on the data disk for the metadata; below it writes answer NFS3ERR_NOSPC and the node takes no new chunks (0 turns it off)", &c.ChunkReserve),
		s("inline-max", groupNode, formatBytes(meta.InlineMax), "files up to this size keep their data in the metadata: one Raft commit per small write, but a copy on every node (0 turns it off; at most 16KiB)", &c.InlineMax),

		s("log-format", groupLog, "text", "log format: text or json", &c.LogFormat),
		s("log-level", groupLog, "info", "log level: debug, info, warn or error", &c.LogLevel),
		s("memory-limit", groupLog, "", "soft memory limit of the process, like GOMEMLIMIT (which applies when this is unset): the garbage collector works harder near it", &c.MemoryLimit),
		{name: "profile-contention", group: groupLog, def: "false", bool: &c.ProfileContention,
			usage: "record lock and blocking contention for the admin API's /debug/pprof/mutex and /debug/pprof/block (costs some CPU)"},

		{name: "sync-meta", group: groupIntegrity, def: "false", bool: &c.SyncMeta,
			usage: "fsync meta.db on every metadata commit; off, the Raft log's fsync is the only one and meta.db is rebuilt from the log after a machine crash"},
		s("scrub-rate", groupIntegrity, formatBytes(replication.DefaultScrubRate), "scrub read rate per second (0 disables scrubbing)", &c.ScrubRate),
		s("scrub-interval", groupIntegrity, formatDuration(replication.DefaultScrubConfig("x").Interval), "a scrub pass starts at most this often", &c.ScrubInterval),
		s("sweep-interval", groupIntegrity, formatDuration(sweep.Interval), "time between orphan chunk sweeps", &c.SweepInterval),
		s("gc-interval", groupIntegrity, formatDuration(replication.DefaultGCConfig().Interval), "time between garbage collection passes on the leader", &c.GCInterval),
		s("orphan-age", groupIntegrity, formatDuration(sweep.OrphanAge), "chunk files changed more recently are never garbage-collected or swept", &c.OrphanAge),

		s("raft-snapshot-threshold", groupRaft, "8192", "Raft log entries between metadata snapshots", &c.SnapshotThreshold),
		s("raft-snapshot-interval", groupRaft, "2m0s", "how often Raft checks whether a snapshot is due", &c.SnapshotInterval),
		s("raft-trailing-logs", groupRaft, "10240", "log entries kept after a snapshot; a follower further behind is sent the snapshot", &c.TrailingLogs),

		s("heartbeat-interval", groupHealing, formatDuration(lc.HeartbeatInterval), "how often a node sends the leader a heartbeat", &c.HeartbeatInterval),
		s("suspect-after", groupHealing, formatDuration(lc.SuspectAfter), "a node without heartbeat for this long gets no new chunks", &c.SuspectAfter),
		s("down-after", groupHealing, formatDuration(lc.DownAfter), "a node without heartbeat for this long is down", &c.DownAfter),
		s("repair-grace", groupHealing, formatDuration(hc.Grace), "how long a node must be down before its chunks are re-replicated (the leader's value applies)", &c.RepairGrace),
		s("repair-rate", groupHealing, formatBytes(hc.RateLimit), "re-replication, drain and rebalance bandwidth per second", &c.RepairRate),
	}
}

// envName is the environment variable of a setting.
func envName(name string) string {
	return "FSREP_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// envConfig names the config file in the environment (the --config flag
// beats it).
const envConfig = "FSREP_CONFIG"

// register adds the settings named (all of them when none are) to fl, with
// their defaults.
func (c *config) register(fl *flag.FlagSet, only ...string) {
	for _, s := range c.settings() {
		if len(only) > 0 && !slices.Contains(only, s.name) {
			continue
		}
		usage := s.usage + " (env " + envName(s.name) + ")"
		if s.bool != nil {
			fl.BoolVar(s.bool, s.name, s.def == "true", usage)
		} else {
			fl.StringVar(s.str, s.name, s.def, usage)
		}
	}
}

// sources says where each setting's value came from: "flag", "env", "file"
// or "default".
type sources map[string]string

// load parses args into fl (which holds the settings registered with
// register and any others of the command, among them --config), then
// fills every registered setting no flag gave from the environment, else
// the config file (--config, else FSREP_CONFIG). It returns the file used
// ("" none) and each setting's source.
func (c *config) load(fl *flag.FlagSet, configFlag *string, args []string, getenv func(string) string) (string, sources, error) {
	if err := fl.Parse(args); err != nil {
		return "", nil, err
	}
	set := map[string]bool{}
	fl.Visit(func(f *flag.Flag) { set[f.Name] = true })
	path := *configFlag
	if path == "" {
		path = getenv(envConfig)
	}
	var file map[string]string
	if path != "" {
		var err error
		if file, err = readConfigFile(path, c.settings()); err != nil {
			return "", nil, err
		}
	}
	src := sources{}
	for _, s := range c.settings() {
		if fl.Lookup(s.name) == nil {
			continue
		}
		switch env := getenv(envName(s.name)); {
		case set[s.name]:
			src[s.name] = "flag"
		case env != "":
			if err := fl.Set(s.name, env); err != nil {
				return "", nil, fmt.Errorf("%s=%q: %w", envName(s.name), env, err)
			}
			src[s.name] = "env"
		case file[s.name] != "":
			if err := fl.Set(s.name, file[s.name]); err != nil {
				return "", nil, fmt.Errorf("config %s: %s: %q: %w", path, s.name, file[s.name], err)
			}
			src[s.name] = "file"
		default:
			src[s.name] = "default"
		}
	}
	return path, src, nil
}

// readConfigFile reads a YAML mapping of setting names to single values.
// JSON is YAML too, so the JSON config files of earlier versions still
// load. Unknown keys are refused, so that a typo cannot silently leave a
// default in place; an empty value (key: or key: null) counts as not set.
func readConfigFile(path string, known []setting) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	out := map[string]string{}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return out, nil // empty
	}
	m := doc.Content[0]
	if m.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("config %s: line %d: want a mapping of settings (name: value)", path, m.Line)
	}
	names := map[string]bool{}
	for _, s := range known {
		names[s.name] = true
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		switch {
		case !names[k.Value]:
			return nil, fmt.Errorf("config %s: line %d: unknown setting %q (fsrepd --help lists them)", path, k.Line, k.Value)
		case seen[k.Value]:
			return nil, fmt.Errorf("config %s: line %d: %s is set twice", path, k.Line, k.Value)
		case v.Kind != yaml.ScalarNode:
			return nil, fmt.Errorf("config %s: line %d: %s takes a single value", path, v.Line, k.Value)
		}
		seen[k.Value] = true
		if v.Tag != "!!null" {
			out[k.Value] = v.Value
		}
	}
	return out, nil
}

// printConfig writes the effective configuration as YAML that --config
// reads back: every setting with its value and, as a comment, where the
// value came from. Secrets are redacted.
func (c *config) printConfig(file string, src sources) ([]byte, error) {
	root := &yaml.Node{Kind: yaml.MappingNode}
	group := ""
	for _, s := range c.settings() {
		from, ok := src[s.name]
		if !ok {
			continue
		}
		k := &yaml.Node{Kind: yaml.ScalarNode, Value: s.name}
		v := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str"}
		switch {
		case s.bool != nil:
			v.Tag, v.Value = "!!bool", strconv.FormatBool(*s.bool)
		case s.secret && *s.str != "":
			v.Value = "<redacted>"
		default:
			v.Value = *s.str
		}
		if from == "env" {
			from = "env " + envName(s.name)
		}
		v.LineComment = from
		if s.group != group {
			group = s.group
			k.HeadComment = group
		}
		root.Content = append(root.Content, k, v)
	}
	doc := &yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{root}}
	head := "Effective fsrepd configuration (flag > environment > config file > default)"
	if file != "" {
		head += "\nconfig file: " + file
	}
	doc.HeadComment = head
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// settingsHelp is the settings part of --help: per group, each flag with
// its default and environment variable.
func (c *config) settingsHelp() string {
	var b strings.Builder
	group := ""
	for _, s := range c.settings() {
		if s.group != group {
			group = s.group
			fmt.Fprintf(&b, "\n%s:\n", group)
		}
		def := s.def
		switch {
		case s.secret:
			def = "none"
		case def == "":
			def = "none"
		}
		fmt.Fprintf(&b, "  --%-20s %s\n  %-22s default %s; env %s\n", s.name, s.usage, "", def, envName(s.name))
	}
	return b.String()
}

// settingsMarkdown is the reference table of docs/configuration.md.
func (c *config) settingsMarkdown() string {
	var b strings.Builder
	group := ""
	for _, s := range c.settings() {
		if s.group != group {
			if group != "" {
				b.WriteString("\n")
			}
			group = s.group
			fmt.Fprintf(&b, "### %s\n\n| flag / file key | environment | default | meaning |\n|---|---|---|---|\n", group)
		}
		def := "`" + s.def + "`"
		if s.def == "" {
			def = "—"
		}
		usage := s.usage
		if s.secret {
			usage += "; redacted by `--print-config`"
		}
		fmt.Fprintf(&b, "| `%s` | `%s` | %s | %s |\n", s.name, envName(s.name), def, usage)
	}
	return b.String()
}

// formatDuration prints d the way it is written in a config, without the
// zero units time.Duration.String adds (1m, not 1m0s; 24h, not 24h0m0s).
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// formatBytes prints a byte count with the largest binary unit that
// divides it (64MiB), as parseBytes reads it.
func formatBytes(n int64) string {
	for _, u := range []struct {
		suffix string
		shift  uint
	}{{"TiB", 40}, {"GiB", 30}, {"MiB", 20}, {"KiB", 10}} {
		if n != 0 && n%(1<<u.shift) == 0 {
			return strconv.FormatInt(n>>u.shift, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}
