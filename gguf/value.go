package gguf

import (
	"fmt"
	"math"
)

// ValueType is the type tag of a GGUF metadata value.
type ValueType uint32

// Metadata value types, as numbered by the GGUF specification.
const (
	ValueUint8   ValueType = 0
	ValueInt8    ValueType = 1
	ValueUint16  ValueType = 2
	ValueInt16   ValueType = 3
	ValueUint32  ValueType = 4
	ValueInt32   ValueType = 5
	ValueFloat32 ValueType = 6
	ValueBool    ValueType = 7
	ValueString  ValueType = 8
	ValueArray   ValueType = 9
	ValueUint64  ValueType = 10
	ValueInt64   ValueType = 11
	ValueFloat64 ValueType = 12
)

var valueTypeNames = [...]string{"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "str", "arr", "u64", "i64", "f64"}

// String returns the short name of the type ("u32", "str", "arr", ...).
func (t ValueType) String() string {
	if int(t) < len(valueTypeNames) {
		return valueTypeNames[t]
	}
	return fmt.Sprintf("valuetype(%d)", uint32(t))
}

// scalarSize is the encoded size of a fixed-size scalar, 0 for string/array.
func (t ValueType) scalarSize() int {
	switch t {
	case ValueUint8, ValueInt8, ValueBool:
		return 1
	case ValueUint16, ValueInt16:
		return 2
	case ValueUint32, ValueInt32, ValueFloat32:
		return 4
	case ValueUint64, ValueInt64, ValueFloat64:
		return 8
	}
	return 0
}

// Value is one metadata value. Scalars hold the matching Go type (uint8, int8,
// uint16, int16, uint32, int32, float32, bool, string, uint64, int64,
// float64). An array holds a typed slice of its element type ([]uint32,
// []string, ...; []bool for bools) or, for arrays of arrays, []Value.
type Value struct {
	Type     ValueType // scalar type, or ValueArray
	ElemType ValueType // element type when Type == ValueArray
	data     any
}

// Any returns the Go value held (a scalar or a typed slice; see Value).
func (v Value) Any() any { return v.data }

// Len returns the number of elements of an array value, 0 for a scalar.
func (v Value) Len() int {
	if v.Type != ValueArray {
		return 0
	}
	switch s := v.data.(type) {
	case []uint8:
		return len(s)
	case []int8:
		return len(s)
	case []uint16:
		return len(s)
	case []int16:
		return len(s)
	case []uint32:
		return len(s)
	case []int32:
		return len(s)
	case []float32:
		return len(s)
	case []bool:
		return len(s)
	case []string:
		return len(s)
	case []uint64:
		return len(s)
	case []int64:
		return len(s)
	case []float64:
		return len(s)
	case []Value:
		return len(s)
	}
	return 0
}

// Constructors for values, used by writers and tests.

// Uint8 makes a u8 value.
func Uint8(x uint8) Value { return Value{Type: ValueUint8, data: x} }

// Int8 makes an i8 value.
func Int8(x int8) Value { return Value{Type: ValueInt8, data: x} }

// Uint16 makes a u16 value.
func Uint16(x uint16) Value { return Value{Type: ValueUint16, data: x} }

// Int16 makes an i16 value.
func Int16(x int16) Value { return Value{Type: ValueInt16, data: x} }

// Uint32 makes a u32 value.
func Uint32(x uint32) Value { return Value{Type: ValueUint32, data: x} }

// Int32 makes an i32 value.
func Int32(x int32) Value { return Value{Type: ValueInt32, data: x} }

// Float32 makes an f32 value.
func Float32(x float32) Value { return Value{Type: ValueFloat32, data: x} }

// Bool makes a bool value.
func Bool(x bool) Value { return Value{Type: ValueBool, data: x} }

// String makes a string value.
func String(x string) Value { return Value{Type: ValueString, data: x} }

// Uint64 makes a u64 value.
func Uint64(x uint64) Value { return Value{Type: ValueUint64, data: x} }

// Int64 makes an i64 value.
func Int64(x int64) Value { return Value{Type: ValueInt64, data: x} }

// Float64 makes an f64 value.
func Float64(x float64) Value { return Value{Type: ValueFloat64, data: x} }

// Array makes an array value from a typed slice ([]uint32, []string, ...,
// []Value for nested arrays, whose elements must all be arrays). It panics on
// a slice type that GGUF cannot hold: that is a programming error.
func Array(slice any) Value {
	et, ok := elemTypeOf(slice)
	if !ok {
		panic(fmt.Sprintf("gguf.Array: unsupported slice type %T", slice))
	}
	if s, nested := slice.([]Value); nested {
		for _, e := range s {
			if e.Type != ValueArray {
				panic("gguf.Array: []Value elements must be arrays")
			}
		}
	}
	return Value{Type: ValueArray, ElemType: et, data: slice}
}

// elemTypeOf returns the element type of a slice that an array value can
// hold, and false for any other Go value.
func elemTypeOf(slice any) (ValueType, bool) {
	switch slice.(type) {
	case []uint8:
		return ValueUint8, true
	case []int8:
		return ValueInt8, true
	case []uint16:
		return ValueUint16, true
	case []int16:
		return ValueInt16, true
	case []uint32:
		return ValueUint32, true
	case []int32:
		return ValueInt32, true
	case []float32:
		return ValueFloat32, true
	case []bool:
		return ValueBool, true
	case []string:
		return ValueString, true
	case []uint64:
		return ValueUint64, true
	case []int64:
		return ValueInt64, true
	case []float64:
		return ValueFloat64, true
	case []Value:
		return ValueArray, true
	}
	return 0, false
}

// Uint returns the value as an unsigned integer if it is any integer type
// holding a non-negative number.
func (v Value) Uint() (uint64, bool) {
	switch x := v.data.(type) {
	case uint8:
		return uint64(x), true
	case uint16:
		return uint64(x), true
	case uint32:
		return uint64(x), true
	case uint64:
		return x, true
	case int8:
		return uint64(x), x >= 0
	case int16:
		return uint64(x), x >= 0
	case int32:
		return uint64(x), x >= 0
	case int64:
		return uint64(x), x >= 0
	}
	return 0, false
}

// Int returns the value as a signed integer if it is any integer type that
// fits in int64.
func (v Value) Int() (int64, bool) {
	switch x := v.data.(type) {
	case int8:
		return int64(x), true
	case int16:
		return int64(x), true
	case int32:
		return int64(x), true
	case int64:
		return x, true
	case uint8:
		return int64(x), true
	case uint16:
		return int64(x), true
	case uint32:
		return int64(x), true
	case uint64:
		return int64(x), x <= math.MaxInt64
	}
	return 0, false
}

// Float returns the value as float64 if it is a float or integer type.
func (v Value) Float() (float64, bool) {
	switch x := v.data.(type) {
	case float32:
		return float64(x), true
	case float64:
		return x, true
	}
	if i, ok := v.Int(); ok {
		return float64(i), true
	}
	return 0, false
}

// KV is one metadata key/value pair.
type KV struct {
	Key   string
	Value Value
}
