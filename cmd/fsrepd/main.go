// Command fsrepd runs fsrep nodes. With no node-id it starts the embedded
// development cluster (three nodes in three AZs on loopback, volume
// "default"); with a node-id it runs one node of a real cluster. Settings
// come from flags, FSREP_* environment variables and a YAML config file
// (config.go, docs/configuration.md). "fsrepd check" checks a stopped
// node's files (check.go).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fsrep/fsrep/internal/node"
)

// Exit codes.
const (
	exitOK       = 0
	exitError    = 1 // the node failed, or a check could not run
	exitUsage    = 2 // bad flags, environment or config file
	exitProblems = 4 // fsrepd check found problems (as fsrepctl's "unhealthy")
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is one invocation of fsrepd; it returns the exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "check" {
		return runCheck(ctx, args[1:], getenv, stdout, stderr)
	}
	if len(args) > 0 && args[0] == "tls" {
		return runTLS(args[1:], stdout, stderr)
	}
	var cfg config
	fl := flag.NewFlagSet("fsrepd", flag.ContinueOnError)
	fl.SetOutput(io.Discard) // errors are reported below, help on stdout
	configFile := fl.String("config", "", "YAML file of settings, keys as the flag names (env "+envConfig+"); JSON works too")
	printConfig := fl.Bool("print-config", false, "print the effective configuration as YAML and exit")
	cfg.register(fl)
	file, src, err := cfg.load(fl, configFile, args, getenv)
	switch {
	case errors.Is(err, flag.ErrHelp):
		usage(stdout, &cfg)
		return exitOK
	case err != nil:
		return usageError(stderr, err)
	case fl.NArg() > 0:
		return usageError(stderr, fmt.Errorf("unexpected argument %q (the subcommands are check and tls)", fl.Arg(0)))
	}
	if err := cfg.validate(); err != nil {
		return usageError(stderr, err)
	}
	if *printConfig {
		out, err := cfg.printConfig(file, src)
		if err != nil {
			fmt.Fprintln(stderr, "fsrepd:", err)
			return exitError
		}
		_, _ = stdout.Write(out)
		return exitOK
	}
	log, err := newLogger(stderr, cfg.LogFormat, cfg.LogLevel)
	if err != nil {
		return usageError(stderr, err)
	}
	if limit, _ := cfg.memoryLimit(); limit > 0 {
		// Process-wide by nature, like GOMEMLIMIT: the garbage collector
		// works harder as the heap nears it (a soft limit, not a cap on
		// what the kernel gives).
		debug.SetMemoryLimit(limit)
	}
	if cfg.ProfileContention {
		// Process-wide by nature: one in 10 contended lock events, and
		// blocking events of 100 µs or more.
		runtime.SetMutexProfileFraction(10)
		runtime.SetBlockProfileRate(int(100 * time.Microsecond))
	}
	if cfg.NodeID == "" {
		err = runEmbedded(ctx, cfg, src, stdout, log)
	} else {
		err = runNode(ctx, cfg, log)
	}
	if err != nil {
		log.Error("fsrepd stopped", "err", err)
		return exitError
	}
	return exitOK
}

func usageError(stderr io.Writer, err error) int {
	fmt.Fprintf(stderr, "fsrepd: %v\nRun 'fsrepd --help' for usage.\n", err)
	return exitUsage
}

func usage(w io.Writer, cfg *config) {
	fmt.Fprintf(w, `fsrepd runs fsrep nodes.

Usage:
  fsrepd [flags]                 embedded 3-node, 3-AZ cluster on loopback (NFS 127.0.0.1:20490-20492)
  fsrepd --node-id n1 --az az1 --data-dir /var/lib/fsrep --raft-addr H:7000 --rpc-addr H:7001 \
         --nfs-addr H:2049 --admin-addr H:9090 --bootstrap          first node of a new cluster
  fsrepd ... --join H:7001 --secret-file /etc/fsrep/secret          further nodes
  fsrepd --config /etc/fsrep/fsrepd.yaml                            the same, from a file
  fsrepd check --data-dir DIR [--repair]                            check a stopped node's files
  fsrepd tls ca|issue ...                                           make the cluster CA and node certificates

Every setting is a flag, an environment variable FSREP_<NAME> and a key of
the YAML config file: a flag beats the environment, which beats the file,
which beats the default (docs/configuration.md).

  --config FILE      YAML file of settings, keys as the flag names (env %s);
                     JSON works too
  --print-config     print the effective configuration as YAML and exit
%s
Exit codes: 0 stopped cleanly, 1 the node failed, 2 bad flags or configuration.
`, envConfig, cfg.settingsHelp())
}

// validate checks every setting's syntax (and that they fit together)
// without acting on any.
func (c *config) validate() error {
	if _, err := newLogger(io.Discard, c.LogFormat, c.LogLevel); err != nil {
		return err
	}
	if c.Secret != "" && c.SecretFile != "" {
		return errors.New("secret and secret-file exclude each other")
	}
	if _, err := c.memoryLimit(); err != nil {
		return err
	}
	_, err := c.nodeConfig()
	return err
}

// memoryLimit is --memory-limit in bytes, or -1 when not set (the Go
// runtime then takes GOMEMLIMIT from the environment, if any).
func (c *config) memoryLimit() (int64, error) {
	if c.MemoryLimit == "" {
		return -1, nil
	}
	n, err := parseBytes(c.MemoryLimit)
	if err != nil || n < 64<<20 {
		return 0, fmt.Errorf("--memory-limit: %q is not a size of at least 64MiB", c.MemoryLimit)
	}
	return n, nil
}

// nodeConfig is the node configuration of the settings, without the
// secret (see readSecret).
func (c *config) nodeConfig() (node.Config, error) {
	cfg := node.Config{
		NodeID: c.NodeID, AZ: c.AZ, Region: c.Region, DataDir: c.DataDir,
		RaftAddr: c.RaftAddr, RPCAddr: c.RPCAddr, NFSAddr: c.NFSAddr, AdminAddr: c.AdminAddr,
		Bootstrap: c.Bootstrap, Join: c.Join, SyncMeta: c.SyncMeta,
		TLSCAFile: c.TLSCA, TLSCertFile: c.TLSCert, TLSKeyFile: c.TLSKey, TLSCAKeyFile: c.TLSCAKey,
		AdminTLS: c.AdminTLS,
	}
	if err := raftFlags(*c, &cfg); err != nil {
		return cfg, err
	}
	if err := integrityFlags(*c, &cfg); err != nil {
		return cfg, err
	}
	if err := healFlags(*c, &cfg); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// readSecret returns the cluster secret given (nil: none).
func (c *config) readSecret() ([]byte, error) {
	if c.Secret != "" {
		return []byte(c.Secret), nil
	}
	if c.SecretFile == "" {
		return nil, nil
	}
	b, err := os.ReadFile(c.SecretFile)
	if err != nil {
		return nil, fmt.Errorf("reading the cluster secret: %w", err)
	}
	return []byte(strings.TrimSpace(string(b))), nil
}

// newLogger builds the daemon's logger: text or JSON lines on w. Each node
// adds its node ID and AZ to every line it logs.
func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log-level: %q is not debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("log-format: %q is not text or json", format)
}

func runNode(ctx context.Context, c config, log *slog.Logger) error {
	cfg, err := c.nodeConfig()
	if err != nil {
		return err
	}
	if cfg.Secret, err = c.readSecret(); err != nil {
		return err
	}
	n, err := node.Start(cfg, node.SystemClock{}, log)
	if err != nil {
		return err
	}
	dlog := log.With("node", cfg.NodeID, "az", cfg.AZ)
	dlog.Info("node serving", "nfs", n.NFSAddr(), "admin", n.AdminAddr())
	<-ctx.Done()
	dlog.Info("stopping")
	// A leader hands over first (bounded by node.HandOverTimeout), so a
	// rolling restart costs the cluster no election timeout.
	_, err = n.Shutdown(context.Background())
	return err
}

// embeddedSettings are the settings the embedded cluster takes; it runs
// the defaults of every other one.
var embeddedSettings = []string{"data-dir", "log-format", "log-level", "profile-contention", "memory-limit"}

func runEmbedded(ctx context.Context, c config, src sources, stdout io.Writer, log *slog.Logger) error {
	var ignored []string
	for name, from := range src {
		if from != "default" && !slices.Contains(embeddedSettings, name) {
			ignored = append(ignored, name)
		}
	}
	if len(ignored) > 0 {
		slices.Sort(ignored)
		log.Warn("the embedded cluster (no node-id) runs with defaults: settings ignored", "settings", ignored)
	}
	dir := c.DataDir
	if dir == "" {
		dir = "fsrep-data"
	}
	cfg := node.DefaultEmbedded(dir)
	fmt.Fprintf(stdout, "fsrep: starting the embedded 3-AZ cluster (data in %s) ...\n", dir)
	e, err := node.StartEmbedded(ctx, cfg, node.SystemClock{}, log)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, `fsrep: ready. Volume %q is exported as /%s on three gateways:
  az1 127.0.0.1:%d   az2 127.0.0.1:%d   az3 127.0.0.1:%d

Mount it (Linux):
  mount -t nfs -o vers=3,proto=tcp,port=%d,mountport=%d,nolock 127.0.0.1:/%s /mnt
libnfs URL:
  nfs://127.0.0.1/%s?version=3&nfsport=%d&mountport=%d
Admin: fsrepctl status   (admin API on 127.0.0.1:%d-%d, token in %s/admin.token)
Check a node's files once stopped: fsrepd check --data-dir %s
Press Ctrl-C to stop.
`, cfg.Volume, cfg.Volume, cfg.NFSPort, cfg.NFSPort+1, cfg.NFSPort+2,
		cfg.NFSPort, cfg.NFSPort, cfg.Volume, cfg.Volume, cfg.NFSPort, cfg.NFSPort,
		cfg.AdminPort, cfg.AdminPort+2, dir, dir)
	<-ctx.Done()
	fmt.Fprintln(stdout, "fsrep: stopping")
	return e.Close()
}

// raftFlags parses the Raft snapshot settings into cfg ("" keeps the
// node's default).
func raftFlags(c config, cfg *node.Config) error {
	num := func(name, v string, out *uint64) error {
		if v == "" {
			return nil
		}
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n == 0 {
			return fmt.Errorf("%s: %q is not a positive number", name, v)
		}
		*out = n
		return nil
	}
	if err := num("raft-snapshot-threshold", c.SnapshotThreshold, &cfg.RaftSnapshotThreshold); err != nil {
		return err
	}
	if err := num("raft-trailing-logs", c.TrailingLogs, &cfg.RaftTrailingLogs); err != nil {
		return err
	}
	if c.SnapshotInterval != "" {
		d, err := time.ParseDuration(c.SnapshotInterval)
		if err != nil || d < 100*time.Millisecond {
			return fmt.Errorf("raft-snapshot-interval: %q is not a duration of at least 100ms", c.SnapshotInterval)
		}
		cfg.RaftSnapshotInterval = d
	}
	return nil
}
