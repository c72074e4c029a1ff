// Command kcpvectors prints the test vectors pinned in sextant-kcp's unit tests, computed by
// Debian's kcp-go and klauspost/reedsolomon: AES-CFB (kcp.NewAESBlockCrypt) of a fixed packet,
// pbkdf2-sha1 of rpcx-examples' pass and salt, and Reed-Solomon 10+3 parity of fixed shards.
// Build: GO111MODULE=off GOPATH=/usr/share/gocode go run main.go
package main

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"

	"github.com/klauspost/reedsolomon"
	kcp "github.com/xtaci/kcp-go"
	"golang.org/x/crypto/pbkdf2"
)

func main() {
	key := pbkdf2.Key([]byte("rpcx-key"), []byte("rpcx-salt"), 4096, 32, sha1.New)
	fmt.Printf("pbkdf2 %s\n", hex.EncodeToString(key))

	for _, klen := range []int{16, 24, 32} {
		k := make([]byte, klen)
		for i := range k {
			k[i] = byte(i + 1)
		}
		block, err := kcp.NewAESBlockCrypt(k)
		if err != nil {
			panic(err)
		}
		// 45 bytes: two full AES blocks and a partial one.
		pt := make([]byte, 45)
		for i := range pt {
			pt[i] = byte(i * 7)
		}
		ct := make([]byte, len(pt))
		block.Encrypt(ct, pt)
		fmt.Printf("aes%d %s\n", klen*8, hex.EncodeToString(ct))
	}

	enc, err := reedsolomon.New(10, 3)
	if err != nil {
		panic(err)
	}
	shards := make([][]byte, 13)
	for i := range shards {
		shards[i] = make([]byte, 8)
		if i < 10 {
			for j := range shards[i] {
				shards[i][j] = byte(i*31 + j*17 + 3)
			}
		}
	}
	if err := enc.Encode(shards); err != nil {
		panic(err)
	}
	for i := 10; i < 13; i++ {
		fmt.Printf("parity%d %s\n", i-10, hex.EncodeToString(shards[i]))
	}
}
