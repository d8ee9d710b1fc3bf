// Command fsrep-workload writes self-verifying files through fsrep's NFS
// gateways at a steady rate, moving to the next gateway on every failure,
// and prints JSON lines: one per acknowledged write ("ack"), per error
// ("err"), per second ("sec"), and at the end the report ("report"),
// after reading every acknowledged block back. It stops on SIGTERM or
// SIGINT (or after --duration); SIGUSR1 marks the time of a fault, and
// --fault-time gives one ahead. Exit status: 0 when every acknowledged
// write was read back intact, 1 when some were lost or could not be
// verified, 2 on usage errors.
//
// Example:
//
//	fsrep-workload --gateways n1a:2049,n2a:2049,n3a:2049 --export /data
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/fsrep/fsrep/internal/workload"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	cfg := workload.Default(nil, "")
	fl := flag.NewFlagSet("fsrep-workload", flag.ContinueOnError)
	fl.SetOutput(stderr)
	gateways := fl.String("gateways", "127.0.0.1:2049", "NFS gateways host:port, comma separated, tried in order")
	fl.StringVar(&cfg.Export, "export", "/data", "export to mount")
	fl.StringVar(&cfg.Prefix, "prefix", "w", "file name prefix")
	fl.Float64Var(&cfg.Rate, "rate", cfg.Rate, "block writes per second")
	fl.IntVar(&cfg.BlockSize, "block-size", cfg.BlockSize, "bytes per write")
	fl.IntVar(&cfg.BlocksPerFile, "blocks-per-file", cfg.BlocksPerFile, "blocks per file before starting the next")
	fl.DurationVar(&cfg.OpTimeout, "op-timeout", cfg.OpTimeout, "bound on every RPC (a soft mount's timeo)")
	fl.BoolVar(&cfg.LogAcks, "log-acks", cfg.LogAcks, "print one line per acknowledged write")
	duration := fl.Duration("duration", 0, "stop after this long (0: at SIGTERM)")
	verifyFor := fl.Duration("verify-timeout", 2*time.Minute, "how long the final read-back may take")
	faultAt := fl.String("fault-time", "", "RFC 3339 time of the fault under test, if known ahead")
	if err := fl.Parse(args); err != nil {
		return 2
	}
	cfg.Gateways = strings.Split(*gateways, ",")
	cfg.Out = stdout
	w, err := workload.New(cfg)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	defer w.Close()
	if *faultAt != "" {
		t, err := time.Parse(time.RFC3339Nano, *faultAt)
		if err != nil {
			fmt.Fprintln(stderr, "--fault-time:", err)
			return 2
		}
		w.MarkFault(t)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	defer signal.Stop(usr1)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-usr1:
				w.MarkFault(time.Now())
			}
		}
	}()

	_ = w.Run(ctx)
	vctx, cancel := context.WithTimeout(context.Background(), *verifyFor)
	defer cancel()
	verr := w.Verify(vctx)
	w.EmitReport()
	r := w.Report()
	switch {
	case verr != nil:
		fmt.Fprintln(stderr, verr)
		return 1
	case r.LostWrites > 0 || r.CorruptReads > 0:
		return 1
	}
	return 0
}
