package dingtalk

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/open-dingtalk/dingtalk-stream-sdk-go/logger"

	"github.com/jingminhub/jingmin/bot"
)

// The SDK logs through one package-global logger that it sets lazily without
// a lock, so two clients starting at once would race on it: it is set once,
// here, before any client starts. Its Debugf dumps whole frames (residents'
// words, phone numbers) and some Errorf lines quote a raw message, so the
// bridge drops debug output and, in everything else, keeps numbers and
// errors (masked) but replaces every other argument with "-".
var (
	sdkLoggerOnce sync.Once
	sdkLogTarget  atomic.Pointer[slog.Logger]
)

// useSDKLogger points the SDK's log at log (the latest adapter to start wins;
// one process normally runs one).
func useSDKLogger(log *slog.Logger) {
	sdkLogTarget.Store(log.With("component", "dingtalk-sdk"))
	sdkLoggerOnce.Do(func() { logger.SetLogger(sdkLog{}) })
}

type sdkLog struct{}

var _ logger.ILogger = sdkLog{}

func (sdkLog) Debugf(string, ...interface{}) {}

func (sdkLog) Infof(format string, args ...interface{}) { sdkWrite(slog.LevelDebug, format, args) }

func (sdkLog) Warningf(format string, args ...interface{}) { sdkWrite(slog.LevelInfo, format, args) }

// Errorf is also how the SDK reports every connection closing, on purpose or
// not, so it is informational here; the adapter logs the trouble that
// matters (disconnected, cannot connect, lease lost) as warnings itself.
func (sdkLog) Errorf(format string, args ...interface{}) { sdkWrite(slog.LevelInfo, format, args) }

func (sdkLog) Fatalf(format string, args ...interface{}) { sdkWrite(slog.LevelError, format, args) }

func sdkWrite(level slog.Level, format string, args []interface{}) {
	log := sdkLogTarget.Load()
	if log == nil || !log.Enabled(context.Background(), level) {
		return
	}
	log.Log(context.Background(), level, redactf(format, args))
}

// redactf formats with only the arguments that cannot carry message text.
func redactf(format string, args []interface{}) string {
	safe := make([]interface{}, len(args))
	for i, a := range args {
		switch v := a.(type) {
		case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, bool:
			safe[i] = v
		case error:
			safe[i] = bot.Mask(bot.Truncate(v.Error(), 200))
		default:
			safe[i] = "-"
		}
	}
	return strings.TrimSpace(fmt.Sprintf(format, safe...))
}
