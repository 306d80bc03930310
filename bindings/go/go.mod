module libazfunc.example/azfunc

go 1.22
