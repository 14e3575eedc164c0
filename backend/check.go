package backend

import (
	"fmt"
	"math"
)

// The Check* functions validate the dtypes and shapes of one op's buffers
// the same way for every backend (so all backends reject the same inputs)
// and return the op's sizes. They do not check ownership or liveness (each
// backend does that for its own buffer type) nor capabilities. Every error
// wraps ErrShape and names the op and the offending buffer.

// Dims2 returns b's shape as [a, rest]: a = Shape[0], rest the product of
// the other dimensions (1 if none).
func Dims2(b Buffer) (a, rest int) {
	s := b.Shape()
	return s[0], Elems(s[1:])
}

// Dims3 returns b's shape as [a, c, rest]: a = Shape[0], c = Shape[1] (1 if
// absent), rest the product of the other dimensions (1 if none).
func Dims3(b Buffer) (a, c, rest int) {
	s := b.Shape()
	c = 1
	if len(s) > 1 {
		c = s[1]
	}
	if len(s) > 2 {
		rest = Elems(s[2:])
	} else {
		rest = 1
	}
	return s[0], c, rest
}

func isNil(b Buffer) bool { return b == nil }

func shapeErr(op, f string, a ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrShape, op, fmt.Sprintf(f, a...))
}

// want checks that b is present and of dtype dt.
func want(op, name string, b Buffer, dts ...DType) error {
	if isNil(b) {
		return shapeErr(op, "%s is nil", name)
	}
	for _, dt := range dts {
		if b.DType() == dt {
			return nil
		}
	}
	return shapeErr(op, "%s is %s %v, want dtype %v", name, b.DType(), b.Shape(), dts)
}

// want2 checks that b is dt and [a, rest] matches the given sizes.
func want2(op, name string, b Buffer, dt DType, a, rest int) error {
	if err := want(op, name, b, dt); err != nil {
		return err
	}
	if x, y := Dims2(b); x != a || y != rest {
		return shapeErr(op, "%s has shape %v, want [%d, %d]", name, b.Shape(), a, rest)
	}
	return nil
}

// want3 checks that b is dt and [a, c, rest] matches the given sizes.
func want3(op, name string, b Buffer, dt DType, a, c, rest int) error {
	if err := want(op, name, b, dt); err != nil {
		return err
	}
	if x, y, z := Dims3(b); x != a || y != c || z != rest {
		return shapeErr(op, "%s has shape %v, want [%d, %d, %d]", name, b.Shape(), a, c, rest)
	}
	return nil
}

// CheckEmbed validates Embed and returns d, vocab and n.
func CheckEmbed(out, table, tokens Buffer) (d, vocab, n int, err error) {
	const op = "Embed"
	if isNil(table) {
		return 0, 0, 0, shapeErr(op, "table is nil")
	}
	d, vocab = Dims2(table)
	if err = want(op, "tokens", tokens, I32); err != nil {
		return
	}
	n = Elems(tokens.Shape())
	err = want2(op, "out", out, F32, d, n)
	return
}

// CheckRMSNorm validates RMSNorm and returns d and n.
func CheckRMSNorm(out, x, w Buffer) (d, n int, err error) {
	const op = "RMSNorm"
	if err = want(op, "x", x, F32); err != nil {
		return
	}
	d, n = Dims2(x)
	if err = want2(op, "w", w, F32, d, 1); err != nil {
		return
	}
	err = want2(op, "out", out, F32, d, n)
	return
}

// CheckMatMul validates MatMul and returns k (inputs), m (outputs) and n
// (tokens).
func CheckMatMul(out, w, x Buffer) (k, m, n int, err error) {
	const op = "MatMul"
	if isNil(w) {
		return 0, 0, 0, shapeErr(op, "w is nil")
	}
	k, m = Dims2(w)
	if _, _, e := Dims3(w); e != 1 {
		return 0, 0, 0, shapeErr(op, "w has shape %v: a bank of matrices needs MatMulID", w.Shape())
	}
	if err = want(op, "x", x, F32); err != nil {
		return
	}
	if kx, nx := Dims2(x); kx != k {
		return 0, 0, 0, shapeErr(op, "x has shape %v, w %v: inner sizes %d and %d differ", x.Shape(), w.Shape(), kx, k)
	} else {
		n = nx
	}
	err = want2(op, "out", out, F32, m, n)
	return
}

// CheckMatMulID validates MatMulID and returns k, m, the expert count e,
// slots per token s, tokens n and whether every slot of a token shares one
// x row.
func CheckMatMulID(out, w, x, ids Buffer) (k, m, e, s, n int, shared bool, err error) {
	const op = "MatMulID"
	if isNil(w) {
		err = shapeErr(op, "w is nil")
		return
	}
	k, m, e = Dims3(w)
	if err = want(op, "ids", ids, I32); err != nil {
		return
	}
	s, n = Dims2(ids)
	if err = want(op, "x", x, F32); err != nil {
		return
	}
	kx, sx, nx := Dims3(x)
	if kx != k || nx != n || (sx != s && sx != 1) {
		err = shapeErr(op, "x has shape %v, want [%d, %d or 1, %d] (w %v, ids %v)", x.Shape(), k, s, n, w.Shape(), ids.Shape())
		return
	}
	shared = sx == 1 && s != 1
	err = want3(op, "out", out, F32, m, s, n)
	return
}

// CheckRoPE validates RoPE and returns the head size hd, heads h and tokens
// n.
func CheckRoPE(x, pos Buffer, offset, dims int, base float32) (hd, h, n int, err error) {
	const op = "RoPE"
	if err = want(op, "x", x, F32); err != nil {
		return
	}
	hd, h, n = Dims3(x)
	if dims < 2 || dims%2 != 0 || offset < 0 || offset+dims > hd {
		err = shapeErr(op, "dims %d (even, >= 2) at offset %d does not fit a head of %d", dims, offset, hd)
		return
	}
	if !(base > 0) || math.IsInf(float64(base), 0) {
		err = shapeErr(op, "base %v must be positive and finite", base)
		return
	}
	err = want2(op, "pos", pos, I32, n, 1)
	return
}

// CheckRouter validates Router and returns the expert count e and tokens n.
func CheckRouter(ids, weights, logits, bias Buffer, k int, scale float32) (e, n int, err error) {
	const op = "Router"
	if err = want(op, "logits", logits, F32); err != nil {
		return
	}
	e, n = Dims2(logits)
	if k < 1 || k > e {
		err = shapeErr(op, "k = %d of %d experts", k, e)
		return
	}
	if math.IsNaN(float64(scale)) || math.IsInf(float64(scale), 0) {
		err = shapeErr(op, "scale %v is not finite", scale)
		return
	}
	if !isNil(bias) {
		if err = want2(op, "bias", bias, F32, e, 1); err != nil {
			return
		}
	}
	if err = want2(op, "ids", ids, I32, k, n); err != nil {
		return
	}
	err = want2(op, "weights", weights, F32, k, n)
	return
}

// CheckElementwise validates SwiGLU or Add (op names it): three F32 buffers
// of the same element count and the same [a, rest] form. It returns the
// element count.
func CheckElementwise(op string, out, a, b Buffer) (count int, err error) {
	if err = want(op, "a", a, F32); err != nil {
		return
	}
	d, n := Dims2(a)
	if err = want2(op, "b", b, F32, d, n); err != nil {
		return
	}
	err = want2(op, "out", out, F32, d, n)
	return d * n, err
}

// CheckWeightedSum validates WeightedSum and returns d, slots s and tokens
// n.
func CheckWeightedSum(out, base, y, w Buffer) (d, s, n int, err error) {
	const op = "WeightedSum"
	if err = want(op, "y", y, F32); err != nil {
		return
	}
	d, s, n = Dims3(y)
	if err = want2(op, "w", w, F32, s, n); err != nil {
		return
	}
	if !isNil(base) {
		if err = want2(op, "base", base, F32, d, n); err != nil {
			return
		}
	}
	err = want2(op, "out", out, F32, d, n)
	return
}

// CheckCacheStore validates CacheStore and returns the source width w, the
// cache row width W, its capacity and tokens n.
func CheckCacheStore(cache, src, pos Buffer) (w, width, capacity, n int, err error) {
	const op = "CacheStore"
	if err = want(op, "cache", cache, F16, F32); err != nil {
		return
	}
	width, capacity = Dims2(cache)
	if err = want(op, "src", src, F32); err != nil {
		return
	}
	w, n = Dims2(src)
	if w > width {
		err = shapeErr(op, "src rows of %d values do not fit cache rows of %d", w, width)
		return
	}
	err = want2(op, "pos", pos, I32, n, 1)
	return
}

// CheckMLAAttention validates MLAAttention and returns D, Dv, heads h,
// tokens n and the cache capacity.
func CheckMLAAttention(out, q, cache, nkv Buffer, scale float32) (d, dv, h, n, capacity int, err error) {
	const op = "MLAAttention"
	if err = want(op, "q", q, F32); err != nil {
		return
	}
	d, h, n = Dims3(q)
	if err = want(op, "cache", cache, F16, F32); err != nil {
		return
	}
	dc, capacity := Dims2(cache)
	if dc != d {
		err = shapeErr(op, "cache rows of %d values, queries of %d", dc, d)
		return
	}
	if err = want2(op, "nkv", nkv, I32, n, 1); err != nil {
		return
	}
	if err = want(op, "out", out, F32); err != nil {
		return
	}
	dv = out.Shape()[0]
	if dv > d {
		err = shapeErr(op, "out rows of %d values exceed D = %d", dv, d)
		return
	}
	if math.IsNaN(float64(scale)) || math.IsInf(float64(scale), 0) {
		err = shapeErr(op, "scale %v is not finite", scale)
		return
	}
	err = want3(op, "out", out, F32, dv, h, n)
	return
}

// CheckCopyCols validates CopyCols and returns the row widths wd (dst) and
// ws (src) and the row count.
func CheckCopyCols(dst, src Buffer, dstCol, srcCol, cols int) (wd, ws, rows int, err error) {
	const op = "CopyCols"
	if err = want(op, "src", src, F32); err != nil {
		return
	}
	ws, rows = Dims2(src)
	if err = want(op, "dst", dst, F32); err != nil {
		return
	}
	wd, rd := Dims2(dst)
	if rd != rows {
		err = shapeErr(op, "dst %v and src %v have %d and %d rows", dst.Shape(), src.Shape(), rd, rows)
		return
	}
	if cols < 1 || srcCol < 0 || dstCol < 0 || srcCol+cols > ws || dstCol+cols > wd {
		err = shapeErr(op, "%d columns from %d of rows of %d into %d of rows of %d", cols, srcCol, ws, dstCol, wd)
	}
	return
}

// CheckArgmax validates Argmax and returns the row length v and rows n.
func CheckArgmax(out, x Buffer) (v, n int, err error) {
	const op = "Argmax"
	if err = want(op, "x", x, F32); err != nil {
		return
	}
	v, n = Dims2(x)
	err = want2(op, "out", out, I32, n, 1)
	return
}

// CheckView validates View and returns the byte offset and byte length of
// the view inside src.
func CheckView(src Buffer, offset int, shape []int) (byteOff, byteLen int, err error) {
	const op = "View"
	if err = want(op, "src", src, F32, F16, BF16, I32); err != nil {
		return
	}
	size, err := ByteSize(src.DType(), shape)
	if err != nil {
		return 0, 0, err
	}
	total := Elems(src.Shape())
	if offset < 0 || offset > total || Elems(shape) > total-offset {
		return 0, 0, shapeErr(op, "elements [%d, %d+%d) outside a buffer of %d", offset, offset, Elems(shape), total)
	}
	es := src.DType().TypeSize()
	return offset * es, size, nil
}

// CheckTransfer validates an Upload or Download (op) of n bytes to or from
// b: b must be present and hold exactly n bytes (ByteSize of its dtype and
// shape).
func CheckTransfer(op string, b Buffer, n int) error {
	if isNil(b) {
		return shapeErr(op, "nil buffer")
	}
	size, err := ByteSize(b.DType(), b.Shape())
	if err != nil {
		return err
	}
	if n != size {
		return shapeErr(op, "%d bytes for a %s %v buffer of %d", n, b.DType(), b.Shape(), size)
	}
	return nil
}
