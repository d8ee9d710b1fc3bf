package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fsrep/fsrep/internal/pki"
)

func TestTLSCommands(t *testing.T) {
	dir := t.TempDir()
	caDir, out := filepath.Join(dir, "ca"), filepath.Join(dir, "n1")
	if code, _, stderr := fsrepd(t, env{}, "tls", "ca", "--dir", caDir); code != exitOK {
		t.Fatalf("tls ca: exit %d: %s", code, stderr)
	}
	// A second CA over the first needs --force: it would orphan every
	// certificate the first issued.
	if code, _, stderr := fsrepd(t, env{}, "tls", "ca", "--dir", caDir); code != exitError || !strings.Contains(stderr, "--force") {
		t.Fatalf("tls ca over an existing CA: exit %d: %s", code, stderr)
	}
	if code, _, stderr := fsrepd(t, env{}, "tls", "issue", "--ca-dir", caDir, "--node", "n1", "--host", "n1.example,10.1.2.3", "--out", out); code != exitOK {
		t.Fatalf("tls issue: exit %d: %s", code, stderr)
	}
	id, err := pki.LoadIdentity(filepath.Join(out, pki.CAFile), filepath.Join(out, pki.CertFile), filepath.Join(out, pki.KeyFile), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := id.Leaf().VerifyHostname("n1.example"); err != nil {
		t.Error(err)
	}
	if err := id.Leaf().VerifyHostname("10.1.2.3"); err != nil {
		t.Error(err)
	}
	for _, args := range [][]string{{"tls", "issue", "--node", "n1"}, {"tls", "nope"}, {"tls", "ca"}} {
		if code, _, stderr := fsrepd(t, env{}, args...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d (%s)", args, code, exitUsage, stderr)
		}
	}
}
