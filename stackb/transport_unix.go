//go:build unix

package stackb

import (
	"net"
	"syscall"
)

// connAlive peeks at an idle connection without waiting: a connection the
// server closed (end of stream), that errs, or that holds bytes nobody
// asked for is not alive.
func connAlive(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	alive := true
	var b [1]byte
	err = raw.Read(func(fd uintptr) bool {
		n, _, rerr := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case rerr == syscall.EAGAIN || rerr == syscall.EWOULDBLOCK:
		case rerr != nil || n >= 0:
			alive = false // an error, end of stream (0) or unasked-for bytes
		}
		return true // never wait
	})
	return alive && err == nil
}
