package dingtalk

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
)

// permanentErr marks a failure no retry fixes. Send hands such errors to the
// hub as bot.Permanent; inside the package the mark must stay testable,
// which bot's own type is not.
type permanentErr struct{ error }

func (p permanentErr) Unwrap() error { return p.error }

func permanent(err error) error { return permanentErr{err} }

func isPermanent(err error) bool {
	var p permanentErr
	return errors.As(err, &p)
}

func newID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
