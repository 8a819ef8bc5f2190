//go:build !unix

package app

func setUmask() {}
