package gguf

import (
	"errors"
	"fmt"
	"math"
)

// ErrMissingKey is wrapped by accessor errors for a key that is absent.
var ErrMissingKey = errors.New("gguf: missing metadata key")

func (f *File) get(key string) (Value, error) {
	v, ok := f.Lookup(key)
	if !ok {
		return Value{}, fmt.Errorf("%w %q", ErrMissingKey, key)
	}
	return v, nil
}

func typeErr(key string, v Value, want string) error {
	got := v.Type.String()
	if v.Type == ValueArray {
		got = "arr[" + v.ElemType.String() + "]"
	}
	return fmt.Errorf("gguf: metadata %q has type %s, want %s", key, got, want)
}

// String returns the string value of key.
func (f *File) String(key string) (string, error) {
	v, err := f.get(key)
	if err != nil {
		return "", err
	}
	s, ok := v.data.(string)
	if !ok {
		return "", typeErr(key, v, "str")
	}
	return s, nil
}

// Uint32 returns key as a uint32. Any integer type whose value fits is
// accepted (converters differ in which integer type they write).
func (f *File) Uint32(key string) (uint32, error) {
	v, err := f.get(key)
	if err != nil {
		return 0, err
	}
	u, ok := v.Uint()
	if !ok || u > math.MaxUint32 {
		return 0, typeErr(key, v, "an unsigned 32-bit integer")
	}
	return uint32(u), nil
}

// Uint64 returns key as a uint64; any non-negative integer type is accepted.
func (f *File) Uint64(key string) (uint64, error) {
	v, err := f.get(key)
	if err != nil {
		return 0, err
	}
	u, ok := v.Uint()
	if !ok {
		return 0, typeErr(key, v, "a non-negative integer")
	}
	return u, nil
}

// Float32 returns key as a float32 (f32, f64 or an integer type).
func (f *File) Float32(key string) (float32, error) {
	v, err := f.get(key)
	if err != nil {
		return 0, err
	}
	x, ok := v.Float()
	if !ok {
		return 0, typeErr(key, v, "f32")
	}
	return float32(x), nil
}

// Bool returns the bool value of key.
func (f *File) Bool(key string) (bool, error) {
	v, err := f.get(key)
	if err != nil {
		return false, err
	}
	b, ok := v.data.(bool)
	if !ok {
		return false, typeErr(key, v, "bool")
	}
	return b, nil
}

// Strings returns the arr[str] value of key (no copy).
func (f *File) Strings(key string) ([]string, error) {
	v, err := f.get(key)
	if err != nil {
		return nil, err
	}
	s, ok := v.data.([]string)
	if !ok {
		return nil, typeErr(key, v, "arr[str]")
	}
	return s, nil
}

// Int32s returns an integer array value of key as []int32; arrays of any
// integer type whose values fit are accepted.
func (f *File) Int32s(key string) ([]int32, error) {
	v, err := f.get(key)
	if err != nil {
		return nil, err
	}
	if s, ok := v.data.([]int32); ok {
		return s, nil
	}
	out := make([]int32, 0, v.Len())
	fail := typeErr(key, v, "arr[i32]")
	switch s := v.data.(type) {
	case []uint8:
		for _, x := range s {
			out = append(out, int32(x))
		}
	case []int8:
		for _, x := range s {
			out = append(out, int32(x))
		}
	case []uint16:
		for _, x := range s {
			out = append(out, int32(x))
		}
	case []int16:
		for _, x := range s {
			out = append(out, int32(x))
		}
	case []uint32:
		for _, x := range s {
			if x > math.MaxInt32 {
				return nil, fail
			}
			out = append(out, int32(x))
		}
	default:
		return nil, fail
	}
	return out, nil
}

// Float32s returns an arr[f32] value of key.
func (f *File) Float32s(key string) ([]float32, error) {
	v, err := f.get(key)
	if err != nil {
		return nil, err
	}
	s, ok := v.data.([]float32)
	if !ok {
		return nil, typeErr(key, v, "arr[f32]")
	}
	return s, nil
}
