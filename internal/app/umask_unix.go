//go:build unix

package app

import "syscall"

func setUmask() { syscall.Umask(0o077) }
