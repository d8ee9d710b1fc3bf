package pki

import (
	"crypto/tls"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestIssueAndLoad(t *testing.T) {
	now := time.Now()
	dir := t.TempDir()
	ca, err := NewCA("test", now)
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.Save(dir); err != nil {
		t.Fatal(err)
	}
	back, err := LoadCA(filepath.Join(dir, CAFile), filepath.Join(dir, CAKeyFile))
	if err != nil || !back.Cert.Equal(ca.Cert) {
		t.Fatalf("LoadCA = %v, %v", back, err)
	}
	out := filepath.Join(dir, "n1")
	if err := back.IssueFiles(out, "n1", []string{"10.0.0.1", "n1.example"}, now); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]os.FileMode{CAKeyFile: 0o600, CAFile: 0o644} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, %v; want %v", name, fi.Mode().Perm(), err, want)
		}
	}
	if fi, err := os.Stat(filepath.Join(out, KeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("node key mode %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	id, err := LoadIdentity(filepath.Join(out, CAFile), filepath.Join(out, CertFile), filepath.Join(out, KeyFile), now)
	if err != nil {
		t.Fatal(err)
	}
	if id.Leaf().Subject.CommonName != "n1" || len(id.Leaf().IPAddresses) != 1 {
		t.Errorf("certificate: CN %q, IPs %v", id.Leaf().Subject.CommonName, id.Leaf().IPAddresses)
	}

	// A certificate of another CA does not load against this one, and an
	// expired one does not load at all.
	other, _ := NewCA("other", now)
	od := filepath.Join(dir, "other")
	if err := other.IssueFiles(od, "n2", nil, now); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadIdentity(filepath.Join(dir, CAFile), filepath.Join(od, CertFile), filepath.Join(od, KeyFile), now); err == nil {
		t.Error("a certificate of another CA loaded")
	}
	if _, err := LoadIdentity(filepath.Join(out, CAFile), filepath.Join(out, CertFile), filepath.Join(out, KeyFile), now.Add(NodeValidity+time.Hour)); err == nil {
		t.Error("an expired certificate loaded")
	}
	if _, err := LoadIdentity(filepath.Join(out, CAFile), filepath.Join(dir, "none.crt"), filepath.Join(dir, "none.key"), now); !errors.Is(err, ErrNoCertificate) {
		t.Errorf("missing certificate: %v, want ErrNoCertificate", err)
	}
}

// TestMutualTLS: two identities of one CA talk; an identity of another CA
// is refused by the listener, whose failure hook hears it, and a silent
// client is dropped at the handshake deadline.
func TestMutualTLS(t *testing.T) {
	now := time.Now()
	ca, _ := NewCA("test", now)
	srvID, _ := ca.Identity("n1", nil, now)
	cliID, _ := ca.Identity("n2", nil, now)
	other, _ := NewCA("other", now)
	strangerID, _ := other.Identity("n1", nil, now)

	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	failures := make(chan error, 10)
	l := Listener(raw, srvID.ServerConfig(), 500*time.Millisecond, func(_ net.Addr, err error) { failures <- err })
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				b := make([]byte, 5)
				if _, err := c.Read(b); err == nil {
					_, _ = c.Write(b)
				}
			}()
		}
	}()

	dial := func(cfg *tls.Config) error {
		c, err := tls.Dial("tcp", raw.Addr().String(), cfg)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte("hello")); err != nil {
			return err
		}
		b := make([]byte, 5)
		_, err = c.Read(b)
		return err
	}
	if err := dial(cliID.ClientConfig()); err != nil {
		t.Fatalf("a member: %v", err)
	}
	if err := dial(strangerID.ClientConfig()); err == nil {
		t.Fatal("a stranger's certificate was accepted")
	}
	if err := <-failures; err == nil {
		t.Fatal("the failure hook heard no error")
	}
	// A client without a certificate at all.
	noCert := cliID.ClientConfig()
	noCert.Certificates = nil
	if err := dial(noCert); err == nil {
		t.Fatal("a client without a certificate was accepted")
	}
	<-failures
	// Silence: the deadline drops it.
	c, err := net.Dial("tcp", raw.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case <-failures:
	case <-time.After(10 * time.Second):
		t.Fatal("a silent client was not dropped at the handshake deadline")
	}
}
