package testsupport

import (
	"net"
	"os"
	"syscall"
)

// FailingListener is a real listener whose first Accepts fail with Errs,
// one each, as the kernel's accept would: for testing that a server
// waits out the errors that pass.
type FailingListener struct {
	net.Listener
	Errs []error
}

func (l *FailingListener) Accept() (net.Conn, error) {
	if len(l.Errs) > 0 {
		err := l.Errs[0]
		l.Errs = l.Errs[1:]
		return nil, err
	}
	return l.Listener.Accept()
}

// AcceptError is the error accept(2) failing with errno gives.
func AcceptError(errno syscall.Errno) error {
	return &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", errno)}
}
