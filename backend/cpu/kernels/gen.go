package kernels

// The amd64 kernels are generated with avo from the nested module in _gen
// (kept out of the root go.mod). Regenerate after editing the generator:
//
//	go generate ./backend/cpu/kernels/
//
// CI regenerates and runs `git diff --exit-code` on the two outputs.

//go:generate sh -c "cd _gen && go run . -out ../kernels_amd64.s -stubs ../stubs_amd64.go -pkg kernels"
