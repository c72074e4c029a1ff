// Command kcpecho is the kcp-go side of sextant-kcp's interop test, built against Debian's
// golang-github-xtaci-kcp-dev (GO111MODULE=off GOPATH=/usr/share/gocode go build).
//
//	kcpecho server -addr 127.0.0.1:0 -pass P -salt S   echo server; prints "LISTEN <addr>", then
//	                                                   "STATS ..." every 200 ms
//	kcpecho client -addr A -pass P -salt S -bytes N    writes N bytes, reads them back, checks
//	                                                   them, prints "OK ..." and exits 0
//
// Sessions are configured as rpcx-examples' kcp server and client do: AES from
// pbkdf2-sha1(pass, salt, 4096, 32), FEC 10/3, SetStreamMode(true), SetACKNoDelay(true).
package main

import (
	"crypto/sha1"
	"flag"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	kcp "github.com/xtaci/kcp-go"
	"golang.org/x/crypto/pbkdf2"
)

func fail(format string, args ...interface{}) {
	fmt.Printf("FAIL "+format+"\n", args...)
	os.Exit(1)
}

func pattern(i int) byte { return byte((i*7 + i/251) & 0xff) }

func stats() string {
	s := kcp.DefaultSnmp.Copy()
	return fmt.Sprintf("fec_recovered=%d fec_parity=%d csum_errors=%d in_pkts=%d out_pkts=%d",
		s.FECRecovered, s.FECParityShards, s.InCsumErrors, s.InPkts, s.OutPkts)
}

func main() {
	if len(os.Args) < 2 {
		fail("usage: kcpecho server|client [flags]")
	}
	mode := os.Args[1]
	fs := flag.NewFlagSet(mode, flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:0", "address")
	pass := fs.String("pass", "rpcx-key", "pbkdf2 password")
	salt := fs.String("salt", "rpcx-salt", "pbkdf2 salt")
	nbytes := fs.Int("bytes", 1<<20, "client: bytes to echo")
	timeout := fs.Duration("timeout", 60*time.Second, "give up after")
	fs.Parse(os.Args[2:])

	key := pbkdf2.Key([]byte(*pass), []byte(*salt), 4096, 32, sha1.New)
	block, err := kcp.NewAESBlockCrypt(key)
	if err != nil {
		fail("cipher: %v", err)
	}

	// Never outlive the test.
	go func() {
		time.Sleep(*timeout)
		fail("timeout after %v", *timeout)
	}()

	switch mode {
	case "server":
		ln, err := kcp.ListenWithOptions(*addr, block, 10, 3)
		if err != nil {
			fail("listen: %v", err)
		}
		fmt.Printf("LISTEN %s\n", ln.Addr())
		go func() {
			for {
				time.Sleep(200 * time.Millisecond)
				fmt.Printf("STATS %s\n", stats())
			}
		}()
		for {
			s, err := ln.AcceptKCP()
			if err != nil {
				fail("accept: %v", err)
			}
			s.SetStreamMode(true)
			s.SetACKNoDelay(true)
			go io.Copy(s, s)
		}
	case "client":
		s, err := kcp.DialWithOptions(*addr, block, 10, 3)
		if err != nil {
			fail("dial: %v", err)
		}
		s.SetStreamMode(true)
		s.SetACKNoDelay(true)
		start := time.Now()
		var written int64
		go func() {
			buf := make([]byte, 16*1024)
			for off := 0; off < *nbytes; {
				n := len(buf)
				if *nbytes-off < n {
					n = *nbytes - off
				}
				for i := 0; i < n; i++ {
					buf[i] = pattern(off + i)
				}
				if _, err := s.Write(buf[:n]); err != nil {
					fail("write: %v", err)
				}
				off += n
				atomic.StoreInt64(&written, int64(off))
			}
		}()
		buf := make([]byte, 64*1024)
		for got := 0; got < *nbytes; {
			n, err := s.Read(buf)
			if err != nil {
				fail("read after %d bytes: %v", got, err)
			}
			for i := 0; i < n; i++ {
				if buf[i] != pattern(got+i) {
					fail("byte %d: got %d want %d", got+i, buf[i], pattern(got+i))
				}
			}
			got += n
		}
		el := time.Since(start)
		fmt.Printf("OK bytes=%d elapsed_ms=%d %s\n", *nbytes, el.Milliseconds(), stats())
		s.Close()
	default:
		fail("unknown mode %q", mode)
	}
}
