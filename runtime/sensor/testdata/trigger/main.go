// Command trigger does, for real, what three of Falco's stable rules
// watch for; the sensor's container tests run it inside podman containers.
//
//	trigger ptrace   fork a child, PTRACE_ATTACH to it, detach, kill it
//	trigger memfd    copy /bin/busybox into a memfd and execveat it (as true)
//	trigger kmod     init_module and finit_module with a bogus module
//
// It prints what the kernel answered, so the test log says what happened.
package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"syscall"
	"unsafe"
)

// x86_64 system call numbers the syscall package does not name.
const (
	sysMemfdCreate = 319
	sysExecveat    = 322
	sysFinitModule = 313
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: trigger ptrace|memfd|kmod")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "ptrace":
		err = ptrace()
	case "memfd":
		err = memfd()
	case "kmod":
		kmod()
	default:
		err = fmt.Errorf("unknown action %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "trigger:", err)
		os.Exit(1)
	}
}

func ptrace() error {
	runtime.LockOSThread() // the tracer is this thread
	p, err := os.StartProcess("/bin/sleep", []string{"sleep", "5"}, &os.ProcAttr{})
	if err != nil {
		return err
	}
	defer p.Kill()
	if err := syscall.PtraceAttach(p.Pid); err != nil {
		return fmt.Errorf("PTRACE_ATTACH %d: %w", p.Pid, err)
	}
	var ws syscall.WaitStatus
	syscall.Wait4(p.Pid, &ws, 0, nil)
	fmt.Println("ptrace: attached to", p.Pid)
	return syscall.PtraceDetach(p.Pid)
}

func memfd() error {
	name := []byte("payload\x00")
	fd, _, e := syscall.Syscall(sysMemfdCreate, uintptr(unsafe.Pointer(&name[0])), 0, 0)
	if e != 0 {
		return fmt.Errorf("memfd_create: %w", e)
	}
	src, err := os.Open("/bin/busybox")
	if err != nil {
		return err
	}
	dst := os.NewFile(fd, "memfd:payload")
	if _, err := io.Copy(dst, src); err != nil {
		return err
	}
	argv, _ := syscall.SlicePtrFromStrings([]string{"true"})
	envv, _ := syscall.SlicePtrFromStrings([]string{"PATH=/bin"})
	empty := []byte{0}
	const atEmptyPath = 0x1000
	_, _, e = syscall.Syscall6(sysExecveat, fd, uintptr(unsafe.Pointer(&empty[0])),
		uintptr(unsafe.Pointer(&argv[0])), uintptr(unsafe.Pointer(&envv[0])), atEmptyPath, 0)
	return fmt.Errorf("execveat: %w", e)
}

func kmod() {
	bogus := []byte("\x7fELF not a kernel module")
	params := []byte("\x00")
	_, _, e := syscall.Syscall(syscall.SYS_INIT_MODULE, uintptr(unsafe.Pointer(&bogus[0])), uintptr(len(bogus)), uintptr(unsafe.Pointer(&params[0])))
	fmt.Println("init_module:", errString(e))
	f, err := os.CreateTemp("", "bogus-*.ko")
	if err != nil {
		fmt.Println("finit_module: no temp file:", err)
		return
	}
	f.Write(bogus)
	_, _, e = syscall.Syscall(sysFinitModule, f.Fd(), uintptr(unsafe.Pointer(&params[0])), 0)
	fmt.Println("finit_module:", errString(e))
}

func errString(e syscall.Errno) string {
	if e == 0 {
		return "success"
	}
	return fmt.Sprintf("%s (errno %d)", e.Error(), int(e))
}
