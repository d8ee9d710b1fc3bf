// Package pki is fsrep's cluster certificate authority: it creates the
// cluster CA, issues node certificates signed by it, and builds the mutual
// TLS configurations of every internode connection (Raft and RPC). A peer
// is trusted because its certificate chains to the cluster CA and names it
// a node, never because of its address: containers move and addresses are
// reused.
//
// Files (PEM, docs/security.md): ca.crt (one or more CA certificates; more
// than one while the CA is being rotated), ca.key (the CA's private key,
// 0600, needed only to issue certificates), node.crt and node.key (0600).
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// File names inside a TLS directory.
const (
	CAFile    = "ca.crt"
	CAKeyFile = "ca.key"
	CertFile  = "node.crt"
	KeyFile   = "node.key"
)

// ServerName is the DNS name every node certificate carries and every node
// asks for when it dials a peer, whatever address it dials.
const ServerName = "node.fsrep.internal"

// Validity of what this package issues. Rotation is by replacing files
// and restarting nodes one at a time (docs/security.md).
const (
	CAValidity   = 10 * 365 * 24 * time.Hour
	NodeValidity = 2 * 365 * 24 * time.Hour
	// backdate covers clocks that lag the issuer's.
	backdate = time.Hour
)

// ErrNoCertificate means a TLS directory holds no node certificate (or no
// key for it).
var ErrNoCertificate = errors.New("pki: no node certificate")

// CA is a cluster certificate authority.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// NewCA creates a CA for the named cluster.
func NewCA(cluster string, now time.Time) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{Organization: []string{"fsrep"}, CommonName: "fsrep cluster CA " + cluster},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(CAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("pki: create CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key}, nil
}

// LoadCA reads a CA certificate and its key. With a bundle of CA
// certificates, the one matching the key is the issuer.
func LoadCA(certFile, keyFile string) (*CA, error) {
	certs, err := readCerts(certFile)
	if err != nil {
		return nil, err
	}
	key, err := readKey(keyFile)
	if err != nil {
		return nil, err
	}
	for _, c := range certs {
		if c.IsCA && publicKeyEqual(c.PublicKey, key.Public()) {
			return &CA{Cert: c, Key: key}, nil
		}
	}
	return nil, fmt.Errorf("pki: no CA certificate in %s matches the key in %s", certFile, keyFile)
}

// Save writes ca.crt (0644) and ca.key (0600) into dir. An existing ca.crt
// is replaced.
func (ca *CA) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	keyPEM, err := keyToPEM(ca.Key)
	if err != nil {
		return err
	}
	if err := WriteFile(filepath.Join(dir, CAKeyFile), keyPEM, 0o600); err != nil {
		return err
	}
	return WriteFile(filepath.Join(dir, CAFile), ca.CertPEM(), 0o644)
}

// CertPEM is the CA certificate in PEM.
func (ca *CA) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw})
}

// Issue makes a node certificate for nodeID, valid for ServerName, the node
// ID and the given extra host names or IP addresses, usable both as a TLS
// server and as a TLS client (every node is both). It returns PEM.
func (ca *CA) Issue(nodeID string, hosts []string, now time.Time) (certPEM, keyPEM []byte, err error) {
	if nodeID == "" {
		return nil, nil, errors.New("pki: a node certificate needs a node ID")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{Organization: []string{"fsrep"}, CommonName: nodeID},
		NotBefore:    now.Add(-backdate),
		NotAfter:     now.Add(NodeValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:     []string{ServerName},
	}
	if tmpl.NotAfter.After(ca.Cert.NotAfter) {
		tmpl.NotAfter = ca.Cert.NotAfter
	}
	for _, h := range append([]string{nodeID}, hosts...) {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" && h != ServerName {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: issue certificate for %s: %w", nodeID, err)
	}
	keyPEM, err = keyToPEM(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), keyPEM, nil
}

// IssueFiles issues a node certificate and writes node.crt, node.key
// (0600) and a copy of the CA certificate as ca.crt into dir.
func (ca *CA) IssueFiles(dir, nodeID string, hosts []string, now time.Time) error {
	certPEM, keyPEM, err := ca.Issue(nodeID, hosts, now)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	if err := WriteFile(filepath.Join(dir, CAFile), ca.CertPEM(), 0o644); err != nil {
		return err
	}
	if err := WriteFile(filepath.Join(dir, KeyFile), keyPEM, 0o600); err != nil {
		return err
	}
	return WriteFile(filepath.Join(dir, CertFile), certPEM, 0o644)
}

// WriteFile writes data to path through a temporary file and a rename, so
// a crash leaves the old file or the new one, with mode perm.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, perm) // the umask may have narrowed it
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("pki: write %s: %w", path, err)
	}
	return nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return n
}

func keyToPEM(k crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("pki: encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func readCerts(path string) ([]*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("pki: %s: %w", path, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("pki: %s holds no PEM certificate", path)
	}
	return out, nil
}

func readKey(path string) (crypto.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("pki: %s holds no PEM key", path)
	}
	var k any
	switch blk.Type {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(blk.Bytes)
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(blk.Bytes)
	default:
		return nil, fmt.Errorf("pki: %s: unsupported key type %q", path, blk.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("pki: %s: %w", path, err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("pki: %s: the key cannot sign", path)
	}
	return s, nil
}

func publicKeyEqual(a, b crypto.PublicKey) bool {
	ea, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && ea.Equal(b)
}

// Identity is a node's TLS identity: its certificate and key, and the
// cluster CA certificates it trusts.
type Identity struct {
	cert  tls.Certificate
	leaf  *x509.Certificate
	roots *x509.CertPool
}

// LoadIdentity reads a node's CA bundle, certificate and key, and checks
// that the certificate chains to the CA and is valid at now.
func LoadIdentity(caFile, certFile, keyFile string, now time.Time) (*Identity, error) {
	cas, err := readCerts(caFile)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	for _, c := range cas {
		roots.AddCert(c)
	}
	if _, err := os.Stat(certFile); errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s does not exist", ErrNoCertificate, certFile)
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("pki: node certificate %s / key %s: %w", certFile, keyFile, err)
	}
	leaf := cert.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, err
		}
	}
	inter := x509.NewCertPool()
	for _, der := range cert.Certificate[1:] {
		if c, err := x509.ParseCertificate(der); err == nil {
			inter.AddCert(c)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth}}); err != nil {
		return nil, fmt.Errorf("pki: node certificate %s is not valid for the cluster CA in %s: %w", certFile, caFile, err)
	}
	if err := leaf.VerifyHostname(ServerName); err != nil {
		return nil, fmt.Errorf("pki: node certificate %s does not name %s: %w", certFile, ServerName, err)
	}
	return &Identity{cert: cert, leaf: leaf, roots: roots}, nil
}

// Leaf is the node's certificate.
func (id *Identity) Leaf() *x509.Certificate { return id.leaf }

// ServerConfig is the TLS configuration of a node's internode listeners:
// TLS 1.3 only, and a client certificate from the cluster CA required.
func (id *Identity) ServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{id.cert},
		ClientCAs:    id.roots,
		ClientAuth:   tls.RequireAndVerifyClientCert,
	}
}

// AdminServerConfig is the TLS configuration of a node's admin API over
// https: the node certificate, no client certificate (the admin token
// authenticates), TLS 1.2 or later for the tools operators have.
func (id *Identity) AdminServerConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{id.cert}}
}

// ClientConfig is the TLS configuration a node dials its peers with: it
// presents its certificate and accepts a server certificate from the
// cluster CA that names ServerName.
func (id *Identity) ClientConfig() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{id.cert},
		RootCAs:      id.roots,
		ServerName:   ServerName,
	}
}

// Identity issues a node certificate and returns it as an identity that
// trusts this CA, without writing files (tests, and tools that dial nodes
// with a certificate of their own).
func (ca *CA) Identity(nodeID string, hosts []string, now time.Time) (*Identity, error) {
	certPEM, keyPEM, err := ca.Issue(nodeID, hosts, now)
	if err != nil {
		return nil, err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	return &Identity{cert: cert, leaf: cert.Leaf, roots: roots}, nil
}
