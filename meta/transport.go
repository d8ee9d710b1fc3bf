package meta

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"time"

	"github.com/fsrep/fsrep/internal/netlimit"
	"github.com/fsrep/fsrep/internal/pki"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// streamLayer is raft's TCP stream layer with a separate advertise address:
// a node in a container listens on all interfaces but is known to its
// peers by a host name (raft's own TCP transport accepts only an IP).
type streamLayer struct {
	net.Listener
	advertise advertiseAddr
	dial      DialFunc
	tls       *tls.Config // client side; nil: plain TCP (this package's tests)
}

type advertiseAddr string

func (a advertiseAddr) Network() string { return "tcp" }
func (a advertiseAddr) String() string  { return string(a) }

func (s *streamLayer) Addr() net.Addr { return s.advertise }

func (s *streamLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	dial := s.dial
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	c, err := dial(ctx, "tcp", string(addr))
	if err != nil || s.tls == nil {
		return c, err
	}
	return pki.Dial(ctx, c, s.tls)
}

// ListenAddr returns the address to bind for an advertised address: the
// address itself when its host is an IP literal (or empty), otherwise every
// interface on its port.
func ListenAddr(advertised string) (string, error) {
	host, port, err := net.SplitHostPort(advertised)
	if err != nil {
		return "", fmt.Errorf("address %q: %w", advertised, err)
	}
	if host == "" || net.ParseIP(host) != nil {
		return advertised, nil
	}
	return net.JoinHostPort("", port), nil
}

// TLS is the mutual TLS of the Raft transport: Server for the listener,
// Client for dialing peers.
type TLS struct {
	Server, Client *tls.Config
	// OnFail hears every failed handshake on the listener.
	OnFail func(remote net.Addr, err error)
}

// handshakeTimeout bounds a Raft peer's TLS handshake.
const handshakeTimeout = 10 * time.Second

func newTransport(cfg Config, log hclog.Logger) (*raft.NetworkTransport, error) {
	advertised, dial, sec := cfg.RaftAddr, cfg.Dial, cfg.TLS
	bind, err := ListenAddr(advertised)
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, err
	}
	adv := advertised
	if _, port, _ := net.SplitHostPort(advertised); port == "0" {
		adv = l.Addr().String() // tests: a free port picked by the kernel
	}
	s := &streamLayer{Listener: l, advertise: advertiseAddr(adv), dial: dial}
	if cfg.MaxConns > 0 || cfg.MaxConnsPerClient > 0 {
		s.Listener = netlimit.Listen(s.Listener, cfg.MaxConns, cfg.MaxConnsPerClient)
	}
	if sec != nil {
		s.Listener = pki.Listener(s.Listener, sec.Server, handshakeTimeout, sec.OnFail)
		s.tls = sec.Client
	}
	return raft.NewNetworkTransportWithLogger(s, 3, 10*time.Second, log), nil
}
