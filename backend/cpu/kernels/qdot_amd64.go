package kernels

func init() {
	kQ4K.asm[LevelAVX2], kQ4K.asm[LevelAVX512] = dotQ4KQ8KAVX2, dotQ4KQ8KAVX512
	kQ4K.asm4[LevelAVX2], kQ4K.asm4[LevelAVX512] = dotQ4KQ8Kx4AVX2, dotQ4KQ8Kx4AVX512
	kQ5K.asm[LevelAVX2], kQ5K.asm[LevelAVX512] = dotQ5KQ8KAVX2, dotQ5KQ8KAVX512
	kQ5K.asm4[LevelAVX2], kQ5K.asm4[LevelAVX512] = dotQ5KQ8Kx4AVX2, dotQ5KQ8Kx4AVX512
	kQ6K.asm[LevelAVX2], kQ6K.asm[LevelAVX512] = dotQ6KQ8KAVX2, dotQ6KQ8KAVX512
	kQ6K.asm4[LevelAVX2], kQ6K.asm4[LevelAVX512] = dotQ6KQ8Kx4AVX2, dotQ6KQ8Kx4AVX512
	kQ5_0.asm[LevelAVX2], kQ5_0.asm[LevelAVX512] = dotQ5_0Q8_0AVX2, dotQ5_0Q8_0AVX512
	kQ5_0.asm4[LevelAVX2], kQ5_0.asm4[LevelAVX512] = dotQ5_0Q8_0x4AVX2, dotQ5_0Q8_0x4AVX512
	kQ8_0.asm[LevelAVX2], kQ8_0.asm[LevelAVX512] = dotQ8_0Q8_0AVX2, dotQ8_0Q8_0AVX512
	kQ8_0.asm4[LevelAVX2], kQ8_0.asm4[LevelAVX512] = dotQ8_0Q8_0x4AVX2, dotQ8_0Q8_0x4AVX512
}
