package wechat

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"github.com/silenceper/wechat/v2/util"
)

// WeCom's published callback sample (the WXBizMsgCrypt samples in every
// language): token, EncodingAESKey, corp id, the URL-verification request and
// an encrypted text message. Matching them byte for byte proves the
// signature and decryption are the platform's.
const (
	sampleToken       = "QDG6eK"
	sampleAESKey      = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
	sampleCorpID      = "wx5823bf96d3bd56c7"
	sampleVerifySig   = "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3"
	sampleVerifyTS    = "1409659589"
	sampleVerifyNonce = "263014780"
	sampleEchoStr     = "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ=="
	sampleMsgSig      = "477715d11cdb4164915debcba66cb864d751f3e6"
	sampleMsgTS       = "1409659813"
	sampleMsgNonce    = "1372623149"
	sampleEncrypt     = "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q=="
	sampleEchoPlain   = "1616140317555161061"
)

func TestOfficialSampleVerifiesAndDecrypts(t *testing.T) {
	key, err := aesKey(sampleAESKey)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("url verification", func(t *testing.T) {
		got, err := open(sampleToken, key, sampleCorpID, sampleVerifySig, sampleVerifyTS, sampleVerifyNonce, sampleEchoStr)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != sampleEchoPlain {
			t.Errorf("echostr = %q, want %q", got, sampleEchoPlain)
		}
	})
	t.Run("message", func(t *testing.T) {
		got, err := open(sampleToken, key, sampleCorpID, sampleMsgSig, sampleMsgTS, sampleMsgNonce, sampleEncrypt)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"<ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName>", "<FromUserName><![CDATA[mycreate]]></FromUserName>",
			"<Content><![CDATA[hello]]></Content>", "<MsgId>4561255354251345929</MsgId>", "<AgentID>218</AgentID>"} {
			if !strings.Contains(string(got), want) {
				t.Errorf("decrypted sample lacks %s:\n%s", want, got)
			}
		}
		// The SDK agrees when the receive id is not empty.
		_, sdk, err := util.DecryptMsg(sampleCorpID, sampleEncrypt, sampleAESKey)
		if err != nil || !bytes.Equal(sdk, got) {
			t.Errorf("SDK decryption = %q, %v; want ours", sdk, err)
		}
	})
	t.Run("one changed byte fails the signature", func(t *testing.T) {
		forged := sampleEncrypt[:10] + "A" + sampleEncrypt[11:]
		if _, err := open(sampleToken, key, sampleCorpID, sampleMsgSig, sampleMsgTS, sampleMsgNonce, forged); err != errSignature {
			t.Errorf("forged ciphertext: err = %v, want errSignature", err)
		}
		if _, err := open("other", key, sampleCorpID, sampleMsgSig, sampleMsgTS, sampleMsgNonce, sampleEncrypt); err != errSignature {
			t.Errorf("wrong token: err = %v, want errSignature", err)
		}
	})
	t.Run("wrong receive id", func(t *testing.T) {
		if _, err := open(sampleToken, key, "", sampleMsgSig, sampleMsgTS, sampleMsgNonce, sampleEncrypt); err == nil {
			t.Error("a message for corp wx5823bf96d3bd56c7 was accepted for receive id \"\"")
		}
	})
}

// TestSDKRejectsEmptyReceiveID pins the SDK bug that makes the robot decrypt
// on its own: util.DecryptMsg cannot open a message whose receive id is "",
// which is every internal intelligent robot's. When an upgrade fixes it this
// test fails, and the robot can go back to the SDK's decryption.
func TestSDKRejectsEmptyReceiveID(t *testing.T) {
	msg := []byte(`{"msgid":"m1","chattype":"group","chatid":"wrA","from":{"userid":"u1"},"msgtype":"text","text":{"content":"@太平警务 你好"}}`)
	ct, err := util.EncryptMsg(bytes.Repeat([]byte("r"), 16), msg, "", sampleAESKey)
	if err != nil {
		t.Fatal(err)
	}
	_, _, sdkErr := util.DecryptMsg("", string(ct), sampleAESKey)
	if sdkErr == nil || !strings.Contains(sdkErr.Error(), "msg length too large") {
		t.Errorf("SDK DecryptMsg with receive id \"\": err = %v; the SDK changed: review decrypt in crypto.go", sdkErr)
	}
	key, _ := aesKey(sampleAESKey)
	got, rid, err := decrypt(key, string(ct))
	if err != nil || rid != "" || !bytes.Equal(got, msg) {
		t.Errorf("decrypt = %q, %q, %v; want the message and receive id \"\"", got, rid, err)
	}
}

func TestDecryptRoundTripAndBadInput(t *testing.T) {
	key, _ := aesKey(sampleAESKey)
	for _, n := range []int{0, 1, 11, 12, 31, 32, 33, 1000} {
		msg := bytes.Repeat([]byte("x"), n)
		for _, rid := range []string{"", "wwcorp"} {
			ct, err := util.EncryptMsg(make([]byte, 16), msg, rid, sampleAESKey)
			if err != nil {
				t.Fatal(err)
			}
			got, gotRID, err := decrypt(key, string(ct))
			if err != nil || gotRID != rid || !bytes.Equal(got, msg) {
				t.Errorf("len %d rid %q: got %d bytes, %q, %v", n, rid, len(got), gotRID, err)
			}
		}
	}
	b64 := base64.StdEncoding.EncodeToString
	for name, ct := range map[string]string{
		"not base64":  "%%%",
		"empty":       "",
		"short":       b64(make([]byte, 16)),
		"not blocks":  b64(make([]byte, 40)),
		"zero blocks": b64(make([]byte, 64)),
		"garbage":     b64(bytes.Repeat([]byte{0xff}, 96)),
	} {
		if _, _, err := decrypt(key, ct); err == nil {
			t.Errorf("%s: decrypt accepted it", name)
		}
	}
	if _, err := aesKey("short"); err == nil {
		t.Error("aesKey accepted a short key")
	}
	if _, err := aesKey(strings.Repeat("!", 43)); err == nil {
		t.Error("aesKey accepted a key that is not base64")
	}
}

// open is the whole check a callback gets, as the handlers run it: the
// msg_signature over (token, timestamp, nonce, ciphertext), decryption, and
// the receive id.
func open(token string, key []byte, receiveID, signature, timestamp, nonce, ciphertext string) ([]byte, error) {
	if !signatureOK(signature, token, timestamp, nonce, ciphertext) {
		return nil, errSignature
	}
	msg, rid, err := decrypt(key, ciphertext)
	if err != nil {
		return nil, err
	}
	if rid != receiveID {
		return nil, fmt.Errorf("%w: receive id %q, want %q", errCiphertext, rid, receiveID)
	}
	return msg, nil
}
