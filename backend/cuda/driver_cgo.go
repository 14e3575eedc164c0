//go:build linux && cgo

package cuda

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdio.h>
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

// Own minimal typedefs of the CUDA driver API (cuda.h is not needed).
// Every handle crosses into Go as a uint64_t so Go never holds C pointers.
typedef int CUresult;
typedef int CUdevice;
typedef unsigned long long CUdeviceptr;
typedef void *CUcontext, *CUmodule, *CUfunction, *CUstream, *CUevent, *CUgraph, *CUgraphExec;

static void *cu_lib;
static CUresult (*p_cuInit)(unsigned int);
static CUresult (*p_cuDriverGetVersion)(int *);
static CUresult (*p_cuGetErrorName)(CUresult, const char **);
static CUresult (*p_cuGetErrorString)(CUresult, const char **);
static CUresult (*p_cuDeviceGetCount)(int *);
static CUresult (*p_cuDeviceGet)(CUdevice *, int);
static CUresult (*p_cuDeviceGetName)(char *, int, CUdevice);
static CUresult (*p_cuDeviceGetAttribute)(int *, int, CUdevice);
static CUresult (*p_cuDeviceTotalMem)(size_t *, CUdevice);
static CUresult (*p_cuDeviceGetPCIBusId)(char *, int, CUdevice);
static CUresult (*p_cuDevicePrimaryCtxRetain)(CUcontext *, CUdevice);
static CUresult (*p_cuDevicePrimaryCtxRelease)(CUdevice);
static CUresult (*p_cuCtxSetCurrent)(CUcontext);
static CUresult (*p_cuCtxSynchronize)(void);
static CUresult (*p_cuMemAlloc)(CUdeviceptr *, size_t);
static CUresult (*p_cuMemFree)(CUdeviceptr);
static CUresult (*p_cuMemAllocHost)(void **, size_t);
static CUresult (*p_cuMemFreeHost)(void *);
static CUresult (*p_cuMemGetInfo)(size_t *, size_t *);
static CUresult (*p_cuMemcpyHtoDAsync)(CUdeviceptr, const void *, size_t, CUstream);
static CUresult (*p_cuMemcpyDtoHAsync)(void *, CUdeviceptr, size_t, CUstream);
static CUresult (*p_cuMemcpyDtoDAsync)(CUdeviceptr, CUdeviceptr, size_t, CUstream);
static CUresult (*p_cuMemsetD32Async)(CUdeviceptr, unsigned int, size_t, CUstream);
static CUresult (*p_cuModuleLoadData)(CUmodule *, const void *);
static CUresult (*p_cuModuleUnload)(CUmodule);
static CUresult (*p_cuModuleGetFunction)(CUfunction *, CUmodule, const char *);
static CUresult (*p_cuFuncSetAttribute)(CUfunction, int, int);
static CUresult (*p_cuLaunchKernel)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
                                    unsigned, CUstream, void **, void **);
static CUresult (*p_cuStreamCreate)(CUstream *, unsigned int);
static CUresult (*p_cuStreamDestroy)(CUstream);
static CUresult (*p_cuStreamSynchronize)(CUstream);
static CUresult (*p_cuEventCreate)(CUevent *, unsigned int);
static CUresult (*p_cuEventDestroy)(CUevent);
static CUresult (*p_cuEventRecord)(CUevent, CUstream);
static CUresult (*p_cuEventSynchronize)(CUevent);
static CUresult (*p_cuEventElapsedTime)(float *, CUevent, CUevent);
static CUresult (*p_cuStreamBeginCapture)(CUstream, int);
static CUresult (*p_cuStreamEndCapture)(CUstream, CUgraph *);
static CUresult (*p_cuGraphInstantiateWithFlags)(CUgraphExec *, CUgraph, unsigned long long);
static CUresult (*p_cuGraphLaunch)(CUgraphExec, CUstream);
static CUresult (*p_cuGraphExecDestroy)(CUgraphExec);
static CUresult (*p_cuGraphDestroy)(CUgraph);

// cu_load opens the driver and resolves every symbol. It returns NULL on
// success, else a static message naming what failed (dlerror text or the
// missing symbol).
static char cu_msg[512];
static const char *cu_load(void) {
	if (cu_lib) return NULL;
	void *h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		const char *e = dlerror();
		snprintf(cu_msg, sizeof cu_msg, "dlopen libcuda.so.1: %s", e ? e : "unknown error");
		return cu_msg;
	}
#define LOAD(field, name) \
	*(void **)(&field) = dlsym(h, name); \
	if (!field) { snprintf(cu_msg, sizeof cu_msg, "dlsym %s: missing in libcuda.so.1", name); dlclose(h); return cu_msg; }
	LOAD(p_cuInit, "cuInit");
	LOAD(p_cuDriverGetVersion, "cuDriverGetVersion");
	LOAD(p_cuGetErrorName, "cuGetErrorName");
	LOAD(p_cuGetErrorString, "cuGetErrorString");
	LOAD(p_cuDeviceGetCount, "cuDeviceGetCount");
	LOAD(p_cuDeviceGet, "cuDeviceGet");
	LOAD(p_cuDeviceGetName, "cuDeviceGetName");
	LOAD(p_cuDeviceGetAttribute, "cuDeviceGetAttribute");
	LOAD(p_cuDeviceTotalMem, "cuDeviceTotalMem_v2");
	LOAD(p_cuDeviceGetPCIBusId, "cuDeviceGetPCIBusId");
	LOAD(p_cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain");
	LOAD(p_cuDevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2");
	LOAD(p_cuCtxSetCurrent, "cuCtxSetCurrent");
	LOAD(p_cuCtxSynchronize, "cuCtxSynchronize");
	LOAD(p_cuMemAlloc, "cuMemAlloc_v2");
	LOAD(p_cuMemFree, "cuMemFree_v2");
	LOAD(p_cuMemAllocHost, "cuMemAllocHost_v2");
	LOAD(p_cuMemFreeHost, "cuMemFreeHost");
	LOAD(p_cuMemGetInfo, "cuMemGetInfo_v2");
	LOAD(p_cuMemcpyHtoDAsync, "cuMemcpyHtoDAsync_v2");
	LOAD(p_cuMemcpyDtoHAsync, "cuMemcpyDtoHAsync_v2");
	LOAD(p_cuMemcpyDtoDAsync, "cuMemcpyDtoDAsync_v2");
	LOAD(p_cuMemsetD32Async, "cuMemsetD32Async");
	LOAD(p_cuModuleLoadData, "cuModuleLoadData");
	LOAD(p_cuModuleUnload, "cuModuleUnload");
	LOAD(p_cuModuleGetFunction, "cuModuleGetFunction");
	LOAD(p_cuFuncSetAttribute, "cuFuncSetAttribute");
	LOAD(p_cuLaunchKernel, "cuLaunchKernel");
	LOAD(p_cuStreamCreate, "cuStreamCreate");
	LOAD(p_cuStreamDestroy, "cuStreamDestroy_v2");
	LOAD(p_cuStreamSynchronize, "cuStreamSynchronize");
	LOAD(p_cuEventCreate, "cuEventCreate");
	LOAD(p_cuEventDestroy, "cuEventDestroy_v2");
	LOAD(p_cuEventRecord, "cuEventRecord");
	LOAD(p_cuEventSynchronize, "cuEventSynchronize");
	LOAD(p_cuEventElapsedTime, "cuEventElapsedTime");
	LOAD(p_cuStreamBeginCapture, "cuStreamBeginCapture_v2");
	LOAD(p_cuStreamEndCapture, "cuStreamEndCapture");
	LOAD(p_cuGraphInstantiateWithFlags, "cuGraphInstantiateWithFlags");
	LOAD(p_cuGraphLaunch, "cuGraphLaunch");
	LOAD(p_cuGraphExecDestroy, "cuGraphExecDestroy");
	LOAD(p_cuGraphDestroy, "cuGraphDestroy");
#undef LOAD
	cu_lib = h;
	return NULL;
}

static const char *cu_error_name(CUresult r) {
	const char *s = NULL;
	if (!p_cuGetErrorName || p_cuGetErrorName(r, &s) != 0 || !s) return "CUDA_ERROR_UNKNOWN_CODE";
	return s;
}
static const char *cu_error_string(CUresult r) {
	const char *s = NULL;
	if (!p_cuGetErrorString || p_cuGetErrorString(r, &s) != 0 || !s) return "";
	return s;
}

// Trampolines: Go cannot call C function pointers directly.
static CUresult t_cuInit(void) { return p_cuInit(0); }
static CUresult t_cuDriverGetVersion(int *v) { return p_cuDriverGetVersion(v); }
static CUresult t_cuDeviceGetCount(int *n) { return p_cuDeviceGetCount(n); }
static CUresult t_cuDeviceGet(int *d, int ord) { return p_cuDeviceGet(d, ord); }
static CUresult t_cuDeviceGetName(char *b, int n, int d) { return p_cuDeviceGetName(b, n, d); }
static CUresult t_cuDeviceGetAttribute(int *v, int a, int d) { return p_cuDeviceGetAttribute(v, a, d); }
static CUresult t_cuDeviceTotalMem(uint64_t *v, int d) { size_t s = 0; CUresult r = p_cuDeviceTotalMem(&s, d); *v = s; return r; }
static CUresult t_cuDeviceGetPCIBusId(char *b, int n, int d) { return p_cuDeviceGetPCIBusId(b, n, d); }
static CUresult t_cuDevicePrimaryCtxRetain(uint64_t *c, int d) { CUcontext x = 0; CUresult r = p_cuDevicePrimaryCtxRetain(&x, d); *c = (uint64_t)(uintptr_t)x; return r; }
static CUresult t_cuDevicePrimaryCtxRelease(int d) { return p_cuDevicePrimaryCtxRelease(d); }
static CUresult t_cuCtxSetCurrent(uint64_t c) { return p_cuCtxSetCurrent((CUcontext)(uintptr_t)c); }
static CUresult t_cuCtxSynchronize(void) { return p_cuCtxSynchronize(); }
static CUresult t_cuMemAlloc(uint64_t *p, uint64_t n) { CUdeviceptr x = 0; CUresult r = p_cuMemAlloc(&x, (size_t)n); *p = x; return r; }
static CUresult t_cuMemFree(uint64_t p) { return p_cuMemFree((CUdeviceptr)p); }
static CUresult t_cuMemAllocHost(void **p, uint64_t n) { return p_cuMemAllocHost(p, (size_t)n); }
static CUresult t_cuMemFreeHost(void *p) { return p_cuMemFreeHost(p); }
static CUresult t_cuMemGetInfo(uint64_t *f, uint64_t *t) { size_t a = 0, b = 0; CUresult r = p_cuMemGetInfo(&a, &b); *f = a; *t = b; return r; }
static CUresult t_cuMemcpyHtoDAsync(uint64_t dst, const void *src, uint64_t n, uint64_t s) { return p_cuMemcpyHtoDAsync((CUdeviceptr)dst, src, (size_t)n, (CUstream)(uintptr_t)s); }
static CUresult t_cuMemcpyDtoHAsync(void *dst, uint64_t src, uint64_t n, uint64_t s) { return p_cuMemcpyDtoHAsync(dst, (CUdeviceptr)src, (size_t)n, (CUstream)(uintptr_t)s); }
static CUresult t_cuMemcpyDtoDAsync(uint64_t dst, uint64_t src, uint64_t n, uint64_t s) { return p_cuMemcpyDtoDAsync((CUdeviceptr)dst, (CUdeviceptr)src, (size_t)n, (CUstream)(uintptr_t)s); }
static CUresult t_cuMemsetD32Async(uint64_t dst, unsigned int v, uint64_t n, uint64_t s) { return p_cuMemsetD32Async((CUdeviceptr)dst, v, (size_t)n, (CUstream)(uintptr_t)s); }
static CUresult t_cuModuleLoadData(uint64_t *m, const void *img) { CUmodule x = 0; CUresult r = p_cuModuleLoadData(&x, img); *m = (uint64_t)(uintptr_t)x; return r; }
static CUresult t_cuModuleUnload(uint64_t m) { return p_cuModuleUnload((CUmodule)(uintptr_t)m); }
static CUresult t_cuModuleGetFunction(uint64_t *f, uint64_t m, const char *name) { CUfunction x = 0; CUresult r = p_cuModuleGetFunction(&x, (CUmodule)(uintptr_t)m, name); *f = (uint64_t)(uintptr_t)x; return r; }
static CUresult t_cuFuncSetAttribute(uint64_t f, int a, int v) { return p_cuFuncSetAttribute((CUfunction)(uintptr_t)f, a, v); }
// t_cuLaunchKernel takes every kernel argument as one 8-byte slot (a value of
// at most 8 bytes stored little-endian at the slot's start); the driver
// copies the values during the call, so slots may be reused afterwards.
static CUresult t_cuLaunchKernel(uint64_t f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                                 unsigned shmem, uint64_t s, uint64_t *slots, int n) {
	void *params[32];
	if (n < 0 || n > 32) return 1; // CUDA_ERROR_INVALID_VALUE
	for (int i = 0; i < n; i++) params[i] = &slots[i];
	return p_cuLaunchKernel((CUfunction)(uintptr_t)f, gx, gy, gz, bx, by, bz, shmem, (CUstream)(uintptr_t)s, params, NULL);
}
static CUresult t_cuStreamCreate(uint64_t *s, unsigned flags) { CUstream x = 0; CUresult r = p_cuStreamCreate(&x, flags); *s = (uint64_t)(uintptr_t)x; return r; }
static CUresult t_cuStreamDestroy(uint64_t s) { return p_cuStreamDestroy((CUstream)(uintptr_t)s); }
static CUresult t_cuStreamSynchronize(uint64_t s) { return p_cuStreamSynchronize((CUstream)(uintptr_t)s); }
static CUresult t_cuEventCreate(uint64_t *e, unsigned flags) { CUevent x = 0; CUresult r = p_cuEventCreate(&x, flags); *e = (uint64_t)(uintptr_t)x; return r; }
static CUresult t_cuEventDestroy(uint64_t e) { return p_cuEventDestroy((CUevent)(uintptr_t)e); }
static CUresult t_cuEventRecord(uint64_t e, uint64_t s) { return p_cuEventRecord((CUevent)(uintptr_t)e, (CUstream)(uintptr_t)s); }
static CUresult t_cuEventSynchronize(uint64_t e) { return p_cuEventSynchronize((CUevent)(uintptr_t)e); }
static CUresult t_cuEventElapsedTime(float *ms, uint64_t a, uint64_t b) { return p_cuEventElapsedTime(ms, (CUevent)(uintptr_t)a, (CUevent)(uintptr_t)b); }
static CUresult t_cuStreamBeginCapture(uint64_t s, int mode) { return p_cuStreamBeginCapture((CUstream)(uintptr_t)s, mode); }
static CUresult t_cuStreamEndCapture(uint64_t s, uint64_t *g) { CUgraph x = 0; CUresult r = p_cuStreamEndCapture((CUstream)(uintptr_t)s, &x); *g = (uint64_t)(uintptr_t)x; return r; }
static CUresult t_cuGraphInstantiate(uint64_t *e, uint64_t g) { CUgraphExec x = 0; CUresult r = p_cuGraphInstantiateWithFlags(&x, (CUgraph)(uintptr_t)g, 0); *e = (uint64_t)(uintptr_t)x; return r; }
static CUresult t_cuGraphLaunch(uint64_t e, uint64_t s) { return p_cuGraphLaunch((CUgraphExec)(uintptr_t)e, (CUstream)(uintptr_t)s); }
static CUresult t_cuGraphExecDestroy(uint64_t e) { return p_cuGraphExecDestroy((CUgraphExec)(uintptr_t)e); }
static CUresult t_cuGraphDestroy(uint64_t g) { return p_cuGraphDestroy((CUgraph)(uintptr_t)g); }

// ---- NVML (optional) ----
typedef int nvmlReturn_t;
typedef void *nvmlDevice_t;
typedef struct { unsigned long long total, free, used; } nvmlMemory_t;
static void *nv_lib;
static nvmlReturn_t (*p_nvmlInit)(void);
static const char *(*p_nvmlErrorString)(nvmlReturn_t);
static nvmlReturn_t (*p_nvmlDeviceGetHandleByPciBusId)(const char *, nvmlDevice_t *);
static nvmlReturn_t (*p_nvmlDeviceGetPowerUsage)(nvmlDevice_t, unsigned int *);
static nvmlReturn_t (*p_nvmlDeviceGetTotalEnergyConsumption)(nvmlDevice_t, unsigned long long *);
static nvmlReturn_t (*p_nvmlDeviceGetMemoryInfo)(nvmlDevice_t, nvmlMemory_t *);
static const char *nv_load(void) {
	if (nv_lib) return NULL;
	void *h = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		const char *e = dlerror();
		snprintf(cu_msg, sizeof cu_msg, "dlopen libnvidia-ml.so.1: %s", e ? e : "unknown error");
		return cu_msg;
	}
#define LOAD(field, name) \
	*(void **)(&field) = dlsym(h, name); \
	if (!field) { snprintf(cu_msg, sizeof cu_msg, "dlsym %s: missing in libnvidia-ml.so.1", name); dlclose(h); return cu_msg; }
	LOAD(p_nvmlInit, "nvmlInit_v2");
	LOAD(p_nvmlErrorString, "nvmlErrorString");
	LOAD(p_nvmlDeviceGetHandleByPciBusId, "nvmlDeviceGetHandleByPciBusId_v2");
	LOAD(p_nvmlDeviceGetPowerUsage, "nvmlDeviceGetPowerUsage");
	LOAD(p_nvmlDeviceGetTotalEnergyConsumption, "nvmlDeviceGetTotalEnergyConsumption");
	LOAD(p_nvmlDeviceGetMemoryInfo, "nvmlDeviceGetMemoryInfo");
#undef LOAD
	int r = p_nvmlInit();
	if (r != 0) {
		snprintf(cu_msg, sizeof cu_msg, "nvmlInit_v2: %s (%d)", p_nvmlErrorString(r), r);
		dlclose(h);
		return cu_msg;
	}
	nv_lib = h;
	return NULL;
}
static const char *nv_error_string(int r) { return p_nvmlErrorString ? p_nvmlErrorString(r) : "NVML not loaded"; }
static int t_nvmlHandle(const char *bus, uint64_t *h) { nvmlDevice_t x = 0; int r = p_nvmlDeviceGetHandleByPciBusId(bus, &x); *h = (uint64_t)(uintptr_t)x; return r; }
static int t_nvmlPower(uint64_t h, unsigned int *mw) { return p_nvmlDeviceGetPowerUsage((nvmlDevice_t)(uintptr_t)h, mw); }
static int t_nvmlEnergy(uint64_t h, unsigned long long *mj) { return p_nvmlDeviceGetTotalEnergyConsumption((nvmlDevice_t)(uintptr_t)h, mj); }
static int t_nvmlMemory(uint64_t h, uint64_t *total, uint64_t *used) {
	nvmlMemory_t m; memset(&m, 0, sizeof m);
	int r = p_nvmlDeviceGetMemoryInfo((nvmlDevice_t)(uintptr_t)h, &m);
	*total = m.total; *used = m.used;
	return r;
}
*/
import "C"

import (
	"fmt"
	"sync"
	"unsafe"
)

var (
	loadOnce sync.Once
	loadErr  error
)

// check turns a CUresult into nil or an *Error carrying the driver's name.
func check(op string, r C.CUresult) error {
	if r == 0 {
		return nil
	}
	return &Error{Op: op, Code: int(r), Name: C.GoString(C.cu_error_name(r)), Desc: C.GoString(C.cu_error_string(r))}
}

// drvLoad dlopens libcuda.so.1 and calls cuInit(0), once per process.
func drvLoad() error {
	loadOnce.Do(func() {
		if msg := C.cu_load(); msg != nil {
			loadErr = fmt.Errorf("%w: %s", ErrNoDevice, C.GoString(msg))
			return
		}
		if err := check("cuInit", C.t_cuInit()); err != nil {
			loadErr = fmt.Errorf("%w: %v", ErrNoDevice, err)
		}
	})
	return loadErr
}

func drvDriverVersion() (int, error) {
	var v C.int
	return int(v), check("cuDriverGetVersion", C.t_cuDriverGetVersion(&v))
}

func drvDeviceCount() (int, error) {
	var n C.int
	return int(n), check("cuDeviceGetCount", C.t_cuDeviceGetCount(&n))
}

func drvDeviceGet(ordinal int) (int, error) {
	var d C.int
	return int(d), check("cuDeviceGet", C.t_cuDeviceGet(&d, C.int(ordinal)))
}

func drvDeviceName(dev int) (string, error) {
	var buf [256]C.char
	if err := check("cuDeviceGetName", C.t_cuDeviceGetName(&buf[0], C.int(len(buf)), C.int(dev))); err != nil {
		return "", err
	}
	return C.GoString(&buf[0]), nil
}

func drvDeviceAttr(attr, dev int) (int, error) {
	var v C.int
	return int(v), check("cuDeviceGetAttribute", C.t_cuDeviceGetAttribute(&v, C.int(attr), C.int(dev)))
}

func drvDeviceTotalMem(dev int) (uint64, error) {
	var v C.uint64_t
	return uint64(v), check("cuDeviceTotalMem", C.t_cuDeviceTotalMem(&v, C.int(dev)))
}

func drvDevicePCIBusID(dev int) (string, error) {
	var buf [64]C.char
	if err := check("cuDeviceGetPCIBusId", C.t_cuDeviceGetPCIBusId(&buf[0], C.int(len(buf)), C.int(dev))); err != nil {
		return "", err
	}
	return C.GoString(&buf[0]), nil
}

func drvPrimaryCtxRetain(dev int) (uint64, error) {
	var c C.uint64_t
	return uint64(c), check("cuDevicePrimaryCtxRetain", C.t_cuDevicePrimaryCtxRetain(&c, C.int(dev)))
}

func drvPrimaryCtxRelease(dev int) error {
	return check("cuDevicePrimaryCtxRelease", C.t_cuDevicePrimaryCtxRelease(C.int(dev)))
}

func drvCtxSetCurrent(ctx uint64) error {
	return check("cuCtxSetCurrent", C.t_cuCtxSetCurrent(C.uint64_t(ctx)))
}

func drvCtxSynchronize() error { return check("cuCtxSynchronize", C.t_cuCtxSynchronize()) }

func drvMemAlloc(n int64) (DevPtr, error) {
	var p C.uint64_t
	return DevPtr(p), check("cuMemAlloc", C.t_cuMemAlloc(&p, C.uint64_t(n)))
}

func drvMemFree(p DevPtr) error { return check("cuMemFree", C.t_cuMemFree(C.uint64_t(p))) }

// drvMemAllocHost returns page-locked host memory of n bytes, viewed as a
// byte slice backed by C memory (not by the Go heap).
func drvMemAllocHost(n int) ([]byte, error) {
	var p unsafe.Pointer
	if err := check("cuMemAllocHost", C.t_cuMemAllocHost(&p, C.uint64_t(n))); err != nil {
		return nil, err
	}
	return unsafe.Slice((*byte)(p), n), nil
}

func drvMemFreeHost(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	return check("cuMemFreeHost", C.t_cuMemFreeHost(unsafe.Pointer(&b[0])))
}

func drvMemGetInfo() (free, total uint64, err error) {
	var f, t C.uint64_t
	err = check("cuMemGetInfo", C.t_cuMemGetInfo(&f, &t))
	return uint64(f), uint64(t), err
}

func drvMemcpyHtoDAsync(dst DevPtr, src []byte, stream uint64) error {
	if len(src) == 0 {
		return nil
	}
	return check("cuMemcpyHtoDAsync", C.t_cuMemcpyHtoDAsync(C.uint64_t(dst), unsafe.Pointer(&src[0]), C.uint64_t(len(src)), C.uint64_t(stream)))
}

func drvMemcpyDtoHAsync(dst []byte, src DevPtr, stream uint64) error {
	if len(dst) == 0 {
		return nil
	}
	return check("cuMemcpyDtoHAsync", C.t_cuMemcpyDtoHAsync(unsafe.Pointer(&dst[0]), C.uint64_t(src), C.uint64_t(len(dst)), C.uint64_t(stream)))
}

func drvMemcpyDtoDAsync(dst, src DevPtr, n int64, stream uint64) error {
	return check("cuMemcpyDtoDAsync", C.t_cuMemcpyDtoDAsync(C.uint64_t(dst), C.uint64_t(src), C.uint64_t(n), C.uint64_t(stream)))
}

func drvMemsetD32Async(dst DevPtr, v uint32, n int64, stream uint64) error {
	return check("cuMemsetD32Async", C.t_cuMemsetD32Async(C.uint64_t(dst), C.uint(v), C.uint64_t(n), C.uint64_t(stream)))
}

// drvModuleLoadData loads a cubin, PTX or fatbin image. The image is copied
// into C memory first: the driver may read it after cgo's pinning ends.
func drvModuleLoadData(image []byte) (uint64, error) {
	if len(image) == 0 {
		return 0, fmt.Errorf("cuda: empty module image")
	}
	p := C.malloc(C.size_t(len(image) + 1))
	defer C.free(p)
	buf := unsafe.Slice((*byte)(p), len(image)+1)
	copy(buf, image)
	buf[len(image)] = 0 // PTX images must be NUL-terminated
	var m C.uint64_t
	return uint64(m), check("cuModuleLoadData", C.t_cuModuleLoadData(&m, p))
}

func drvModuleUnload(m uint64) error {
	return check("cuModuleUnload", C.t_cuModuleUnload(C.uint64_t(m)))
}

func drvModuleGetFunction(m uint64, name string) (uint64, error) {
	cs := C.CString(name)
	defer C.free(unsafe.Pointer(cs))
	var f C.uint64_t
	if err := check("cuModuleGetFunction", C.t_cuModuleGetFunction(&f, C.uint64_t(m), cs)); err != nil {
		return 0, fmt.Errorf("kernel %q: %w", name, err)
	}
	return uint64(f), nil
}

func drvFuncSetAttribute(f uint64, attr, v int) error {
	return check("cuFuncSetAttribute", C.t_cuFuncSetAttribute(C.uint64_t(f), C.int(attr), C.int(v)))
}

// drvLaunch launches f with one 8-byte slot per kernel argument.
func drvLaunch(f uint64, grid, block [3]uint32, shmem uint32, stream uint64, slots []uint64) error {
	var p *C.uint64_t
	if len(slots) > 0 {
		p = (*C.uint64_t)(unsafe.Pointer(&slots[0]))
	}
	return check("cuLaunchKernel", C.t_cuLaunchKernel(C.uint64_t(f),
		C.uint(grid[0]), C.uint(grid[1]), C.uint(grid[2]),
		C.uint(block[0]), C.uint(block[1]), C.uint(block[2]),
		C.uint(shmem), C.uint64_t(stream), p, C.int(len(slots))))
}

func drvStreamCreate(flags uint32) (uint64, error) {
	var s C.uint64_t
	return uint64(s), check("cuStreamCreate", C.t_cuStreamCreate(&s, C.uint(flags)))
}

func drvStreamDestroy(s uint64) error {
	return check("cuStreamDestroy", C.t_cuStreamDestroy(C.uint64_t(s)))
}

func drvStreamSynchronize(s uint64) error {
	return check("cuStreamSynchronize", C.t_cuStreamSynchronize(C.uint64_t(s)))
}

func drvEventCreate(flags uint32) (uint64, error) {
	var e C.uint64_t
	return uint64(e), check("cuEventCreate", C.t_cuEventCreate(&e, C.uint(flags)))
}

func drvEventDestroy(e uint64) error {
	return check("cuEventDestroy", C.t_cuEventDestroy(C.uint64_t(e)))
}

func drvEventRecord(e, s uint64) error {
	return check("cuEventRecord", C.t_cuEventRecord(C.uint64_t(e), C.uint64_t(s)))
}

func drvEventSynchronize(e uint64) error {
	return check("cuEventSynchronize", C.t_cuEventSynchronize(C.uint64_t(e)))
}

func drvEventElapsed(a, b uint64) (float32, error) {
	var ms C.float
	return float32(ms), check("cuEventElapsedTime", C.t_cuEventElapsedTime(&ms, C.uint64_t(a), C.uint64_t(b)))
}

func drvStreamBeginCapture(s uint64, mode int) error {
	return check("cuStreamBeginCapture", C.t_cuStreamBeginCapture(C.uint64_t(s), C.int(mode)))
}

func drvStreamEndCapture(s uint64) (uint64, error) {
	var g C.uint64_t
	return uint64(g), check("cuStreamEndCapture", C.t_cuStreamEndCapture(C.uint64_t(s), &g))
}

func drvGraphInstantiate(g uint64) (uint64, error) {
	var e C.uint64_t
	return uint64(e), check("cuGraphInstantiateWithFlags", C.t_cuGraphInstantiate(&e, C.uint64_t(g)))
}

func drvGraphLaunch(e, s uint64) error {
	return check("cuGraphLaunch", C.t_cuGraphLaunch(C.uint64_t(e), C.uint64_t(s)))
}

func drvGraphExecDestroy(e uint64) error {
	return check("cuGraphExecDestroy", C.t_cuGraphExecDestroy(C.uint64_t(e)))
}

func drvGraphDestroy(g uint64) error {
	return check("cuGraphDestroy", C.t_cuGraphDestroy(C.uint64_t(g)))
}

// ---- NVML ----

var (
	nvmlOnce sync.Once
	nvmlErr  error
)

func nvmlLoad() error {
	nvmlOnce.Do(func() {
		if msg := C.nv_load(); msg != nil {
			nvmlErr = fmt.Errorf("nvml: %s", C.GoString(msg))
		}
	})
	return nvmlErr
}

func nvmlCheck(op string, r C.int) error {
	if r == 0 {
		return nil
	}
	return fmt.Errorf("nvml: %s: %s (%d)", op, C.GoString(C.nv_error_string(r)), int(r))
}

func nvmlHandleByPCI(busID string) (uint64, error) {
	if err := nvmlLoad(); err != nil {
		return 0, err
	}
	cs := C.CString(busID)
	defer C.free(unsafe.Pointer(cs))
	var h C.uint64_t
	return uint64(h), nvmlCheck("nvmlDeviceGetHandleByPciBusId", C.t_nvmlHandle(cs, &h))
}

func nvmlPowerMilliwatts(h uint64) (uint32, error) {
	var mw C.uint
	return uint32(mw), nvmlCheck("nvmlDeviceGetPowerUsage", C.t_nvmlPower(C.uint64_t(h), &mw))
}

func nvmlEnergyMillijoules(h uint64) (uint64, error) {
	var mj C.ulonglong
	return uint64(mj), nvmlCheck("nvmlDeviceGetTotalEnergyConsumption", C.t_nvmlEnergy(C.uint64_t(h), &mj))
}

func nvmlMemory(h uint64) (total, used uint64, err error) {
	var t, u C.uint64_t
	err = nvmlCheck("nvmlDeviceGetMemoryInfo", C.t_nvmlMemory(C.uint64_t(h), &t, &u))
	return uint64(t), uint64(u), err
}
