// trace_peer is the Go end of crates/sextant-plugins/tests/go_trace.rs: W3C trace context carried
// in rpcx request metadata exactly as rpcxio/rpcx-plugins carries it (the otel TraceContext
// propagator injecting into and extracting from the metadata map), on rpcx frames written and
// read with the layout of rpcx's protocol package.
//
//	trace_peer client ADDR TRACEID SPANID   sends one JSON request Trace.Parent whose metadata
//	                                        holds the injected context of that (sampled) span,
//	                                        with tracestate "go=1"; prints "metadata K=V" for
//	                                        each pair it sent and "reply <payload>"
//	trace_peer server                       listens on 127.0.0.1:0, prints "listening ADDR",
//	                                        reads one request, prints what the propagator
//	                                        extracts from its metadata
//	                                        ("extracted trace=.. span=.. sampled=.. remote=..
//	                                        state=.."), answers it with an empty reply and exits
package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"time"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

type message struct {
	flags, serialize byte
	seq              uint64
	path, method     string
	metadata         map[string]string
	payload          []byte
}

func putString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

func (m *message) encode() []byte {
	var rest []byte
	rest = putString(rest, m.path)
	rest = putString(rest, m.method)
	keys := make([]string, 0, len(m.metadata))
	for k := range m.metadata {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var meta []byte
	for _, k := range keys {
		meta = putString(meta, k)
		meta = putString(meta, m.metadata[k])
	}
	rest = binary.BigEndian.AppendUint32(rest, uint32(len(meta)))
	rest = append(rest, meta...)
	rest = binary.BigEndian.AppendUint32(rest, uint32(len(m.payload)))
	rest = append(rest, m.payload...)
	head := []byte{0x08, 0, m.flags, m.serialize << 4}
	head = binary.BigEndian.AppendUint64(head, m.seq)
	head = binary.BigEndian.AppendUint32(head, uint32(len(rest)))
	return append(head, rest...)
}

func readString(b []byte) (string, []byte, error) {
	if len(b) < 4 {
		return "", nil, errors.New("short frame")
	}
	n := binary.BigEndian.Uint32(b)
	if uint32(len(b)-4) < n {
		return "", nil, errors.New("short frame")
	}
	return string(b[4 : 4+n]), b[4+n:], nil
}

func read(r io.Reader) (*message, error) {
	head := make([]byte, 16)
	if _, err := io.ReadFull(r, head); err != nil {
		return nil, err
	}
	if head[0] != 0x08 {
		return nil, errors.New("bad magic number")
	}
	rest := make([]byte, binary.BigEndian.Uint32(head[12:]))
	if _, err := io.ReadFull(r, rest); err != nil {
		return nil, err
	}
	m := &message{flags: head[2], serialize: head[3] >> 4, seq: binary.BigEndian.Uint64(head[4:]), metadata: map[string]string{}}
	var err error
	if m.path, rest, err = readString(rest); err != nil {
		return nil, err
	}
	if m.method, rest, err = readString(rest); err != nil {
		return nil, err
	}
	meta, rest, err := readString(rest)
	if err != nil {
		return nil, err
	}
	mb := []byte(meta)
	for len(mb) > 0 {
		var k, v string
		if k, mb, err = readString(mb); err != nil {
			return nil, err
		}
		if v, mb, err = readString(mb); err != nil {
			return nil, err
		}
		m.metadata[k] = v
	}
	payload, _, err := readString(rest)
	m.payload = []byte(payload)
	return m, err
}

// carrier is rpcx-plugins' metadataSupplier: the request metadata map as a TextMapCarrier.
type carrier map[string]string

func (c carrier) Get(k string) string { return c[k] }
func (c carrier) Set(k, v string)      { c[k] = v }
func (c carrier) Keys() []string {
	out := make([]string, 0, len(c))
	for k := range c {
		out = append(out, k)
	}
	return out
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "trace_peer:", err)
	os.Exit(1)
}

func client(addr, traceID, spanID string) {
	tid, err := trace.TraceIDFromHex(traceID)
	if err != nil {
		fail(err)
	}
	sid, err := trace.SpanIDFromHex(spanID)
	if err != nil {
		fail(err)
	}
	state, err := trace.ParseTraceState("go=1")
	if err != nil {
		fail(err)
	}
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled, TraceState: state})
	ctx := trace.ContextWithSpanContext(context.Background(), sc)
	meta := carrier{}
	propagation.TraceContext{}.Inject(ctx, meta)
	keys := meta.Keys()
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Printf("metadata %s=%s\n", k, meta[k])
	}
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		fail(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	req := message{serialize: 1, seq: 1, path: "Trace", method: "Parent", metadata: meta, payload: []byte("null")}
	if _, err := conn.Write(req.encode()); err != nil {
		fail(err)
	}
	res, err := read(bufio.NewReader(conn))
	if err != nil {
		fail(err)
	}
	if res.flags&3 != 0 {
		fail(fmt.Errorf("error reply: %s", res.metadata["__rpcx_error__"]))
	}
	fmt.Printf("reply %s\n", res.payload)
}

func server() {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail(err)
	}
	fmt.Printf("listening %s\n", l.Addr())
	go func() {
		time.Sleep(30 * time.Second)
		fail(errors.New("no request within 30 s"))
	}()
	conn, err := l.Accept()
	if err != nil {
		fail(err)
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	for {
		req, err := read(r)
		if err != nil {
			fail(err)
		}
		if req.flags&0x40 != 0 { // a heartbeat: echo it
			req.flags |= 0x80
			conn.Write(req.encode())
			continue
		}
		ctx := propagation.TraceContext{}.Extract(context.Background(), carrier(req.metadata))
		sc := trace.SpanContextFromContext(ctx)
		fmt.Printf("extracted trace=%s span=%s sampled=%t remote=%t state=%s valid=%t\n",
			sc.TraceID(), sc.SpanID(), sc.IsSampled(), sc.IsRemote(), sc.TraceState().String(), sc.IsValid())
		res := message{flags: 0x80, serialize: req.serialize, seq: req.seq, path: req.path, method: req.method, metadata: map[string]string{}, payload: nil}
		if req.serialize == 1 {
			res.payload = []byte("null")
		} else if req.serialize == 3 {
			res.payload = []byte{0xc0}
		}
		if _, err := conn.Write(res.encode()); err != nil {
			fail(err)
		}
		return
	}
}

func main() {
	switch {
	case len(os.Args) == 5 && os.Args[1] == "client":
		client(os.Args[2], os.Args[3], os.Args[4])
	case len(os.Args) == 2 && os.Args[1] == "server":
		server()
	default:
		fail(errors.New("usage: trace_peer client ADDR TRACEID SPANID | trace_peer server"))
	}
}
