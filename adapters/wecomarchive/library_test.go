package wecomarchive_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jingminhub/jingmin/adapters/wechat/wecomtest"
	"github.com/jingminhub/jingmin/adapters/wecomarchive"
	"github.com/jingminhub/jingmin/adapters/wecomarchive/financetest"
)

// The vendor's C interface, loaded with purego from a library the C
// compiler built: pulled messages come back as chatdata JSON, a message
// decrypts with its random key, a wrong secret and a corrupt message are
// the library's error codes.
func TestLibraryLoadsAndPulls(t *testing.T) {
	srv := wecomtest.NewServer()
	defer srv.Close()
	lib, err := wecomarchive.LoadLibrary(financetest.Build(t))
	if err != nil {
		t.Fatal(err)
	}
	srv.Archive(1, wecomtest.ArchivedText{MsgID: "m1", From: "wmRes1", RoomID: "wrRoom", Text: "你好", At: time.Unix(1700000000, 0)})
	sdk, err := lib.New("corp", wecomtest.ArchiveSecret)
	if err != nil {
		t.Fatal(err)
	}
	defer sdk.Close()
	raw, err := sdk.ChatData(0, 100, srv.URL, "", 5)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), `"msgid":"m1"`) {
		t.Fatalf("chatdata %s lacks m1", raw)
	}
	if _, err := lib.Decrypt("0123456789abcdef", "00ff"); !errors.As(err, new(*wecomarchive.LibraryError)) {
		t.Fatalf("corrupt message: %v, want the library's error code", err)
	}
	bad, err := lib.New("corp", "wrong")
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	if raw, err := bad.ChatData(0, 100, srv.URL, "", 5); err != nil || !strings.Contains(string(raw), "301052") {
		t.Fatalf("wrong secret: %s %v, want errcode 301052 in the answer", raw, err)
	}
}

// A library that is not there is an error naming the path.
func TestMissingLibraryNamesThePath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "libWeWorkFinanceSdk_C.so")
	_, err := wecomarchive.LoadLibrary(path)
	if !errors.Is(err, wecomarchive.ErrLibrary) || !strings.Contains(err.Error(), path) {
		t.Fatalf("LoadLibrary(missing) = %v, want ErrLibrary naming %s", err, path)
	}
}
