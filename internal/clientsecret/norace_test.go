//go:build !race

package clientsecret

const raceEnabled = false
