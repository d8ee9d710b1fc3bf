// Command fsrepd runs fsrep nodes. With no --node-id it starts the embedded
// development cluster (three nodes in three AZs on loopback, volume
// "default"); with --node-id it runs one node of a real cluster.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/fsrep/fsrep/internal/node"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

// fileConfig is the --config file: JSON with the flag names as keys.
type fileConfig struct {
	NodeID     string `json:"node-id"`
	AZ         string `json:"az"`
	Region     string `json:"region"`
	DataDir    string `json:"data-dir"`
	RaftAddr   string `json:"raft-addr"`
	RPCAddr    string `json:"rpc-addr"`
	NFSAddr    string `json:"nfs-addr"`
	AdminAddr  string `json:"admin-addr"`
	Bootstrap  bool   `json:"bootstrap"`
	Join       string `json:"join"`
	SecretFile string `json:"secret-file"`

	// Integrity loops (docs/integrity.md); empty takes the default.
	ScrubRate     string `json:"scrub-rate"`
	ScrubInterval string `json:"scrub-interval"`
	SweepInterval string `json:"sweep-interval"`
	GCInterval    string `json:"gc-interval"`
	OrphanAge     string `json:"orphan-age"`

	// Self-healing (docs/healing.md); empty takes the default.
	HeartbeatInterval string `json:"heartbeat-interval"`
	SuspectAfter      string `json:"suspect-after"`
	DownAfter         string `json:"down-after"`
	RepairGrace       string `json:"repair-grace"`
	RepairRate        string `json:"repair-rate"`
}

func run(args []string) int {
	fl := flag.NewFlagSet("fsrepd", flag.ContinueOnError)
	fl.Usage = func() {
		fmt.Fprint(fl.Output(), `fsrepd runs fsrep nodes.

  fsrepd                       embedded 3-node, 3-AZ cluster on loopback (NFS 127.0.0.1:20490-20492)
  fsrepd --node-id n1 --az az1 --data-dir /var/lib/fsrep --raft-addr H:7000 --rpc-addr H:7001 \
         --nfs-addr H:2049 --admin-addr H:9090 --bootstrap          first node of a new cluster
  fsrepd ... --join H:7001 --secret-file /etc/fsrep/secret          further nodes

Flags:
`)
		fl.PrintDefaults()
	}
	var fc fileConfig
	configFile := fl.String("config", "", "JSON file with the flags below as keys (flags override it)")
	fl.StringVar(&fc.NodeID, "node-id", "", "node ID; empty starts the embedded cluster")
	fl.StringVar(&fc.AZ, "az", "", "availability zone of this node")
	fl.StringVar(&fc.Region, "region", "", "region of this node")
	fl.StringVar(&fc.DataDir, "data-dir", "", "data directory (embedded default: ./fsrep-data)")
	fl.StringVar(&fc.RaftAddr, "raft-addr", "", "Raft address (listen and advertise)")
	fl.StringVar(&fc.RPCAddr, "rpc-addr", "", "internode RPC address")
	fl.StringVar(&fc.NFSAddr, "nfs-addr", "", "NFS and MOUNT address")
	fl.StringVar(&fc.AdminAddr, "admin-addr", "", "admin HTTP address")
	fl.BoolVar(&fc.Bootstrap, "bootstrap", false, "form a new cluster from this node")
	fl.StringVar(&fc.Join, "join", "", "RPC address of a member to join through")
	fl.StringVar(&fc.SecretFile, "secret-file", "", "file holding the cluster secret (same on every node)")
	fl.StringVar(&fc.ScrubRate, "scrub-rate", "", "scrub read rate per second, e.g. 16MiB (default 16MiB; 0 disables scrubbing)")
	fl.StringVar(&fc.ScrubInterval, "scrub-interval", "", "a scrub pass starts at most this often (default 24h)")
	fl.StringVar(&fc.SweepInterval, "sweep-interval", "", "time between orphan chunk sweeps (default 1h)")
	fl.StringVar(&fc.GCInterval, "gc-interval", "", "time between garbage collection passes on the leader (default 30s)")
	fl.StringVar(&fc.OrphanAge, "orphan-age", "", "chunk files changed more recently are never garbage-collected or swept (default 10m)")
	healFlagSet(fl, &fc)
	logLevel := fl.String("log-level", "info", "debug, info, warn or error")
	if err := fl.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *configFile != "" {
		if err := mergeConfigFile(*configFile, fl, &fc); err != nil {
			fmt.Fprintln(os.Stderr, "fsrepd:", err)
			return 2
		}
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintln(os.Stderr, "fsrepd: bad --log-level:", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var err error
	if fc.NodeID == "" {
		err = runEmbedded(ctx, fc, log)
	} else {
		err = runNode(ctx, fc, log)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "fsrepd:", err)
		return 1
	}
	return 0
}

// mergeConfigFile fills the fields whose flags were not given.
func mergeConfigFile(path string, fl *flag.FlagSet, fc *fileConfig) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var file fileConfig
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&file); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	set := map[string]bool{}
	fl.Visit(func(f *flag.Flag) { set[f.Name] = true })
	pick := func(name string, dst *string, v string) {
		if !set[name] && v != "" {
			*dst = v
		}
	}
	pick("node-id", &fc.NodeID, file.NodeID)
	pick("az", &fc.AZ, file.AZ)
	pick("region", &fc.Region, file.Region)
	pick("data-dir", &fc.DataDir, file.DataDir)
	pick("raft-addr", &fc.RaftAddr, file.RaftAddr)
	pick("rpc-addr", &fc.RPCAddr, file.RPCAddr)
	pick("nfs-addr", &fc.NFSAddr, file.NFSAddr)
	pick("admin-addr", &fc.AdminAddr, file.AdminAddr)
	pick("join", &fc.Join, file.Join)
	pick("secret-file", &fc.SecretFile, file.SecretFile)
	pick("scrub-rate", &fc.ScrubRate, file.ScrubRate)
	pick("scrub-interval", &fc.ScrubInterval, file.ScrubInterval)
	pick("sweep-interval", &fc.SweepInterval, file.SweepInterval)
	pick("gc-interval", &fc.GCInterval, file.GCInterval)
	pick("orphan-age", &fc.OrphanAge, file.OrphanAge)
	pickHeal(pick, fc, file)
	if !set["bootstrap"] && file.Bootstrap {
		fc.Bootstrap = true
	}
	return nil
}

func runNode(ctx context.Context, fc fileConfig, log *slog.Logger) error {
	cfg := node.Config{
		NodeID: fc.NodeID, AZ: fc.AZ, Region: fc.Region, DataDir: fc.DataDir,
		RaftAddr: fc.RaftAddr, RPCAddr: fc.RPCAddr, NFSAddr: fc.NFSAddr, AdminAddr: fc.AdminAddr,
		Bootstrap: fc.Bootstrap, Join: fc.Join,
	}
	if err := integrityFlags(fc, &cfg); err != nil {
		return err
	}
	if err := healFlags(fc, &cfg); err != nil {
		return err
	}
	if fc.SecretFile != "" {
		b, err := os.ReadFile(fc.SecretFile)
		if err != nil {
			return fmt.Errorf("reading the cluster secret: %w", err)
		}
		cfg.Secret = []byte(strings.TrimSpace(string(b)))
	}
	n, err := node.Start(cfg, node.SystemClock{}, log)
	if err != nil {
		return err
	}
	log.Info("node serving", "node", cfg.NodeID, "az", cfg.AZ, "nfs", n.NFSAddr(), "admin", n.AdminAddr())
	<-ctx.Done()
	log.Info("stopping")
	return n.Close()
}

func runEmbedded(ctx context.Context, fc fileConfig, log *slog.Logger) error {
	dir := fc.DataDir
	if dir == "" {
		dir = "fsrep-data"
	}
	cfg := node.DefaultEmbedded(dir)
	fmt.Printf("fsrep: starting the embedded 3-AZ cluster (data in %s) ...\n", dir)
	e, err := node.StartEmbedded(ctx, cfg, node.SystemClock{}, log)
	if err != nil {
		return err
	}
	fmt.Printf(`fsrep: ready. Volume %q is exported as /%s on three gateways:
  az1 127.0.0.1:%d   az2 127.0.0.1:%d   az3 127.0.0.1:%d

Mount it (Linux):
  mount -t nfs -o vers=3,proto=tcp,port=%d,mountport=%d,nolock 127.0.0.1:/%s /mnt
libnfs URL:
  nfs://127.0.0.1/%s?version=3&nfsport=%d&mountport=%d
Admin: fsrepctl status   (admin API on 127.0.0.1:%d-%d, token in %s/admin.token)
Press Ctrl-C to stop.
`, cfg.Volume, cfg.Volume, cfg.NFSPort, cfg.NFSPort+1, cfg.NFSPort+2,
		cfg.NFSPort, cfg.NFSPort, cfg.Volume, cfg.Volume, cfg.NFSPort, cfg.NFSPort,
		cfg.AdminPort, cfg.AdminPort+2, dir)
	<-ctx.Done()
	fmt.Println("fsrep: stopping")
	return e.Close()
}
