module github.com/m2mauth/m2mauth/tools/load

go 1.26.8
