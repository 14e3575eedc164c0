package cuda

import (
	"errors"
	"fmt"
)

// ErrNoDevice is returned (wrapped) when no CUDA driver or device can be
// used: the build has no cgo or is not linux, libcuda.so.1 cannot be loaded,
// cuInit fails, or the requested ordinal does not exist.
var ErrNoDevice = errors.New("cuda: no usable CUDA device")

// ErrOutsideDo is returned by Ctx methods called after the Device.Do call
// that handed out the Ctx has returned.
var ErrOutsideDo = errors.New("cuda: Ctx used outside Device.Do")

// ErrClosed is returned by a Device after Close.
var ErrClosed = errors.New("cuda: device closed")

// Error is a failed CUDA driver call. Name is the CUresult's symbolic name
// (for example "CUDA_ERROR_OUT_OF_MEMORY") as reported by cuGetErrorName.
type Error struct {
	Op   string // driver function, e.g. "cuMemAlloc"
	Code int    // CUresult value
	Name string // symbolic name, e.g. CUDA_ERROR_INVALID_VALUE
	Desc string // cuGetErrorString text, may be empty
}

func (e *Error) Error() string {
	if e.Desc != "" {
		return fmt.Sprintf("cuda: %s: %s (%d): %s", e.Op, e.Name, e.Code, e.Desc)
	}
	return fmt.Sprintf("cuda: %s: %s (%d)", e.Op, e.Name, e.Code)
}
