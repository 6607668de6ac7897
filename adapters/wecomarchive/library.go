package wecomarchive

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"unsafe"

	"github.com/ebitengine/purego"
)

// Library is WeCom's conversation-archive library (libWeWorkFinanceSdk_C.so)
// loaded at run time with purego, so the binary stays CGO_ENABLED=0: the
// vendor ships only a C library, and a station installs it beside the hub.
type Library struct {
	path string

	newSdk      func() unsafe.Pointer
	initSdk     func(sdk unsafe.Pointer, corpID, secret string) int32
	getChatData func(sdk unsafe.Pointer, seq uint64, limit uint32, proxy, passwd string, timeout int32, slice unsafe.Pointer) int32
	decryptData func(key, msg string, slice unsafe.Pointer) int32
	newSlice    func() unsafe.Pointer
	freeSlice   func(slice unsafe.Pointer)
	content     func(slice unsafe.Pointer) *byte
	sliceLen    func(slice unsafe.Pointer) int32
	destroySdk  func(sdk unsafe.Pointer)
}

// ErrLibrary marks a library that is missing or cannot be used: the
// process is not ready until it can load it.
var ErrLibrary = errors.New("conversation-archive library unusable")

// LoadLibrary opens the library at path and finds the vendor's functions.
// A missing file or a library without them is an error naming the path.
func LoadLibrary(path string) (*Library, error) {
	if path == "" {
		return nil, fmt.Errorf("%w: no path configured (wechat.archive.library)", ErrLibrary)
	}
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrLibrary, path, err)
	}
	h, err := purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_LOCAL)
	if err != nil {
		return nil, fmt.Errorf("%w: load %s: %w", ErrLibrary, path, err)
	}
	l := &Library{path: path}
	for name, fn := range map[string]any{
		"NewSdk": &l.newSdk, "Init": &l.initSdk, "GetChatData": &l.getChatData, "DecryptData": &l.decryptData,
		"NewSlice": &l.newSlice, "FreeSlice": &l.freeSlice, "GetContentFromSlice": &l.content,
		"GetSliceLen": &l.sliceLen, "DestroySdk": &l.destroySdk,
	} {
		sym, err := purego.Dlsym(h, name)
		if err != nil {
			return nil, fmt.Errorf("%w: %s has no %s: %w", ErrLibrary, path, name, err)
		}
		purego.RegisterFunc(fn, sym)
	}
	return l, nil
}

// Path is where the library was loaded from.
func (l *Library) Path() string { return l.path }

// SDK is one initialised instance of the library for one corp. The
// vendor's library is not documented as safe for concurrent calls on one
// instance: calls are serialised.
type SDK struct {
	lib *Library
	mu  sync.Mutex
	sdk unsafe.Pointer
}

// LibraryError is a non-zero return code of the vendor library.
type LibraryError struct {
	Call string
	Code int32
}

func (e *LibraryError) Error() string {
	return fmt.Sprintf("%s returned %d (%s)", e.Call, e.Code, libraryCodes[e.Code])
}

// libraryCodes are the vendor header's return codes.
var libraryCodes = map[int32]string{
	10000: "bad parameters", 10001: "network error", 10002: "data could not be parsed or decrypted",
	10003: "system failure", 10004: "encryption key error", 10005: "bad fileid", 10006: "decryption failed",
	10007: "no private key for this key version", 10008: "bad encrypt_key", 10009: "ip not allowed",
	10010: "data expired", 10011: "certificate error",
}

// New makes an SDK instance and initialises it with the corp id and the
// archive secret.
func (l *Library) New(corpID, secret string) (*SDK, error) {
	sdk := l.newSdk()
	if sdk == nil {
		return nil, fmt.Errorf("%w: %s: NewSdk returned nothing", ErrLibrary, l.path)
	}
	if rc := l.initSdk(sdk, corpID, secret); rc != 0 {
		l.destroySdk(sdk)
		return nil, fmt.Errorf("init archive sdk for corp %s: %w", corpID, &LibraryError{"Init", rc})
	}
	return &SDK{lib: l, sdk: sdk}, nil
}

// ChatData pulls up to limit archived messages after seq: the archive's
// chatdata JSON.
func (s *SDK) ChatData(seq uint64, limit uint32, proxy, passwd string, timeoutSeconds int) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sdk == nil {
		return nil, errors.New("archive sdk is closed")
	}
	return s.lib.withSlice("GetChatData", func(slice unsafe.Pointer) int32 {
		return s.lib.getChatData(s.sdk, seq, limit, proxy, passwd, int32(timeoutSeconds), slice)
	})
}

// Decrypt opens one message's encrypt_chat_msg with its random key (already
// RSA-decrypted).
func (l *Library) Decrypt(randomKey, encrypted string) ([]byte, error) {
	return l.withSlice("DecryptData", func(slice unsafe.Pointer) int32 { return l.decryptData(randomKey, encrypted, slice) })
}

// withSlice runs call with a fresh Slice_t and copies out what it holds.
func (l *Library) withSlice(name string, call func(slice unsafe.Pointer) int32) ([]byte, error) {
	slice := l.newSlice()
	if slice == nil {
		return nil, fmt.Errorf("%s: NewSlice returned nothing", name)
	}
	defer l.freeSlice(slice)
	if rc := call(slice); rc != 0 {
		return nil, &LibraryError{name, rc}
	}
	n := l.sliceLen(slice)
	p := l.content(slice)
	if n <= 0 || p == nil {
		return nil, nil
	}
	return append([]byte(nil), unsafe.Slice(p, int(n))...), nil
}

// Close destroys the instance.
func (s *SDK) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sdk != nil {
		s.lib.destroySdk(s.sdk)
		s.sdk = nil
	}
}
