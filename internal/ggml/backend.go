package ggml

/*
#include <stdlib.h>
#include "ggml.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"unsafe"
)

// BackendOptions chooses where graphs run.
type BackendOptions struct {
	// Device is "cpu" (default) or "cuda".
	Device string
	// CUDALibrary is the path of libggml-cuda.so (built by infra/build-cuda.sh); required for "cuda".
	CUDALibrary string
	// Threads for the CPU backend. 0: the number of cores.
	Threads int
	// GraphSize is the most nodes one graph may have (0: 16384).
	GraphSize int
}

// DefaultThreads is the number of cores, what Threads 0 means. ggml's CPU threads busy-wait, so more
// threads than free cores is very slow: callers that share the machine pass their own count. The engine
// reads no environment; the worker and CLI flags (and their EVOMERGE_* defaults) decide.
func DefaultThreads() int { return runtime.NumCPU() }

// Backend runs graphs on one device (plus the CPU for anything the device cannot run) through ggml's
// scheduler. The same code path serves CPU and CUDA. A Backend is used by one goroutine at a time.
type Backend struct {
	cpu       C.ggml_backend_t
	gpu       C.ggml_backend_t // nil on the CPU
	sched     C.ggml_backend_sched_t
	graphSize int
	opts      BackendOptions // as resolved: what a second backend for the same device is made from
	name      string
}

// NewBackend starts a backend.
func NewBackend(o BackendOptions) (*Backend, error) {
	if o.Device == "" {
		o.Device = "cpu"
	}
	if o.Threads <= 0 {
		o.Threads = DefaultThreads()
	}
	if o.GraphSize <= 0 {
		o.GraphSize = 16384
	}
	b := &Backend{graphSize: o.GraphSize, opts: o}
	b.cpu = C.ggml_backend_cpu_init()
	if b.cpu == nil {
		return nil, errors.New("ggml: cannot start the CPU backend")
	}
	C.ggml_backend_cpu_set_n_threads(b.cpu, C.int(o.Threads))
	switch o.Device {
	case "cpu":
		b.name = fmt.Sprintf("cpu (%d threads)", o.Threads)
	case "cuda":
		if err := b.startCUDA(o.CUDALibrary); err != nil {
			C.ggml_backend_free(b.cpu)
			return nil, err
		}
	default:
		C.ggml_backend_free(b.cpu)
		return nil, fmt.Errorf("ggml: unknown backend %q (want cpu or cuda)", o.Device)
	}
	backends := []C.ggml_backend_t{b.cpu}
	if b.gpu != nil {
		backends = []C.ggml_backend_t{b.gpu, b.cpu} // the scheduler wants the CPU last
	}
	arr := (*C.ggml_backend_t)(C.malloc(C.size_t(len(backends)) * C.size_t(unsafe.Sizeof(backends[0]))))
	defer C.free(unsafe.Pointer(arr))
	copy(unsafe.Slice(arr, len(backends)), backends)
	b.sched = C.ggml_backend_sched_new(arr, nil, C.int(len(backends)), C.size_t(o.GraphSize), false, false)
	if b.sched == nil {
		b.Close()
		return nil, errors.New("ggml: cannot create the scheduler")
	}
	return b, nil
}

func (b *Backend) startCUDA(lib string) error {
	if lib == "" {
		return errors.New("ggml: the cuda backend needs libggml-cuda.so: give its path (workers --cuda-library or EVOMERGE_CUDA_LIB; infra/build-cuda.sh builds it)")
	}
	if _, err := os.Stat(lib); err != nil {
		return fmt.Errorf("ggml: cuda library: %w", err)
	}
	cs := C.CString(lib)
	defer C.free(unsafe.Pointer(cs))
	if C.ggml_backend_load(cs) == nil {
		return fmt.Errorf("ggml: %s did not load as a ggml backend", lib)
	}
	dev := C.ggml_backend_dev_by_type(1) // GGML_BACKEND_DEVICE_TYPE_GPU
	if dev == nil {
		return fmt.Errorf("ggml: %s loaded but found no GPU", lib)
	}
	b.gpu = C.ggml_backend_dev_init(dev, nil)
	if b.gpu == nil {
		return errors.New("ggml: cannot start the GPU backend")
	}
	b.name = "cuda: " + C.GoString(C.ggml_backend_dev_description(dev))
	return nil
}

// Name describes the backend ("cpu (2 threads)", "cuda: NVIDIA H100 ...").
func (b *Backend) Name() string { return b.name }

// Threads is the CPU thread count.
func (b *Backend) Threads() int { return b.opts.Threads }

// Options are the options the backend was started with, defaults filled: NewBackend(b.Options()) starts
// another backend on the same device with the same threads.
func (b *Backend) Options() BackendOptions { return b.opts }

// GraphSize is the most nodes a graph on this backend may have.
func (b *Backend) GraphSize() int { return b.graphSize }

// Close frees the backend.
func (b *Backend) Close() {
	if b.sched != nil {
		C.ggml_backend_sched_free(b.sched)
		b.sched = nil
	}
	if b.gpu != nil {
		C.ggml_backend_free(b.gpu)
		b.gpu = nil
	}
	if b.cpu != nil {
		C.ggml_backend_free(b.cpu)
		b.cpu = nil
	}
}

// Buffer is device memory holding the data of a context's tensors.
type Buffer struct{ b C.ggml_backend_buffer_t }

// Alloc places every tensor of c in one buffer on the backend's main device.
func (b *Backend) Alloc(c *Context) (*Buffer, error) {
	dev := b.cpu
	if b.gpu != nil {
		dev = b.gpu
	}
	buf := C.ggml_backend_alloc_ctx_tensors(c.c, dev)
	if buf == nil {
		return nil, errors.New("ggml: out of device memory for tensors")
	}
	return &Buffer{buf}, nil
}

// Free releases the buffer.
func (buf *Buffer) Free() {
	if buf != nil && buf.b != nil {
		C.ggml_backend_buffer_free(buf.b)
		buf.b = nil
	}
}

// AllocGraph places the graph's intermediate tensors (after which inputs can be set).
func (b *Backend) AllocGraph(g Graph) error {
	C.ggml_backend_sched_reset(b.sched)
	if !C.ggml_backend_sched_alloc_graph(b.sched, g.g) {
		return errors.New("ggml: cannot allocate the graph")
	}
	return nil
}

// Compute runs an allocated graph.
func (b *Backend) Compute(g Graph) error {
	if st := C.ggml_backend_sched_graph_compute(b.sched, g.g); st != 0 {
		return fmt.Errorf("ggml: graph compute failed (status %d)", int(st))
	}
	return nil
}

// SetBytes copies raw data into the tensor (len(data) must equal its size).
func (t Tensor) SetBytes(data []byte) {
	if int64(len(data)) != t.Bytes() {
		panic(fmt.Sprintf("ggml: SetBytes of %d bytes into a tensor of %d", len(data), t.Bytes()))
	}
	if len(data) > 0 {
		C.ggml_backend_tensor_set(t.t, unsafe.Pointer(&data[0]), 0, C.size_t(len(data)))
	}
}

// SetF32 copies floats into an F32 tensor.
func (t Tensor) SetF32(v []float32) {
	t.SetBytes(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(v))), 4*len(v)))
}

// SetI32 copies ints into an I32 tensor.
func (t Tensor) SetI32(v []int32) {
	t.SetBytes(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(v))), 4*len(v)))
}

// Zero sets every byte of the tensor to 0.
func (t Tensor) Zero() { C.ggml_backend_tensor_memset(t.t, 0, 0, C.size_t(t.Bytes())) }

// ZeroRange sets n bytes of the tensor's data to 0, from byte offset on.
func (t Tensor) ZeroRange(offset, n int64) {
	if offset < 0 || n < 0 || offset+n > t.Bytes() {
		panic(fmt.Sprintf("ggml: ZeroRange %d+%d of a tensor of %d bytes", offset, n, t.Bytes()))
	}
	C.ggml_backend_tensor_memset(t.t, 0, C.size_t(offset), C.size_t(n))
}

// GetBytes copies the tensor's data out.
func (t Tensor) GetBytes(dst []byte) {
	if int64(len(dst)) != t.Bytes() {
		panic(fmt.Sprintf("ggml: GetBytes of %d bytes from a tensor of %d", len(dst), t.Bytes()))
	}
	if len(dst) > 0 {
		C.ggml_backend_tensor_get(t.t, unsafe.Pointer(&dst[0]), 0, C.size_t(len(dst)))
	}
}

// F32 returns the data of an F32 tensor.
func (t Tensor) F32() []float32 {
	v := make([]float32, t.Bytes()/4)
	t.GetBytes(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(v))), 4*len(v)))
	return v
}
