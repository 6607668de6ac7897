package store

import (
	"sync"

	"modernc.org/libc"
	"modernc.org/libc/sys/types"
)

// The pure-Go SQLite allocates through modernc.org/memory, which carves each
// size class out of 1 MiB mmap'd pages and unmaps a page the moment its last
// object is freed. SQLite's parser and statement journals allocate and free a
// few objects per statement, so on a quiet class every statement paid an mmap,
// page faults and an munmap: a third of the CPU of a ticket transaction. One
// object held forever in each class keeps its page mapped, and the free list
// on it is reused instead. Cost: one page per class, touched only as used.
var pinOnce sync.Once

func pinAllocatorPages() {
	pinOnce.Do(func() {
		tls := libc.NewTLS() // lives as long as the process, like the pins
		for log := 4; log <= 18; log++ {
			libc.Xmalloc(tls, types.Size_t(1)<<log)
		}
	})
}
