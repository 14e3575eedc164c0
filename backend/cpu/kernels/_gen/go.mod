module github.com/glmrun/glmrun/backend/cpu/kernels/_gen

go 1.26

require github.com/mmcloughlin/avo v0.5.0 // indirect
