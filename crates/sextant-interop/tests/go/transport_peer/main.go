// Command transport_peer is the Go end of sextant's transport tests
// (crates/sextant-interop/tests/go_transports.rs). No Go rpcx build is available there, so it
// reproduces what rpcx does on each network with the libraries rpcx uses for it: the standard
// library (tcp, TLS, http CONNECT), golang.org/x/net/websocket (ws, wss) and quic-go (quic).
// It knows nothing of rpcx's messages beyond the frame: a 16-byte header (magic 0x08, version,
// flags, serialize type, seq u64 BE, then the u32 BE length of the rest).
//
//	transport_peer client -net NET -addr HOST:PORT [-ca F] [-servername N] [-cert F -key F] -req HEX
//	    dials as rpcx's client does for NET, writes the request, reads one response frame and
//	    prints it in hex.
//	transport_peer server -net NET -addr 127.0.0.1:0 [-cert F -key F] [-clientca F] -resp HEX
//	    listens as rpcx's server does for NET, prints "LISTEN host:port", and answers every
//	    request frame with the -resp bytes, their seq set to the request's; runs until killed.
package main

import (
	"bufio"
	"context"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	quic "github.com/lucas-clemente/quic-go"
	kcp "github.com/xtaci/kcp-go"
	"golang.org/x/crypto/pbkdf2"
	"golang.org/x/net/websocket"
)

// rpcx's share.DefaultRPCPath and the status its HTTP CONNECT answers with.
const (
	rpcPath   = "/_rpcx_"
	connected = "200 Connected to rpcx"
	magic     = 0x08
	maxFrame  = 64 << 20
)

type options struct {
	network    string
	addr       string
	ca         string
	serverName string
	cert       string
	key        string
	clientCA   string
	req        string
	resp       string
	timeout    time.Duration
	kcpPass    string
	kcpSalt    string
}

// kcpBlock is rpcx-examples' KCP cipher: AES keyed by pbkdf2-sha1(pass, salt, 4096, 32).
func kcpBlock(o *options) (kcp.BlockCrypt, error) {
	return kcp.NewAESBlockCrypt(pbkdf2.Key([]byte(o.kcpPass), []byte(o.kcpSalt), 4096, 32, sha1.New))
}

// kcpSession sets a session up as rpcx-examples' kcp client and server do.
func kcpSession(s *kcp.UDPSession) *kcp.UDPSession {
	s.SetStreamMode(true)
	s.SetACKNoDelay(true)
	return s
}

func main() {
	if len(os.Args) < 2 || (os.Args[1] != "client" && os.Args[1] != "server") {
		fmt.Fprintln(os.Stderr, "usage: transport_peer client|server -net NET -addr HOST:PORT ...")
		os.Exit(2)
	}
	mode := os.Args[1]
	var o options
	fs := flag.NewFlagSet(mode, flag.ExitOnError)
	fs.StringVar(&o.network, "net", "tcp", "tcp, http, ws, wss, quic or kcp")
	fs.StringVar(&o.addr, "addr", "", "address to dial (client) or listen on (server)")
	fs.StringVar(&o.ca, "ca", "", "client: CA certificates to trust (PEM); enables TLS")
	fs.StringVar(&o.serverName, "servername", "", "client: TLS server name (SNI)")
	fs.StringVar(&o.cert, "cert", "", "certificate chain (PEM): the server's, or the client's for mutual TLS")
	fs.StringVar(&o.key, "key", "", "private key (PEM) of -cert")
	fs.StringVar(&o.clientCA, "clientca", "", "server: require client certificates signed by these CAs (PEM)")
	fs.StringVar(&o.req, "req", "", "client: the request frame, hex")
	fs.StringVar(&o.resp, "resp", "", "server: the response frame, hex")
	fs.DurationVar(&o.timeout, "timeout", 20*time.Second, "client: give up after this long")
	fs.StringVar(&o.kcpPass, "kcppass", "", "kcp: the pass of the AES key")
	fs.StringVar(&o.kcpSalt, "kcpsalt", "", "kcp: the salt of the AES key")
	fs.Parse(os.Args[2:])
	var err error
	if mode == "client" {
		err = runClient(&o)
	} else {
		err = runServer(&o)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "transport_peer %s -net %s: %v\n", mode, o.network, err)
		os.Exit(1)
	}
}

func loadPool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no certificate", path)
	}
	return pool, nil
}

// clientTLS is the client's rpcx Option.TLSConfig: nil without -ca.
func clientTLS(o *options) (*tls.Config, error) {
	if o.ca == "" {
		return nil, nil
	}
	pool, err := loadPool(o.ca)
	if err != nil {
		return nil, err
	}
	conf := &tls.Config{RootCAs: pool, ServerName: o.serverName}
	if o.cert != "" {
		pair, err := tls.LoadX509KeyPair(o.cert, o.key)
		if err != nil {
			return nil, err
		}
		conf.Certificates = []tls.Certificate{pair}
	}
	return conf, nil
}

// serverTLS is the server's rpcx WithTLSConfig: nil without -cert.
func serverTLS(o *options) (*tls.Config, error) {
	if o.cert == "" {
		return nil, nil
	}
	pair, err := tls.LoadX509KeyPair(o.cert, o.key)
	if err != nil {
		return nil, err
	}
	conf := &tls.Config{Certificates: []tls.Certificate{pair}}
	if o.clientCA != "" {
		pool, err := loadPool(o.clientCA)
		if err != nil {
			return nil, err
		}
		conf.ClientCAs = pool
		conf.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return conf, nil
}

// readFrame reads one rpcx message: the 16-byte header, then as many bytes as it announces.
func readFrame(r io.Reader) ([]byte, error) {
	head := make([]byte, 16)
	if _, err := io.ReadFull(r, head); err != nil {
		return nil, err
	}
	if head[0] != magic {
		return nil, fmt.Errorf("not an rpcx frame: magic %#x, header %x", head[0], head)
	}
	n := binary.BigEndian.Uint32(head[12:16])
	if n > maxFrame {
		return nil, fmt.Errorf("frame of %d bytes", n)
	}
	frame := make([]byte, 16+int(n))
	copy(frame, head)
	if _, err := io.ReadFull(r, frame[16:]); err != nil {
		return nil, fmt.Errorf("frame body (%d bytes): %w", n, err)
	}
	return frame, nil
}

// ---- client ----

func runClient(o *options) error {
	req, err := hex.DecodeString(strings.TrimSpace(o.req))
	if err != nil {
		return fmt.Errorf("-req: %w", err)
	}
	timer := time.AfterFunc(o.timeout, func() {
		fmt.Fprintf(os.Stderr, "transport_peer client -net %s: no response within %v\n", o.network, o.timeout)
		os.Exit(3)
	})
	defer timer.Stop()
	conf, err := clientTLS(o)
	if err != nil {
		return err
	}
	conn, err := dial(o, conf)
	if err != nil {
		return fmt.Errorf("dial %s: %w", o.addr, err)
	}
	defer conn.Close()
	if _, err := conn.Write(req); err != nil {
		return fmt.Errorf("write request: %w", err)
	}
	resp, err := readFrame(conn)
	if err != nil {
		return fmt.Errorf("read response: %w", err)
	}
	fmt.Println(hex.EncodeToString(resp))
	return nil
}

func dial(o *options, conf *tls.Config) (io.ReadWriteCloser, error) {
	switch o.network {
	case "tcp":
		// rpcx's newDirectConn.
		if conf != nil {
			return tls.DialWithDialer(&net.Dialer{Timeout: o.timeout}, "tcp", o.addr, conf)
		}
		return net.DialTimeout("tcp", o.addr, o.timeout)
	case "http":
		return dialHTTP(o, conf)
	case "ws", "wss":
		// rpcx's newDirectWSConn.
		scheme, origin := "ws", "http"
		if o.network == "wss" {
			scheme, origin = "wss", "https"
		}
		url := fmt.Sprintf("%s://%s%s", scheme, o.addr, rpcPath)
		originURL := fmt.Sprintf("%s://%s", origin, o.addr)
		if conf != nil {
			config, err := websocket.NewConfig(url, originURL)
			if err != nil {
				return nil, err
			}
			config.TlsConfig = conf
			return websocket.DialConfig(config)
		}
		return websocket.Dial(url, "", originURL)
	case "quic":
		return dialQUIC(o, conf)
	case "kcp":
		// rpcx's newDirectKCPConn: kcp.DialWithOptions(address, block, 10, 3).
		block, err := kcpBlock(o)
		if err != nil {
			return nil, err
		}
		s, err := kcp.DialWithOptions(o.addr, block, 10, 3)
		if err != nil {
			return nil, err
		}
		return kcpSession(s), nil
	}
	return nil, fmt.Errorf("unknown network %q", o.network)
}

// dialHTTP is rpcx's newDirectHTTPConn.
func dialHTTP(o *options, conf *tls.Config) (net.Conn, error) {
	var conn net.Conn
	var err error
	if conf != nil {
		conn, err = tls.DialWithDialer(&net.Dialer{Timeout: o.timeout}, "tcp", o.addr, conf)
	} else {
		conn, err = net.DialTimeout("tcp", o.addr, o.timeout)
	}
	if err != nil {
		return nil, err
	}
	if _, err := io.WriteString(conn, "CONNECT "+rpcPath+" HTTP/1.0\n\n"); err != nil {
		conn.Close()
		return nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: "CONNECT"})
	if err == nil && resp.Status == connected {
		return conn, nil
	}
	conn.Close()
	if err == nil {
		err = errors.New("unexpected HTTP response: " + resp.Status)
	}
	return nil, err
}

// quicStream closes the stream and then the connection.
type quicStream struct {
	quic.Stream
	conn quic.Connection
}

func (s quicStream) Close() error {
	err := s.Stream.Close()
	s.conn.CloseWithError(0, "")
	return err
}

// dialQUIC is rpcx's newDirectQuicConn and smallnest/quick's Dial.
func dialQUIC(o *options, conf *tls.Config) (io.ReadWriteCloser, error) {
	if conf == nil {
		conf = &tls.Config{InsecureSkipVerify: true}
	}
	if len(conf.NextProtos) == 0 {
		conf.NextProtos = []string{"rpcx"}
	}
	conn, err := quic.DialAddr(o.addr, conf, &quic.Config{})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	stream, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return nil, err
	}
	return quicStream{stream, conn}, nil
}

// ---- server ----

func runServer(o *options) error {
	resp, err := hex.DecodeString(strings.TrimSpace(o.resp))
	if err != nil {
		return fmt.Errorf("-resp: %w", err)
	}
	if len(resp) < 16 || resp[0] != magic {
		return errors.New("-resp is not an rpcx frame")
	}
	conf, err := serverTLS(o)
	if err != nil {
		return err
	}
	serve := func(c io.ReadWriteCloser) { serveConn(c, resp) }
	switch o.network {
	case "tcp", "http", "ws", "wss":
		// rpcx's tcpMakeListener.
		if o.network == "wss" && conf == nil {
			return errors.New("must set tlsconfig for wss")
		}
		var ln net.Listener
		if conf != nil {
			ln, err = tls.Listen("tcp", o.addr, conf)
		} else {
			ln, err = net.Listen("tcp", o.addr)
		}
		if err != nil {
			return err
		}
		fmt.Printf("LISTEN %s\n", ln.Addr())
		mux := http.NewServeMux()
		switch o.network {
		case "tcp":
			for {
				c, err := ln.Accept()
				if err != nil {
					return err
				}
				go serve(c)
			}
		case "http":
			// rpcx's serveByHTTP and ServeHTTP.
			mux.HandleFunc(rpcPath, func(w http.ResponseWriter, req *http.Request) {
				if req.Method != http.MethodConnect {
					w.Header().Set("Content-Type", "text/plain; charset=utf-8")
					w.WriteHeader(http.StatusMethodNotAllowed)
					io.WriteString(w, "405 must CONNECT\n")
					return
				}
				c, _, err := w.(http.Hijacker).Hijack()
				if err != nil {
					fmt.Fprintf(os.Stderr, "hijack %s: %v\n", req.RemoteAddr, err)
					return
				}
				io.WriteString(c, "HTTP/1.0 "+connected+"\n\n")
				serve(c)
			})
		default:
			// rpcx's serveByWS and ServeWS.
			mux.Handle(rpcPath, websocket.Handler(func(c *websocket.Conn) {
				c.PayloadType = websocket.BinaryFrame
				serve(c)
			}))
		}
		return (&http.Server{Handler: mux}).Serve(ln)
	case "quic":
		return serveQUIC(o, conf, serve)
	case "kcp":
		// rpcx's kcpMakeListener: kcp.ListenWithOptions(address, block, 10, 3).
		block, err := kcpBlock(o)
		if err != nil {
			return err
		}
		ln, err := kcp.ListenWithOptions(o.addr, block, 10, 3)
		if err != nil {
			return err
		}
		fmt.Printf("LISTEN %s\n", ln.Addr())
		for {
			s, err := ln.AcceptKCP()
			if err != nil {
				return err
			}
			go serve(kcpSession(s))
		}
	}
	return fmt.Errorf("unknown network %q", o.network)
}

// serveQUIC is rpcx's quicMakeListener and smallnest/quick's listener: each connection's first
// stream, accepted in the accept loop, is the connection.
func serveQUIC(o *options, conf *tls.Config, serve func(io.ReadWriteCloser)) error {
	if conf == nil {
		return errors.New("TLSConfig must be configured in server.Options")
	}
	if len(conf.NextProtos) == 0 {
		conf.NextProtos = []string{"rpcx"}
	}
	udpAddr, err := net.ResolveUDPAddr("udp", o.addr)
	if err != nil {
		return err
	}
	udp, err := net.ListenUDP("udp", udpAddr)
	if err != nil {
		return err
	}
	ln, err := quic.Listen(udp, conf, nil)
	if err != nil {
		return err
	}
	fmt.Printf("LISTEN %s\n", ln.Addr())
	ctx := context.Background()
	for {
		conn, err := ln.Accept(ctx)
		if err != nil {
			return err
		}
		stream, err := conn.AcceptStream(ctx)
		if err != nil {
			fmt.Fprintf(os.Stderr, "accept stream from %s: %v\n", conn.RemoteAddr(), err)
			continue
		}
		go serve(quicStream{stream, conn})
	}
}

// serveConn answers every request frame on c with resp, its seq set to the request's.
func serveConn(c io.ReadWriteCloser, resp []byte) {
	defer c.Close()
	for {
		req, err := readFrame(c)
		if err != nil {
			if err != io.EOF {
				fmt.Fprintf(os.Stderr, "read request: %v\n", err)
			}
			return
		}
		out := make([]byte, len(resp))
		copy(out, resp)
		copy(out[4:12], req[4:12])
		if _, err := c.Write(out); err != nil {
			fmt.Fprintf(os.Stderr, "write response: %v\n", err)
			return
		}
	}
}
