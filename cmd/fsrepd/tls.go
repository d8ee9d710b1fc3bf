package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsrep/fsrep/internal/pki"
)

// fsrepd tls: the cluster CA and node certificates (docs/security.md).
//
//	fsrepd tls ca --dir DIR                  a new cluster CA: DIR/ca.crt, DIR/ca.key
//	fsrepd tls issue --ca-dir DIR --node ID [--host H]... --out OUT
//	                                         OUT/node.crt, OUT/node.key, OUT/ca.crt
//
// A node started with --tls-ca and --tls-ca-key issues its own certificate
// instead; these commands are for operators who keep the CA key off the
// nodes (and for the compose harness).

func runTLS(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		tlsUsage(stdout)
		return exitOK
	}
	now := time.Now()
	switch args[0] {
	case "ca":
		fl := flag.NewFlagSet("fsrepd tls ca", flag.ContinueOnError)
		fl.SetOutput(io.Discard)
		dir := fl.String("dir", "", "directory for ca.crt and ca.key (created 0700)")
		name := fl.String("name", "fsrep", "cluster name in the CA's subject")
		force := fl.Bool("force", false, "replace a CA already in dir (every node certificate it issued stops being trusted)")
		if err := parseTLSFlags(fl, args[1:]); err != nil {
			return tlsUsageError(stdout, stderr, err)
		}
		if *dir == "" {
			return tlsUsageError(stdout, stderr, errors.New("tls ca: --dir is required"))
		}
		if _, err := os.Stat(filepath.Join(*dir, pki.CAKeyFile)); err == nil && !*force {
			fmt.Fprintf(stderr, "fsrepd: tls ca: %s already holds a CA key; --force replaces it\n", *dir)
			return exitError
		}
		ca, err := pki.NewCA(*name, now)
		if err == nil {
			err = ca.Save(*dir)
		}
		if err != nil {
			fmt.Fprintln(stderr, "fsrepd:", err)
			return exitError
		}
		fmt.Fprintf(stdout, "cluster CA written: %s (give to every node), %s (keep secret, 0600)\n",
			filepath.Join(*dir, pki.CAFile), filepath.Join(*dir, pki.CAKeyFile))
		return exitOK
	case "issue":
		fl := flag.NewFlagSet("fsrepd tls issue", flag.ContinueOnError)
		fl.SetOutput(io.Discard)
		caDir := fl.String("ca-dir", "", "directory holding ca.crt and ca.key")
		nodeID := fl.String("node", "", "node ID the certificate is for")
		out := fl.String("out", "", "directory for node.crt, node.key and a copy of ca.crt (created 0700)")
		var hosts hostList
		fl.Var(&hosts, "host", "a host name or IP address the node is reached by (repeat, or comma-separated)")
		if err := parseTLSFlags(fl, args[1:]); err != nil {
			return tlsUsageError(stdout, stderr, err)
		}
		if *caDir == "" || *nodeID == "" || *out == "" {
			return tlsUsageError(stdout, stderr, errors.New("tls issue: --ca-dir, --node and --out are required"))
		}
		ca, err := pki.LoadCA(filepath.Join(*caDir, pki.CAFile), filepath.Join(*caDir, pki.CAKeyFile))
		if err == nil {
			err = ca.IssueFiles(*out, *nodeID, append(hosts, "127.0.0.1", "localhost"), now)
		}
		if err != nil {
			fmt.Fprintln(stderr, "fsrepd:", err)
			return exitError
		}
		fmt.Fprintf(stdout, "certificate for %s written to %s (valid until %s)\n", *nodeID, *out,
			now.Add(pki.NodeValidity).UTC().Format("2006-01-02"))
		return exitOK
	}
	return tlsUsageError(stdout, stderr, fmt.Errorf("tls: unknown command %q (ca or issue)", args[0]))
}

func parseTLSFlags(fl *flag.FlagSet, args []string) error {
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fl.Arg(0))
	}
	return nil
}

func tlsUsageError(stdout, stderr io.Writer, err error) int {
	if errors.Is(err, flag.ErrHelp) {
		tlsUsage(stdout)
		return exitOK
	}
	fmt.Fprintf(stderr, "fsrepd: %v\nRun 'fsrepd tls --help' for usage.\n", err)
	return exitUsage
}

func tlsUsage(w io.Writer) {
	fmt.Fprint(w, `fsrepd tls makes the cluster CA and node certificates for internode mutual TLS.

Usage:
  fsrepd tls ca --dir DIR [--name NAME] [--force]
        a new cluster CA: DIR/ca.crt (give to every node) and DIR/ca.key (0600)
  fsrepd tls issue --ca-dir DIR --node ID [--host NAME]... --out OUT
        a node certificate: OUT/node.crt, OUT/node.key (0600), OUT/ca.crt;
        start the node with --tls-ca OUT/ca.crt --tls-cert OUT/node.crt --tls-key OUT/node.key

A node given --tls-ca and --tls-ca-key issues its own certificate at its
first start; a node bootstrapping a new cluster with neither creates the CA
in <data-dir>/tls. See docs/security.md for rotation.
`)
}

// hostList is a repeatable, comma-separated flag.
type hostList []string

func (h *hostList) String() string { return strings.Join(*h, ",") }

func (h *hostList) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*h = append(*h, s)
		}
	}
	return nil
}
