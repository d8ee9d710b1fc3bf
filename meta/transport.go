package meta

import (
	"context"
	"fmt"
	"net"
	"time"

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
}

type advertiseAddr string

func (a advertiseAddr) Network() string { return "tcp" }
func (a advertiseAddr) String() string  { return string(a) }

func (s *streamLayer) Addr() net.Addr { return s.advertise }

func (s *streamLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	if s.dial != nil {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		return s.dial(ctx, "tcp", string(addr))
	}
	return net.DialTimeout("tcp", string(addr), timeout)
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

func newTransport(advertised string, dial DialFunc, log hclog.Logger) (*raft.NetworkTransport, error) {
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
	return raft.NewNetworkTransportWithLogger(s, 3, 10*time.Second, log), nil
}
