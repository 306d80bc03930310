module libazfunc.example/go-worker

go 1.22

require libazfunc.example/azfunc v0.0.0

replace libazfunc.example/azfunc => ../../bindings/go
