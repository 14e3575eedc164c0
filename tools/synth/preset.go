package main

import "fmt"

// Presets name the shapes the --preset flag selects. "real" is the released
// GLM-4.7-Flash (with --layers layers); "small" keeps the architecture
// (MLA, one dense layer, sigmoid-routed MoE with a shared expert, the GLM
// tokenizer's special tokens and chat template) at sizes that generate and
// run in seconds, for demos and smoke tests on a bare clone.
func presetShape(name string, layers int) (Shape, error) {
	switch name {
	case "real":
		return RealShape(layers), nil
	case "small":
		return Shape{
			Layers: layers, Embd: 512, FF: 1536, FFExp: 256, Heads: 8,
			QLora: 256, KVLora: 128, NopeDim: 64, RopeDim: 32, VDim: 64,
			Experts: 16, ExpertsUsed: 4, SharedExp: 1, Vocab: 32768, ContextTrain: 8192,
		}, nil
	}
	return Shape{}, fmt.Errorf("unknown --preset %q (use real or small)", name)
}
