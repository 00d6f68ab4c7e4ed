package ggml

/*
#include "ggml.h"
*/
import "C"

import (
	"syscall"
	"unsafe"
)

// hugePage is the size of a transparent huge page on x86-64 and arm64 Linux (4 KiB base pages).
const hugePage = 2 << 20

// AdviseHugePages asks Linux to back the buffer with transparent huge pages (madvise MADV_HUGEPAGE), where the
// system's THP mode is "madvise" (the default of many distributions). Call it before the buffer is first
// written: pages are then faulted in as 2 MiB pages. Matrix-vector products (one generated token) stream every
// weight once and are bound by memory; with 4 KiB pages a 2 GB model touches half a million pages per token and
// the TLB misses cost several percent. llama.cpp mmaps the model file, and the page cache here serves it in large
// folios (FileHugePages in /proc/meminfo), so its weights get this for free. A buffer on a GPU, a buffer smaller
// than a huge page and a kernel without THP are left alone: the advice is only a hint.
func (buf *Buffer) AdviseHugePages() {
	if buf == nil || buf.b == nil || !C.ggml_backend_buffer_is_host(buf.b) {
		return
	}
	ptr := C.ggml_backend_buffer_get_base(buf.b)
	base := uintptr(ptr)
	size := uintptr(C.ggml_backend_buffer_get_size(buf.b))
	start := (base + hugePage - 1) &^ (hugePage - 1)
	end := (base + size) &^ (hugePage - 1)
	if end <= start {
		return
	}
	mem := unsafe.Slice((*byte)(unsafe.Add(ptr, start-base)), end-start)
	_ = syscall.Madvise(mem, syscall.MADV_HUGEPAGE) // EINVAL without THP: nothing to do
}
