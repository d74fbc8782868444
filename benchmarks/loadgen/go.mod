module hybridplace.io/benchmarks/loadgen

go 1.22
