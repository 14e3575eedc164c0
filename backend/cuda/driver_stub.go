//go:build !(linux && cgo)

package cuda

import "fmt"

// This file gives builds without cgo (or off linux) the same internal driver
// API as driver_cgo.go; every entry point reports ErrNoDevice, so Open fails
// cleanly and callers fall back to the CPU.

var errStub = fmt.Errorf("%w: built without cgo on linux (CGO_ENABLED=0 or another OS)", ErrNoDevice)

func drvLoad() error                                  { return errStub }
func drvDriverVersion() (int, error)                  { return 0, errStub }
func drvDeviceCount() (int, error)                    { return 0, errStub }
func drvDeviceGet(int) (int, error)                   { return 0, errStub }
func drvDeviceName(int) (string, error)               { return "", errStub }
func drvDeviceAttr(int, int) (int, error)             { return 0, errStub }
func drvDeviceTotalMem(int) (uint64, error)           { return 0, errStub }
func drvDevicePCIBusID(int) (string, error)           { return "", errStub }
func drvPrimaryCtxRetain(int) (uint64, error)         { return 0, errStub }
func drvPrimaryCtxRelease(int) error                  { return errStub }
func drvCtxSetCurrent(uint64) error                   { return errStub }
func drvCtxSynchronize() error                        { return errStub }
func drvMemAlloc(int64) (DevPtr, error)               { return 0, errStub }
func drvMemFree(DevPtr) error                         { return errStub }
func drvMemAllocHost(int) ([]byte, error)             { return nil, errStub }
func drvMemFreeHost([]byte) error                     { return errStub }
func drvMemGetInfo() (uint64, uint64, error)          { return 0, 0, errStub }
func drvMemcpyHtoDAsync(DevPtr, []byte, uint64) error { return errStub }
func drvMemcpyDtoHAsync([]byte, DevPtr, uint64) error { return errStub }
func drvMemcpyDtoDAsync(DevPtr, DevPtr, int64, uint64) error {
	return errStub
}
func drvMemsetD32Async(DevPtr, uint32, int64, uint64) error { return errStub }
func drvModuleLoadData([]byte) (uint64, error)              { return 0, errStub }
func drvModuleUnload(uint64) error                          { return errStub }
func drvModuleGetFunction(uint64, string) (uint64, error)   { return 0, errStub }
func drvFuncSetAttribute(uint64, int, int) error            { return errStub }
func drvLaunch(uint64, [3]uint32, [3]uint32, uint32, uint64, []uint64) error {
	return errStub
}
func drvStreamCreate(uint32) (uint64, error)          { return 0, errStub }
func drvStreamDestroy(uint64) error                   { return errStub }
func drvStreamSynchronize(uint64) error               { return errStub }
func drvEventCreate(uint32) (uint64, error)           { return 0, errStub }
func drvEventDestroy(uint64) error                    { return errStub }
func drvEventRecord(uint64, uint64) error             { return errStub }
func drvEventSynchronize(uint64) error                { return errStub }
func drvEventElapsed(uint64, uint64) (float32, error) { return 0, errStub }
func drvStreamBeginCapture(uint64, int) error         { return errStub }
func drvStreamEndCapture(uint64) (uint64, error)      { return 0, errStub }
func drvGraphInstantiate(uint64) (uint64, error)      { return 0, errStub }
func drvGraphLaunch(uint64, uint64) error             { return errStub }
func drvGraphExecDestroy(uint64) error                { return errStub }
func drvGraphDestroy(uint64) error                    { return errStub }

func nvmlHandleByPCI(string) (uint64, error)       { return 0, errStub }
func nvmlPowerMilliwatts(uint64) (uint32, error)   { return 0, errStub }
func nvmlEnergyMillijoules(uint64) (uint64, error) { return 0, errStub }
func nvmlMemory(uint64) (uint64, uint64, error)    { return 0, 0, errStub }
