package bot_test

import (
	"testing"

	"github.com/jingminhub/jingmin/bot"
	"github.com/jingminhub/jingmin/bot/bustest"
)

func TestMemoryBusContract(t *testing.T) {
	bustest.Run(t, func(t *testing.T) bot.Bus { return bot.NewMemoryBus(0) })
}
