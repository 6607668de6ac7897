package wechat

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/silenceper/wechat/v2/util"
)

// WeCom's callback crypto (WXBizMsgCrypt): key = base64(EncodingAESKey+"="),
// AES-256-CBC with IV = key[:16], PKCS#7 padding to 32 bytes, plaintext =
// 16 random bytes + 4-byte big-endian length + message + receive id.
//
// The SDK's util.DecryptMsg (v2.1.14) refuses a plaintext whose receive id is
// empty ("msg length too large"), and an internal intelligent robot's receive
// id is exactly that, so the robot callback decrypts here. Encryption and
// signatures are the SDK's (util.EncryptMsg, util.Signature).

var (
	errSignature  = errors.New("signature does not match")
	errCiphertext = errors.New("ciphertext does not decrypt")
)

// aesKey decodes an EncodingAESKey into the 32-byte AES key.
func aesKey(encodingAESKey string) ([]byte, error) {
	if len(encodingAESKey) != 43 {
		return nil, fmt.Errorf("encoding aes key has %d characters, want 43", len(encodingAESKey))
	}
	key, err := base64.StdEncoding.DecodeString(encodingAESKey + "=")
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("encoding aes key is not base64 of 32 bytes")
	}
	return key, nil
}

// decrypt opens a callback ciphertext and returns the message and the
// receive id found in it. It never panics on any input.
func decrypt(key []byte, b64 string) (msg []byte, receiveID string, err error) {
	ct, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, "", fmt.Errorf("%w: not base64", errCiphertext)
	}
	const blockSize = 32 // WeCom pads to 32, not AES's 16
	if len(ct) < blockSize || len(ct)%aes.BlockSize != 0 {
		return nil, "", fmt.Errorf("%w: length %d is not whole blocks", errCiphertext, len(ct))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, "", fmt.Errorf("aes key: %w", err)
	}
	pt := make([]byte, len(ct))
	cipher.NewCBCDecrypter(block, key[:aes.BlockSize]).CryptBlocks(pt, ct)
	pad := int(pt[len(pt)-1])
	if pad < 1 || pad > blockSize || pad > len(pt) {
		return nil, "", fmt.Errorf("%w: bad padding", errCiphertext)
	}
	pt = pt[:len(pt)-pad]
	if len(pt) < 20 {
		return nil, "", fmt.Errorf("%w: plaintext too short", errCiphertext)
	}
	n := binary.BigEndian.Uint32(pt[16:20])
	if uint64(n) > uint64(len(pt)-20) {
		return nil, "", fmt.Errorf("%w: message length %d past the end", errCiphertext, n)
	}
	end := 20 + int(n)
	return pt[20:end], string(pt[end:]), nil
}

// signatureOK compares in constant time, so a forger learns nothing from
// response times.
func signatureOK(got string, parts ...string) bool {
	want := util.Signature(parts...)
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}
