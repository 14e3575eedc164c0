package cuda

import (
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"sync"
)

// Driver enum values used here (from cuda.h, which this package does not include).
const (
	attrMaxThreadsPerBlock    = 1
	attrClockRateKHz          = 13
	attrMultiprocessorCount   = 16
	attrMemoryClockRateKHz    = 36
	attrGlobalMemoryBusWidth  = 37
	attrL2CacheSize           = 38
	attrComputeCapMajor       = 75
	attrComputeCapMinor       = 76
	attrMaxSharedPerBlockOpt  = 97
	funcAttrMaxDynamicShared  = 8
	streamNonBlocking         = 1
	eventDefault              = 0
	captureModeThreadLocal    = 1
	defaultDynamicSharedLimit = 48 << 10
)

// DevPtr is a device address (CUdeviceptr).
type DevPtr uint64

// Buffer is a view of device memory: Bytes bytes starting at Ptr. Buffers
// are plain values; Slice makes sub-views. Only a Buffer returned by Alloc
// may be passed to Free.
type Buffer struct {
	ptr   DevPtr
	bytes int64
}

// Ptr returns the view's device address.
func (b Buffer) Ptr() DevPtr { return b.ptr }

// Bytes returns the view's length in bytes.
func (b Buffer) Bytes() int64 { return b.bytes }

// Slice returns the n-byte view starting off bytes into b, or an error when
// it would leave b.
func (b Buffer) Slice(off, n int64) (Buffer, error) {
	if off < 0 || n < 0 || off > b.bytes || n > b.bytes-off {
		return Buffer{}, fmt.Errorf("cuda: slice [%d, %d+%d) outside a %d-byte buffer", off, off, n, b.bytes)
	}
	return Buffer{ptr: b.ptr + DevPtr(off), bytes: n}, nil
}

// Info describes an opened device. Fields the driver did not report are zero.
type Info struct {
	Ordinal        int
	Name           string
	PCIBusID       string
	CCMajor        int // compute capability
	CCMinor        int
	SMs            int    // multiprocessors
	TotalMem       uint64 // bytes
	L2Bytes        int
	MaxSharedOptin int // largest dynamic shared memory a block may opt into, bytes
	DriverVersion  int // e.g. 13000 for CUDA 13.0
}

// Device is one GPU with its primary context, one stream and the loaded
// kernel module, owned by a goroutine locked to its OS thread (see the
// package documentation for the threading model).
type Device struct {
	info Info
	work chan func()
	mu   sync.Mutex // guards closed and sends on work
	done chan struct{}
	ctx  *Ctx

	closed bool

	nvmlOnce sync.Once
	nvml     uint64
	nvmlErr  error
}

// Open opens CUDA device `ordinal` (0-based). It fails with an error
// wrapping ErrNoDevice when the driver cannot be loaded or the ordinal does
// not exist, and with the driver's error when the kernel module does not
// load (for example a fatbin without code for this GPU).
func Open(ordinal int) (*Device, error) {
	if err := drvLoad(); err != nil {
		return nil, err
	}
	n, err := drvDeviceCount()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoDevice, err)
	}
	if ordinal < 0 || ordinal >= n {
		return nil, fmt.Errorf("%w: device %d requested, %d present", ErrNoDevice, ordinal, n)
	}
	image, err := kernelImage()
	if err != nil {
		return nil, err
	}
	d := &Device{work: make(chan func()), done: make(chan struct{})}
	initErr := make(chan error, 1)
	go d.loop(ordinal, image, initErr)
	if err := <-initErr; err != nil {
		return nil, err
	}
	return d, nil
}

// loop is the owner goroutine: it locks its OS thread, sets the context up,
// then runs submitted work until Close.
func (d *Device) loop(ordinal int, image []byte, initErr chan<- error) {
	runtime.LockOSThread()
	defer close(d.done)
	c, err := newCtx(d, ordinal, image)
	if err != nil {
		initErr <- err
		return
	}
	d.ctx = c
	d.info = c.info
	initErr <- nil
	for fn := range d.work {
		fn()
	}
	c.destroy()
}

func newCtx(d *Device, ordinal int, image []byte) (*Ctx, error) {
	dev, err := drvDeviceGet(ordinal)
	if err != nil {
		return nil, err
	}
	info := Info{Ordinal: ordinal}
	if info.Name, err = drvDeviceName(dev); err != nil {
		return nil, err
	}
	info.PCIBusID, _ = drvDevicePCIBusID(dev)
	info.TotalMem, _ = drvDeviceTotalMem(dev)
	info.DriverVersion, _ = drvDriverVersion()
	for _, a := range []struct {
		attr int
		dst  *int
	}{
		{attrComputeCapMajor, &info.CCMajor}, {attrComputeCapMinor, &info.CCMinor},
		{attrMultiprocessorCount, &info.SMs}, {attrL2CacheSize, &info.L2Bytes},
		{attrMaxSharedPerBlockOpt, &info.MaxSharedOptin},
	} {
		*a.dst, _ = drvDeviceAttr(a.attr, dev)
	}
	ctx, err := drvPrimaryCtxRetain(dev)
	if err != nil {
		return nil, err
	}
	c := &Ctx{d: d, info: info, dev: dev, ctxHandle: ctx, allocs: map[DevPtr]int64{}, shared: map[string]int{}}
	if err := drvCtxSetCurrent(ctx); err != nil {
		c.destroy()
		return nil, err
	}
	if c.stream, err = drvStreamCreate(streamNonBlocking); err != nil {
		c.destroy()
		return nil, err
	}
	if c.module, err = drvModuleLoadData(image); err != nil {
		c.destroy()
		return nil, fmt.Errorf("cuda: loading kernels (sm_%d%d): %w", info.CCMajor, info.CCMinor, err)
	}
	c.fn = make(map[string]uint64, len(kernelNames))
	for _, name := range kernelNames {
		f, err := drvModuleGetFunction(c.module, name)
		if err != nil {
			c.destroy()
			return nil, err
		}
		c.fn[name] = f
	}
	return c, nil
}

// Info returns what the driver reported about the device at Open.
func (d *Device) Info() Info { return d.info }

// Do runs fn on the device's owner goroutine and returns fn's error. The
// *Ctx is valid only until fn returns. Calls are serialised; do not call
// Device methods from within fn (deadlock).
func (d *Device) Do(fn func(c *Ctx) error) error {
	var err error
	ran := make(chan struct{})
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return ErrClosed
	}
	d.work <- func() {
		defer close(ran)
		c := d.ctx
		c.active = true
		defer func() { c.active = false }()
		err = fn(c)
	}
	d.mu.Unlock()
	<-ran
	return err
}

// Close frees every allocation still live, the stream, the module and the
// context reference, and stops the owner goroutine. It is idempotent.
func (d *Device) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	close(d.work)
	d.mu.Unlock()
	<-d.done
	return nil
}

// Alloc allocates n bytes of device memory (one Do round trip).
func (d *Device) Alloc(n int64) (Buffer, error) {
	var b Buffer
	err := d.Do(func(c *Ctx) error { var e error; b, e = c.Alloc(n); return e })
	return b, err
}

// Free frees a Buffer returned by Alloc.
func (d *Device) Free(b Buffer) error { return d.Do(func(c *Ctx) error { return c.Free(b) }) }

// Upload copies src to the start of dst and waits for the copy.
func (d *Device) Upload(dst Buffer, src []byte) error {
	return d.Do(func(c *Ctx) error { return c.Upload(dst, src) })
}

// Download copies the first len(dst) bytes of src to dst and waits.
func (d *Device) Download(dst []byte, src Buffer) error {
	return d.Do(func(c *Ctx) error { return c.Download(dst, src) })
}

// Sync waits until all work enqueued on the device's stream has finished.
func (d *Device) Sync() error { return d.Do(func(c *Ctx) error { return c.Sync() }) }

// Telemetry is a reading from NVML. A field is meaningful only when its Has*
// flag is set; Err says why NVML gave nothing, if it gave nothing.
type Telemetry struct {
	PowerW    float64 // board power now, watts
	HasPower  bool
	EnergyJ   float64 // energy since the driver was loaded, joules
	HasEnergy bool
	MemUsed   uint64 // bytes in use on the device (all processes)
	MemTotal  uint64
	HasMem    bool
	Err       error
}

// Telemetry reads power, energy and memory from NVML for this device
// (matched by PCI bus id). Safe for concurrent use; does not use the owner
// goroutine.
func (d *Device) Telemetry() Telemetry {
	d.nvmlOnce.Do(func() {
		if d.info.PCIBusID == "" {
			d.nvmlErr = errors.New("nvml: device has no PCI bus id")
			return
		}
		d.nvml, d.nvmlErr = nvmlHandleByPCI(d.info.PCIBusID)
	})
	var t Telemetry
	if d.nvmlErr != nil {
		t.Err = d.nvmlErr
		return t
	}
	var errs []error
	if mw, err := nvmlPowerMilliwatts(d.nvml); err == nil {
		t.PowerW, t.HasPower = float64(mw)/1000, true
	} else {
		errs = append(errs, err)
	}
	if mj, err := nvmlEnergyMillijoules(d.nvml); err == nil {
		t.EnergyJ, t.HasEnergy = float64(mj)/1000, true
	} else {
		errs = append(errs, err)
	}
	if total, used, err := nvmlMemory(d.nvml); err == nil {
		t.MemTotal, t.MemUsed, t.HasMem = total, used, true
	} else {
		errs = append(errs, err)
	}
	t.Err = errors.Join(errs...)
	return t
}

// Ctx is the owner goroutine's handle on the device: direct driver calls
// and kernel launches, all enqueued on one stream. Valid only inside Do.
type Ctx struct {
	d         *Device
	info      Info
	dev       int
	ctxHandle uint64
	stream    uint64
	module    uint64
	fn        map[string]uint64
	shared    map[string]int // dynamic shared memory limit set per kernel
	allocs    map[DevPtr]int64
	hosts     [][]byte
	active    bool
	capturing bool
	slots     [32]uint64
}

func (c *Ctx) destroy() {
	for p := range c.allocs {
		_ = drvMemFree(p)
	}
	c.allocs = nil
	for _, h := range c.hosts {
		_ = drvMemFreeHost(h)
	}
	c.hosts = nil
	if c.module != 0 {
		_ = drvModuleUnload(c.module)
		c.module = 0
	}
	if c.stream != 0 {
		_ = drvStreamDestroy(c.stream)
		c.stream = 0
	}
	if c.ctxHandle != 0 {
		_ = drvPrimaryCtxRelease(c.dev)
		c.ctxHandle = 0
	}
}

func (c *Ctx) ok() error {
	if !c.active {
		return ErrOutsideDo
	}
	return nil
}

// Info returns the device description.
func (c *Ctx) Info() Info { return c.info }

// Alloc allocates n > 0 bytes of device memory (256-byte aligned).
func (c *Ctx) Alloc(n int64) (Buffer, error) {
	if err := c.ok(); err != nil {
		return Buffer{}, err
	}
	if n <= 0 {
		return Buffer{}, fmt.Errorf("cuda: Alloc of %d bytes", n)
	}
	p, err := drvMemAlloc(n)
	if err != nil {
		return Buffer{}, fmt.Errorf("allocating %d bytes: %w", n, err)
	}
	c.allocs[p] = n
	return Buffer{ptr: p, bytes: n}, nil
}

// Free frees a Buffer returned by Alloc (not a Slice of one).
func (c *Ctx) Free(b Buffer) error {
	if err := c.ok(); err != nil {
		return err
	}
	if n, ok := c.allocs[b.ptr]; !ok || n != b.bytes {
		return fmt.Errorf("cuda: Free of %#x (%d bytes): not an allocation of this device", uint64(b.ptr), b.bytes)
	}
	delete(c.allocs, b.ptr)
	return drvMemFree(b.ptr)
}

// AllocHost returns n bytes of page-locked host memory (C memory, not Go
// heap), freed at Close or by FreeHost. Copies from it are truly
// asynchronous.
func (c *Ctx) AllocHost(n int) ([]byte, error) {
	if err := c.ok(); err != nil {
		return nil, err
	}
	if n <= 0 {
		return nil, fmt.Errorf("cuda: AllocHost of %d bytes", n)
	}
	b, err := drvMemAllocHost(n)
	if err != nil {
		return nil, err
	}
	c.hosts = append(c.hosts, b)
	return b, nil
}

// FreeHost frees memory from AllocHost.
func (c *Ctx) FreeHost(b []byte) error {
	if err := c.ok(); err != nil {
		return err
	}
	for i, h := range c.hosts {
		if len(b) > 0 && len(h) == len(b) && &h[0] == &b[0] {
			c.hosts = append(c.hosts[:i], c.hosts[i+1:]...)
			return drvMemFreeHost(h)
		}
	}
	return errors.New("cuda: FreeHost of memory not from AllocHost")
}

func (c *Ctx) noCapture(op string) error {
	if c.capturing {
		return fmt.Errorf("cuda: %s is not allowed during graph capture", op)
	}
	return nil
}

// Upload copies src to the start of dst and waits for it.
func (c *Ctx) Upload(dst Buffer, src []byte) error {
	if err := c.UploadAsync(dst, src); err != nil {
		return err
	}
	return c.Sync()
}

// UploadAsync enqueues a copy of src to the start of dst. A pageable (Go)
// src may be reused when this returns (the driver stages it); memory from
// AllocHost must stay unchanged until the stream passes the copy.
func (c *Ctx) UploadAsync(dst Buffer, src []byte) error {
	if err := c.ok(); err != nil {
		return err
	}
	if err := c.noCapture("Upload"); err != nil {
		return err
	}
	if int64(len(src)) > dst.bytes {
		return fmt.Errorf("cuda: upload of %d bytes into a %d-byte buffer", len(src), dst.bytes)
	}
	return drvMemcpyHtoDAsync(dst.ptr, src, c.stream)
}

// Download copies the first len(dst) bytes of src into dst, after all work
// enqueued before it, and waits.
func (c *Ctx) Download(dst []byte, src Buffer) error {
	if err := c.ok(); err != nil {
		return err
	}
	if err := c.noCapture("Download"); err != nil {
		return err
	}
	if int64(len(dst)) > src.bytes {
		return fmt.Errorf("cuda: download of %d bytes from a %d-byte buffer", len(dst), src.bytes)
	}
	if err := drvMemcpyDtoHAsync(dst, src.ptr, c.stream); err != nil {
		return err
	}
	return c.Sync()
}

// Copy enqueues a device-to-device copy of n bytes from the start of src to
// the start of dst; both views must hold n bytes.
func (c *Ctx) Copy(dst, src Buffer, n int64) error {
	if err := c.ok(); err != nil {
		return err
	}
	if n < 0 || n > dst.bytes || n > src.bytes {
		return fmt.Errorf("cuda: copy of %d bytes between buffers of %d and %d bytes", n, dst.bytes, src.bytes)
	}
	return drvMemcpyDtoDAsync(dst.ptr, src.ptr, n, c.stream)
}

// Fill32 enqueues setting every 32-bit word of dst (Bytes/4 words) to v.
func (c *Ctx) Fill32(dst Buffer, v uint32) error {
	if err := c.ok(); err != nil {
		return err
	}
	if dst.bytes%4 != 0 || dst.ptr%4 != 0 {
		return fmt.Errorf("cuda: Fill32 needs a 4-byte aligned view, got %#x+%d", uint64(dst.ptr), dst.bytes)
	}
	return drvMemsetD32Async(dst.ptr, v, dst.bytes/4, c.stream)
}

// FillF32 enqueues setting every float32 of dst to v (e.g. NaN poison).
func (c *Ctx) FillF32(dst Buffer, v float32) error { return c.Fill32(dst, math.Float32bits(v)) }

// Sync waits for all enqueued work and reports the first asynchronous error.
func (c *Ctx) Sync() error {
	if err := c.ok(); err != nil {
		return err
	}
	if err := c.noCapture("Sync"); err != nil {
		return err
	}
	return drvStreamSynchronize(c.stream)
}

// MemInfo returns free and total device memory in bytes.
func (c *Ctx) MemInfo() (free, total uint64, err error) {
	if err := c.ok(); err != nil {
		return 0, 0, err
	}
	return drvMemGetInfo()
}

// Event is a CUDA event for timing work on the stream.
type Event struct{ h uint64 }

// NewEvent creates a timing event (destroyed by DestroyEvent).
func (c *Ctx) NewEvent() (Event, error) {
	if err := c.ok(); err != nil {
		return Event{}, err
	}
	h, err := drvEventCreate(eventDefault)
	return Event{h}, err
}

// DestroyEvent destroys an event from NewEvent.
func (c *Ctx) DestroyEvent(e Event) error {
	if err := c.ok(); err != nil {
		return err
	}
	return drvEventDestroy(e.h)
}

// Record enqueues e on the stream.
func (c *Ctx) Record(e Event) error {
	if err := c.ok(); err != nil {
		return err
	}
	return drvEventRecord(e.h, c.stream)
}

// Elapsed waits for `to` and returns the milliseconds between two recorded events.
func (c *Ctx) Elapsed(from, to Event) (float32, error) {
	if err := c.ok(); err != nil {
		return 0, err
	}
	if err := drvEventSynchronize(to.h); err != nil {
		return 0, err
	}
	return drvEventElapsed(from.h, to.h)
}

// Graph is an instantiated CUDA graph (a captured launch sequence).
type Graph struct{ exec uint64 }

// BeginCapture starts recording the stream's work into a graph instead of
// running it. Until EndCapture, Upload, Download and Sync fail.
func (c *Ctx) BeginCapture() error {
	if err := c.ok(); err != nil {
		return err
	}
	if c.capturing {
		return errors.New("cuda: BeginCapture while already capturing")
	}
	if err := drvStreamBeginCapture(c.stream, captureModeThreadLocal); err != nil {
		return err
	}
	c.capturing = true
	return nil
}

// EndCapture stops recording and instantiates the graph.
func (c *Ctx) EndCapture() (*Graph, error) {
	if err := c.ok(); err != nil {
		return nil, err
	}
	if !c.capturing {
		return nil, errors.New("cuda: EndCapture without BeginCapture")
	}
	c.capturing = false
	g, err := drvStreamEndCapture(c.stream)
	if err != nil {
		return nil, err
	}
	defer drvGraphDestroy(g)
	exec, err := drvGraphInstantiate(g)
	if err != nil {
		return nil, err
	}
	return &Graph{exec: exec}, nil
}

// LaunchGraph enqueues one replay of g on the stream.
func (c *Ctx) LaunchGraph(g *Graph) error {
	if err := c.ok(); err != nil {
		return err
	}
	if g == nil || g.exec == 0 {
		return errors.New("cuda: LaunchGraph of a nil or destroyed graph")
	}
	return drvGraphLaunch(g.exec, c.stream)
}

// DestroyGraph frees g.
func (c *Ctx) DestroyGraph(g *Graph) error {
	if err := c.ok(); err != nil {
		return err
	}
	if g == nil || g.exec == 0 {
		return nil
	}
	err := drvGraphExecDestroy(g.exec)
	g.exec = 0
	return err
}

// launch enqueues kernel `name` with one 8-byte slot per argument.
func (c *Ctx) launch(name string, grid, block [3]uint32, shmem int, args ...uint64) error {
	if err := c.ok(); err != nil {
		return err
	}
	f, ok := c.fn[name]
	if !ok {
		return fmt.Errorf("cuda: kernel %q not loaded", name)
	}
	for i, g := range grid {
		if g == 0 || (i > 0 && g > 65535) || g > math.MaxInt32 {
			return fmt.Errorf("cuda: %s: grid %v out of range", name, grid)
		}
	}
	if shmem > defaultDynamicSharedLimit {
		if shmem > c.info.MaxSharedOptin {
			return fmt.Errorf("cuda: %s needs %d bytes of shared memory, device allows %d", name, shmem, c.info.MaxSharedOptin)
		}
		if c.shared[name] < shmem {
			if err := drvFuncSetAttribute(f, funcAttrMaxDynamicShared, shmem); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			c.shared[name] = shmem
		}
	}
	n := copy(c.slots[:], args)
	if n != len(args) {
		return fmt.Errorf("cuda: %s: %d arguments, at most %d", name, len(args), len(c.slots))
	}
	if err := drvLaunch(f, grid, block, uint32(shmem), c.stream, c.slots[:n]); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// kernelImage returns the fatbin to load: the file named by
// GLMRUN_CUDA_FATBIN if set, else the embedded kernels/kernels.fatbin.
func kernelImage() ([]byte, error) {
	if p := os.Getenv("GLMRUN_CUDA_FATBIN"); p != "" {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("cuda: GLMRUN_CUDA_FATBIN: %w", err)
		}
		return b, nil
	}
	if len(embeddedFatbin) == 0 {
		return nil, errors.New("cuda: the embedded kernels.fatbin is empty: run tools/cuda/build_kernels.sh on a machine with nvcc")
	}
	return embeddedFatbin, nil
}
